"""The balance path's use cases against the in-memory store (credit/adapters/memory.py), without the
stack: load → rules.on_balance → ProductCredit.apply → save, batch by batch."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import orjson

from common.contracts.billing import (
    BalanceCause,
    BalanceChanged,
    BillMonthDue,
    DeductionOutcome,
    ProductCollected,
    ProductDue,
)
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import wrap
from credit_control.credit.adapters.memory import InMemoryBalanceStore
from credit_control.credit.domain.ladder import Ladder
from credit_control.credit.domain.product_credit import ProductCredit
from credit_control.credit.domain.profiles import CreditProfile
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable, Trigger
from credit_control.credit.service_layer.balance_events import Batch, apply_balance_events

T0 = datetime(2200, 10, 31, 20, 0, tzinfo=UTC)
CUSTOMER = CustomerSnapshot(customer_id="C1", name="集团", tier=Tier.MID, star_level=1,
                            account_manager=Person(name="经理", phone="13900000000"),
                            contacts=(Person(name="联系人", phone="13800000000"),))


def _product(family: ProductFamily = ProductFamily.ADC, pid: str = "P1") -> ProductSnapshot:
    vendor = "huawei" if family is ProductFamily.MAS else None
    return ProductSnapshot(product_id=pid, cpno=f"CP{pid}", name="集团V网", family=family,
                           vendor=vendor)


def _event(seq: int, cause: BalanceCause, due: int, *, balance: int | None = None,
           product: ProductSnapshot | None = None,
           at: datetime | None = None) -> tuple[Any, BalanceChanged]:
    event = BalanceChanged(
        account_id="A1", sequence=seq, cause=cause,
        as_of=at or T0 + timedelta(hours=seq), balance_fen=-due if balance is None else balance,
        amount_due_fen=due,
        dues=(BillMonthDue(bill_month="2200-10", amount_due_fen=due),) if due else (),
        closed_bill_month="2200-10" if cause is BalanceCause.BILL_RUN else None,
        customer=CUSTOMER, products=(product or _product(),))
    return wrap(event, key="A1", source="test", occurred_at=event.as_of), event


def _decisions(store: InMemoryBalanceStore) -> list[str]:
    return [d["decision"] for d in store.decisions.values()]


def _thresholds_on() -> RuleTable:
    rows = tuple(r.model_copy(update={"enabled": r.enabled or r.trigger is Trigger.THRESHOLD})
                 for r in DEFAULT_RULES.rows)
    return RuleTable(version=2, rows=rows)


async def test_a_bill_run_warns_and_a_payment_clears_into_a_new_arrears_cycle() -> None:
    store = InMemoryBalanceStore(T0)
    await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 5_000)])
    product = store.products.products["P1"]
    assert _decisions(store) == ["bill_notice"]
    assert product.state is CreditState.WARNED and product.cycle == 0
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 0)])
    product = store.products.products["P1"]
    assert _decisions(store) == ["bill_notice", "arrears_cleared"]
    assert product.state is CreditState.NORMAL and product.cycle == 1
    assert store.cleared and store.cleared[0][0] == "A1"
    # The same month billed again in the new cycle: a notice again (a new decision id).
    await apply_balance_events(store, [_event(3, BalanceCause.BILL_RUN, 5_000)])
    assert _decisions(store) == ["bill_notice", "arrears_cleared", "bill_notice"]
    assert [h["state_after"] for h in store.history] == ["warned", "normal", "warned"]
    assert [e.type for _, e in store.outbox].count("credit.decision_made") == 3


async def test_a_partial_payment_clears_the_product_it_paid_and_leaves_its_sibling_warned(
) -> None:
    """Two products billed; a payment pays the first's own amount only (billing's
    allocation): the first leaves the ladder (arrears cleared, its state change published,
    so the notifier drops a reminder still waiting for it), the second stays warned; a
    reversal of the second's payment later reopens the second alone."""
    store = InMemoryBalanceStore(T0)
    both = (_product(pid="P1"), _product(pid="P2"))

    def event(seq: int, cause: BalanceCause, p1: int, p2: int) -> tuple[Any, BalanceChanged]:
        _, e = _event(seq, cause, p1 + p2)
        e = msgspec.structs.replace(e, products=both, product_dues=(
            ProductDue(product_id="P1", amount_due_fen=p1),
            ProductDue(product_id="P2", amount_due_fen=p2)))
        return wrap(e, key="A1", source="test", occurred_at=e.as_of), e

    await apply_balance_events(store, [event(1, BalanceCause.BILL_RUN, 30_000, 15_000)])
    assert {p: c.state for p, c in store.products.products.items()} == {
        "P1": CreditState.WARNED, "P2": CreditState.WARNED}
    await apply_balance_events(store, [event(2, BalanceCause.PAYMENT, 0, 15_000)])
    p1, p2 = store.products.products["P1"], store.products.products["P2"]
    assert (p1.state, p1.cycle) == (CreditState.NORMAL, 1)
    assert p2.state is CreditState.WARNED
    cleared = [d for d in store.decisions.values() if d["decision"] == "arrears_cleared"]
    assert [d["product_id"] for d in cleared] == ["P1"]
    # Published as a decision from warned to normal: what the notifier's re-check folds.
    last = store.outbox[-1][1].payload
    assert (last.product_id, last.decision, last.state_before, last.state_after) == (
        "P1", DecisionType.ARREARS_CLEARED, CreditState.WARNED, CreditState.NORMAL)
    # The sibling's payment bounces: only the sibling owes again; the first, paid, gets no
    # "payment reversed, 0.00 yuan still owing" notice and stays normal.
    await apply_balance_events(store, [event(3, BalanceCause.PAYMENT, 0, 0)])
    assert _decisions(store).count("arrears_cleared") == 2
    assert store.products.products["P2"].state is CreditState.NORMAL
    await apply_balance_events(store, [event(4, BalanceCause.REVERSAL, 0, 15_000)])
    reversed_ = [d for d in store.decisions.values() if d["decision"] == "payment_reversed"]
    assert [d["product_id"] for d in reversed_] == ["P2"]
    assert store.products.products["P1"].state is CreditState.NORMAL


