"""The product's credit as an aggregate (credit/domain/product_credit.py): moves, the arrears cycle,
the chain's confirmation, failure, retry and escalation."""

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
)
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from credit_control.credit.domain.ladder import Ladder
from credit_control.credit.domain.product_credit import (
    Decision,
    DecisionFacts,
    Escalate,
    ProductCredit,
    Retry,
)
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.domain.rules import Intent

S = CreditState
T0 = datetime(2200, 10, 31, 12, 0, tzinfo=UTC)
SNAPSHOT = ProductSnapshot(product_id="P1", cpno="CP1", name="行业短信", family=ProductFamily.MAS,
                           vendor="huawei")
CUSTOMER = CustomerSnapshot(customer_id="C1", name="集团", tier=Tier.MID,
                            account_manager=Person(name="经理", phone="13900000000"),
                            contacts=(Person(name="联系人", phone="13800000000"),))
CONTEXT = NoticeContext(customer=CUSTOMER, product=SNAPSHOT, amount_due_fen=100,
                        as_of_date=date(2200, 10, 31))


def _product(family: ProductFamily = ProductFamily.MAS, state: CreditState = S.WARNED,
             **kw: object) -> ProductCredit:
    return ProductCredit("P1", "A1", family, state, snapshot=SNAPSHOT, customer_id="C1",
                         ladder=Ladder(date(2200, 9, 1), 2, date(2200, 10, 25),
                                       date(2200, 10, 31)), **kw)  # type: ignore[arg-type]


def _apply(p: ProductCredit, decision: DecisionType, at: datetime = T0,
           period: str = "seq:1") -> list[object]:
    proposal = p.propose(Intent(decision, "rule", "why", period=period), at)
    assert proposal is not None
    return list(p.apply(Decision(proposal, CONTEXT, 1), at).events)


def test_a_chain_suspension_awaits_its_command() -> None:
    p = _product()
    events = _apply(p, DecisionType.SUSPEND)
    assert [type(e) for e in events] == [CreditDecisionMade, ProvisioningCommand]
    command = events[1]
    assert isinstance(command, ProvisioningCommand)
    assert (p.state, p.command_seq, p.pending_command_id, p.command_attempt) == (
        S.SUSPEND_REQUESTED, 1, command.command_id, 1)
    assert p.dirty


def test_an_adc_product_is_suspended_at_once() -> None:
    p = _product(ProductFamily.ADC)
    p.snapshot = ProductSnapshot(product_id="P1", cpno="CP1", name="集团V网",
                                 family=ProductFamily.ADC)
    events = _apply(p, DecisionType.SUSPEND)
    assert [type(e) for e in events] == [CreditDecisionMade, CreditStateChanged]
    assert p.state is S.SUSPENDED and p.suspended_on == date(2200, 10, 31)


def test_a_move_that_is_not_legal_is_not_proposed() -> None:
    p = _product(state=S.NORMAL)
    assert p.propose(Intent(DecisionType.RESTORE, "r", "why", period="x"), T0) is None


def test_confirming_a_restore_starts_a_new_arrears_cycle() -> None:
    p = _product(state=S.RESTORE_REQUESTED, pending_command_id="c", pending_decision_id="d",
                 pending_work_order_id="WO-1", cycle=3)
    confirmed = p.confirm(ProvisioningAction.RESTORE, T0, "chain confirmed",
                          DecisionFacts("d", CONTEXT, S.SUSPENDED))
    assert confirmed is not None
    change, event = confirmed
    assert (change.before, change.after, event.service_was_suspended) == (
        S.RESTORE_REQUESTED, S.NORMAL, True)
    assert p.cycle == 4
    assert p.ladder == Ladder(date(2200, 9, 1))  # the month stays, the notices are forgotten
    assert (p.pending_command_id, p.pending_decision_id, p.pending_work_order_id) == (
        None, None, None)


def test_a_confirmation_the_product_no_longer_waits_for_changes_nothing() -> None:
    p = _product(state=S.NORMAL)
    assert p.confirm(ProvisioningAction.SUSPEND, T0, "late",
                     DecisionFacts("d", CONTEXT, S.WARNED)) is None
    assert not p.dirty


def test_failed_attempts_back_off_then_escalate() -> None:
    p = _product(state=S.SUSPEND_REQUESTED, pending_command_id="c", pending_decision_id="d",
                 command_action=ProvisioningAction.SUSPEND, command_at=T0, command_attempt=1,
                 command_seq=1)
    assert p.fail(T0, "boom", 3, 60) == Retry(T0 + timedelta(seconds=60))
    command = p.resend(T0)
    assert (command.attempt, command.sequence, command.command_id, p.retry_at) == (
        2, 1, "c", None)
    assert p.fail(T0, "boom", 3, 60) == Retry(T0 + timedelta(seconds=120))
    p.resend(T0)
    outcome = p.fail(T0, "boom", 3, 60)
    assert isinstance(outcome, Escalate) and "after 3 attempts" in outcome.reason
    p.escalated("WO-9")
    assert (p.pending_work_order_id, p.retry_at) == ("WO-9", None)


def test_a_new_command_voids_the_escalation_of_the_last() -> None:
    p = _product(state=S.SUSPEND_REQUESTED, pending_command_id="c", pending_decision_id="d",
                 pending_work_order_id="WO-1", command_seq=1)
    _apply(p, DecisionType.RESTORE)
    assert p.pending_work_order_id is None and p.command_seq == 2


# Every way back to normal, from any state it is legal in: the cycle goes up by exactly one
# and the ladder keeps only its month.
_TO_NORMAL = [
    (S.WARNED, DecisionType.ARREARS_CLEARED, ProductFamily.ADC),
    (S.SUSPENSION_WARNED, DecisionType.ARREARS_CLEARED, ProductFamily.MAS),
    (S.SUSPENDED, DecisionType.RESTORE, ProductFamily.ADC),
    (S.PRE_CANCEL, DecisionType.RESTORE, ProductFamily.ADC),
]


@given(st.sampled_from(_TO_NORMAL), st.integers(min_value=0, max_value=50))
def test_back_to_normal_always_starts_a_new_cycle(
        case: tuple[CreditState, DecisionType, ProductFamily], cycle: int) -> None:
    state, decision, family = case
    p = _product(family, state, cycle=cycle)
    _apply(p, decision)
    assert p.state is S.NORMAL and p.cycle == cycle + 1
    assert p.ladder == Ladder(date(2200, 9, 1))


@given(state=st.sampled_from([S.NORMAL, S.WARNED, S.SUSPENSION_WARNED, S.SUSPENDED]),
       oldest=st.sampled_from([None, date(2200, 8, 1), date(2200, 9, 1), date(2200, 10, 1)]),
       owes=st.booleans(), tier=st.sampled_from(list(Tier)))
def test_reconcile_in_two_steps_is_reconcile_and_moves_says_when_it_changes(
        state: CreditState, oldest: date | None, owes: bool, tier: Tier) -> None:
    """The balance batch copies a product only when `moves` says `follow` would change it:
    `reconciled` changes nothing, `follow` of it does what `reconcile` does, and a product
    that `moves` does not mark still equals its copy from before."""
    one, two = _product(state=state), _product(state=state)
    before = two.copy()
    change = one.reconcile(DEFAULT_RULES, tier, oldest, owes, T0)
    now = two.reconciled(DEFAULT_RULES, tier, oldest, owes)
    assert two == before
    moves = two.moves(now)
    assert two.follow(now, T0) == change
    assert two == one
    assert (two != before) is moves