async def test_stale_and_redelivered_events_decide_nothing() -> None:
    store = InMemoryBalanceStore(T0)
    await apply_balance_events(store, [_event(2, BalanceCause.BILL_RUN, 5_000)])
    before = (dict(store.decisions), len(store.outbox))
    await apply_balance_events(store, [_event(1, BalanceCause.PAYMENT, 0),
                                       _event(2, BalanceCause.PAYMENT, 0)])
    assert (store.decisions, len(store.outbox)) == before
    assert store.positions["A1"].sequence == 2


async def test_events_of_one_batch_see_each_others_moves() -> None:
    """Bill run then payment in one batch: the payment clears what the bill run warned."""
    store = InMemoryBalanceStore(T0)
    await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 5_000),
                                       _event(2, BalanceCause.PAYMENT, 0)])
    assert _decisions(store) == ["bill_notice", "arrears_cleared"]
    assert store.products.products["P1"].cycle == 1


async def test_a_chain_suspension_sends_a_command_and_a_payment_supersedes_it() -> None:
    store = InMemoryBalanceStore(T0, table=_thresholds_on())
    mas = _product(ProductFamily.MAS)
    await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 5_000,
                                              balance=-10_000_000, product=mas)])
    product = store.products.products["P1"]
    assert product.state is CreditState.SUSPEND_REQUESTED
    commands = [e.payload for _, e in store.outbox if isinstance(e.payload, ProvisioningCommand)]
    assert [(c.action, c.sequence, c.attempt) for c in commands] == [
        (ProvisioningAction.SUSPEND, 1, 1)]
    assert product.pending_command_id == commands[0].command_id
    assert [key for _, e in store.outbox for key in [e.key]] == ["A1", "P1"]
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 0, product=mas)])
    product = store.products.products["P1"]
    commands = [e.payload for _, e in store.outbox if isinstance(e.payload, ProvisioningCommand)]
    assert [(c.action, c.sequence) for c in commands] == [
        (ProvisioningAction.SUSPEND, 1), (ProvisioningAction.RESTORE, 2)]
    assert product.state is CreditState.RESTORE_REQUESTED
    assert product.pending_command_id == commands[1].command_id


async def test_a_work_order_product_gets_a_work_order_not_a_command() -> None:
    store = InMemoryBalanceStore(T0, table=_thresholds_on())
    wo = _product(ProductFamily.WORK_ORDER)
    await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 5_000,
                                              balance=-10_000_000, product=wo)])
    product = store.products.products["P1"]
    assert product.state is CreditState.SUSPEND_REQUESTED
    assert [w["action"] for w in store.work_orders.values()] == ["suspend"]
    assert product.pending_work_order_id in store.work_orders
    assert not any(isinstance(e.payload, ProvisioningCommand) for _, e in store.outbox)
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 0, product=wo)])
    statuses = {w["action"]: w["status"] for w in store.work_orders.values()}
    assert statuses == {"suspend": "cancelled", "restore": "created"}


async def test_a_payment_reversed_while_its_restore_is_in_flight_is_told_why() -> None:
    """Suspended (threshold), paid: a restore work order. The cheque bounces before the
    operator restores it: `payment_reversed` (冲正/退票通知) now, the restore in flight left
    to finish (its work order not called back), so the customer restored into arrears knows
    why it owes again (QA pass 30: it was told only "已可正常使用")."""
    store = InMemoryBalanceStore(T0, table=_thresholds_on())
    wo = _product(ProductFamily.WORK_ORDER)
    await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 5_000,
                                              balance=-10_000_000, product=wo)])
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 0, product=wo)])
    product = store.products.products["P1"]
    assert product.state is CreditState.RESTORE_REQUESTED
    restore_order = product.pending_work_order_id
    await apply_balance_events(store, [_event(3, BalanceCause.REVERSAL, 5_000, product=wo)])
    product = store.products.products["P1"]
    assert _decisions(store)[-1] == "payment_reversed"
    assert product.state is CreditState.RESTORE_REQUESTED
    assert product.pending_work_order_id == restore_order
    assert {w["action"]: w["status"] for w in store.work_orders.values()}["restore"] == (
        "created")


async def test_a_decision_already_taken_is_not_taken_again() -> None:
    """A fixed point: the batch asks which of its decision ids exist and decides again."""
    store = InMemoryBalanceStore(T0)
    await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 5_000)])
    # The product is reset to normal by hand; the same bill run's decision id is taken.
    stored = store.products.products["P1"]
    stored.state = CreditState.NORMAL
    envelope, event = _event(2, BalanceCause.BILL_RUN, 5_000)
    await apply_balance_events(store, [(envelope, event)])
    assert _decisions(store) == ["bill_notice"]
    assert store.products.products["P1"].state is CreditState.NORMAL
    assert DecisionType.BILL_NOTICE.value in _decisions(store)


async def test_the_batch_says_each_accounts_position_and_what_it_owed_before() -> None:
    """What the rating's inputs are told: each account's newest fresh event, what the account
    owed before the batch (none for an account seen for the first time) and the most it owed
    along the batch; a batch of stale events applies nothing."""
    store = InMemoryBalanceStore(T0)
    first = await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 5_000),
                                               _event(2, BalanceCause.CHARGE, 7_000)])
    assert [e.sequence for e in first.current] == [2] and first.due_before == {}
    assert first.peak_due == {"A1": 7_000}
    second = await apply_balance_events(store, [_event(3, BalanceCause.CHARGE, 9_000),
                                                _event(4, BalanceCause.PAYMENT, 6_000)])
    assert [e.sequence for e in second.current] == [4]
    assert second.due_before == {"A1": 7_000} and second.peak_due == {"A1": 9_000}
    stale = await apply_balance_events(store, [_event(4, BalanceCause.PAYMENT, 0)])
    assert stale.current == [] and stale.due_before == {}


def _amount_changes(store: InMemoryBalanceStore) -> list[tuple[str, int, int, int, str]]:
    return [(e.payload.product_id, e.payload.previous_fen, e.payload.amount_due_fen,
             e.payload.account_amount_due_fen, e.payload.state.value)
            for _, e in store.outbox if e.type == "credit.product_amount_changed"]


async def test_a_partial_payment_tells_the_notifier_what_a_warned_product_owes_now() -> None:
    """A bill notice quotes 123.45; a payment of 100.00 leaves 23.45 owing, no decision: the
    product's new amount is published (after its decisions, keyed by account), so a notice
    still held by the quiet hours leaves saying 23.45. Nothing when the amount did not move,
    and nothing for a product back to normal (its reminders are cancelled instead)."""
    store = InMemoryBalanceStore(T0)
    await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 12_345)])
    assert _amount_changes(store) == []  # the bill notice itself quotes 123.45
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 2_345)])
    assert _decisions(store) == ["bill_notice"]
    assert _amount_changes(store) == [("P1", 12_345, 2_345, 2_345, "warned")]
    last = store.outbox[-1][1]
    assert (last.key, last.payload.sequence) == ("A1", 2)
    # A charge of the open month: the product's own (closed months') amount is the same.
    await apply_balance_events(store, [_event(3, BalanceCause.CHARGE, 2_345, balance=-9_000)])
    assert len(_amount_changes(store)) == 1
    # Paid in full: back to normal, no amount to revise.
    await apply_balance_events(store, [_event(4, BalanceCause.PAYMENT, 0)])
    assert _decisions(store) == ["bill_notice", "arrears_cleared"]
    assert len(_amount_changes(store)) == 1


async def test_one_batch_compares_the_amount_with_what_its_own_decision_quoted() -> None:
    """Bill run (notice quoting 123.45) and a partial payment in one batch: the notice was
    made with the bill run's amount, so the payment's is published after it; a batch whose
    last decision already quotes the amount publishes nothing more."""
    store = InMemoryBalanceStore(T0)
    await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 12_345),
                                       _event(2, BalanceCause.PAYMENT, 2_345)])
    assert _decisions(store) == ["bill_notice"]
    assert _amount_changes(store) == [("P1", 12_345, 2_345, 2_345, "warned")]
    types = [e.type for _, e in store.outbox]
    assert types.index("credit.decision_made") < types.index("credit.product_amount_changed")
    fresh = InMemoryBalanceStore(T0)
    await apply_balance_events(fresh, [_event(1, BalanceCause.BILL_RUN, 12_345)])
    await apply_balance_events(fresh, [_event(2, BalanceCause.PAYMENT, 0),
                                       _event(3, BalanceCause.REVERSAL, 5_000)])
    # Paid, then half of it bounced: the reversal's notice quotes 50.00, what the product
    # owes after the batch (not the 123.45 it owed before it): nothing to revise.
    assert _decisions(fresh) == ["bill_notice", "arrears_cleared", "payment_reversed"]
    assert fresh.products.products["P1"].state is CreditState.WARNED
    assert _amount_changes(fresh) == []


async def test_a_product_held_by_an_association_keeps_its_notices_amount() -> None:
    """Suspended by association (关联停机) while owing nothing itself: its 停机通知 quotes the
    arrears of the account in collections. A bill of its own then moves its own amount from
    0: that must not revise the notice to its own amount. A product suspended for its own
    debt still publishes the change."""
    for held, published in ((True, 0), (False, 1)):
        store = InMemoryBalanceStore(T0)
        await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 0, balance=-100)])
        store.products.products["P1"].state = CreditState.SUSPENDED
        store.held = {"P1"} if held else set()
        await apply_balance_events(store, [_event(2, BalanceCause.BILL_RUN, 5_000)])
        assert len(_amount_changes(store)) == published, held


def _deduction(seq: int, collected: dict[str, int], owed: dict[str, int],
               requested: int = 5_000) -> tuple[Any, BalanceChanged]:
    """Billing's answer to a deduction asked for P1: what it collected paid `collected` of
    each product's arrears; `owed`: what each product owes after it."""
    due = sum(owed.values())
    event = BalanceChanged(
        account_id="A1", sequence=seq, cause=BalanceCause.DEDUCTION,
        as_of=T0 + timedelta(hours=seq), balance_fen=-due, amount_due_fen=due,
        dues=(BillMonthDue(bill_month="2200-10", amount_due_fen=due),) if due else (),
        customer=CUSTOMER, products=(_product(pid="P1"), _product(pid="P2")),
        product_dues=tuple(ProductDue(product_id=p, amount_due_fen=f) for p, f in owed.items()),
        deduction=DeductionOutcome(
            decision_id="ask-1", requested_fen=requested, collected_fen=sum(collected.values()),
            products=tuple(ProductCollected(product_id=p, collected_fen=f)
                           for p, f in collected.items())))
    return wrap(event, key="A1", source="test", occurred_at=event.as_of), event


def _collected(store: InMemoryBalanceStore) -> list[tuple[str, str, int, int, str]]:
    return [(e.payload.product_id, e.payload.deduction_id, e.payload.collected_fen,
             e.payload.context.amount_due_fen, e.key)
            for _, e in store.outbox if e.type == "credit.deduction_collected"]


async def test_a_deduction_is_announced_for_what_it_paid_of_each_product() -> None:
    """The deduction notice quotes billing's fact: 30.00 collected for a deduction asked for
    P1 paid P2's older bill (20.00) and 10.00 of P1's; each product gets its own part, with
    what it still owes; a redelivered or stale answer announces nothing more; an empty
    deposit (nothing collected) announces nothing."""
    store = InMemoryBalanceStore(T0)
    first = _deduction(1, {"P1": 1_000, "P2": 2_000}, {"P1": 4_000, "P2": 0})
    await apply_balance_events(store, [first])
    assert _collected(store) == [("P1", "ask-1", 1_000, 4_000, "A1"),
                                 ("P2", "ask-1", 2_000, 0, "A1")]
    # 2200-10-31 21:00 UTC is the 1st of November in Asia/Shanghai: the notice's date.
    assert store.outbox[-1][1].payload.context.as_of_date == date(2200, 11, 1)
    await apply_balance_events(store, [first])  # redelivered: stale now
    assert len(_collected(store)) == 2
    await apply_balance_events(store, [_deduction(2, {}, {"P1": 4_000, "P2": 0})])
    assert len(_collected(store)) == 2



async def test_a_new_product_starts_at_its_earliest_event_of_the_batch_not_its_newest() -> None:
    """`make run`'s demo: a product opened in April, its October charge posted today (no
    `as_of`), then October's bill run as of 11-02. When the opening and the charge reach
    credit control in one batch, the product starts normal as of its opening; started as of
    the charge (today), the bill run's notice was dated today and the whole ladder after it
    (warning, suspension) weeks late."""
    store = InMemoryBalanceStore(T0)
    opened, bill_run = T0 - timedelta(days=200), T0 + timedelta(days=2)
    today = T0 + timedelta(days=37)
    await apply_balance_events(store, [
        _event(1, BalanceCause.MASTER_DATA, 0, at=opened),
        _event(2, BalanceCause.CHARGE, 0, balance=0, at=today)])
    assert store.products.products["P1"].changed_at == opened
    await apply_balance_events(store, [_event(3, BalanceCause.BILL_RUN, 5_000, at=bill_run)])
    [notice] = store.decisions.values()
    assert (notice["decision"], notice["as_of"]) == ("bill_notice", bill_run)


async def test_a_limit_raised_over_the_debt_clears_the_product_with_no_balance_event() -> None:
    """A credit-admin raises the limit (or the rating upgrades the customer): no balance event
    comes, and the batch reconsiders the product on its account's newest position
    (`Batch.reconsider`, credit/service_layer/reconsider.py) as a master data event would:
    within its limit now, cleared into a new cycle; the bill run's notice not made again."""
    store = InMemoryBalanceStore(T0)
    store.profiles_by_customer["C1"] = CreditProfile("C1", star_level=3)  # limit 50.00 yuan
    await apply_balance_events(store, [_event(1, BalanceCause.BILL_RUN, 8_000)])
    assert _decisions(store) == ["bill_notice"]
    store.profiles_by_customer["C1"] = CreditProfile("C1", star_level=3,
                                                     credit_limit_fen=10_000)

    async def reconsider(at: datetime) -> None:
        event = store.positions["A1"]
        batch = Batch(store, store.table, await store.profiles(["C1"]),
                      await store.products.load(["P1"]), {"P1": (event, event.products[0])})
        await batch.reconsider(at, "profile:C1", trigger="credit profile")
        await store.write(batch.writes)

    await reconsider(T0 + timedelta(days=1))
    assert _decisions(store) == ["bill_notice", "arrears_cleared"]
    assert store.products.products["P1"].state is CreditState.NORMAL
    [cleared] = [d for d in store.decisions.values() if d["decision"] == "arrears_cleared"]
    assert orjson.loads(cleared["inputs"])["cause"] == "credit profile"
    await reconsider(T0 + timedelta(days=2))  # nothing more to do
    assert _decisions(store) == ["bill_notice", "arrears_cleared"]


async def test_a_ladder_restart_tells_the_notifier_the_suspension_warning_stopped_counting(
) -> None:
    """A suspension-warned product whose oldest owing month is paid: its ladder restarts for
    the next month (suspension_warned → warned, no decision), and a `credit.state_changed`
    says so, so a suspension warning still held by the quiet hours is cancelled, not sent
    naming a date no suspension will follow (QA pass 30)."""
    store = InMemoryBalanceStore(T0)
    store.products.add(ProductCredit(
        "P1", "A1", ProductFamily.ADC, CreditState.SUSPENSION_WARNED, customer_id="C1",
        ladder=Ladder(date(2200, 9, 1), 1, date(2200, 10, 25), date(2200, 10, 31)),
        changed_at=T0 - timedelta(days=6)))
    paid_september = BalanceChanged(
        account_id="A1", sequence=1, cause=BalanceCause.PAYMENT, as_of=T0, balance_fen=-5_000,
        amount_due_fen=5_000, dues=(BillMonthDue(bill_month="2200-10", amount_due_fen=5_000),),
        customer=CUSTOMER, products=(_product(),))
    await apply_balance_events(store, [(wrap(paid_september, key="A1", source="test",
                                             occurred_at=T0), paid_september)])
    assert store.products.products["P1"].state is CreditState.WARNED
    [changed] = [e for _, e in store.outbox if e.type == "credit.state_changed"]
    assert (changed.payload.state_before, changed.payload.state_after) == (
        CreditState.SUSPENSION_WARNED, CreditState.WARNED)
    assert changed.payload.context.bill_month == "2200-10"
    assert _decisions(store) == []  # no decision: the reconcile's own change
