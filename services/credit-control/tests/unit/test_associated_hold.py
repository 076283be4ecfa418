"""A product suspended by association (关联停机, docs/collections.md "Escalation") is held:
its own account's balance events never restore it (the account owes nothing, so without the
hold the next charge would), only the collections case does once the arrears are paid."""

from datetime import UTC, datetime, timedelta
from typing import Any

from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.credit_control import CreditState
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import wrap
from credit_control.credit.adapters.memory import InMemoryBalanceStore
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable, Trigger
from credit_control.credit.service_layer.balance_events import apply_balance_events

T0 = datetime(2200, 10, 31, 20, 0, tzinfo=UTC)
CUSTOMER = CustomerSnapshot(customer_id="C1", name="集团", tier=Tier.MID, star_level=1,
                            account_manager=Person(name="经理", phone="13900000000"),
                            contacts=(Person(name="联系人", phone="13800000000"),))
PRODUCT = ProductSnapshot(product_id="P1", cpno="CPP1", name="集团V网", family=ProductFamily.ADC)


def _event(seq: int, cause: BalanceCause, due: int, balance: int) -> tuple[Any, BalanceChanged]:
    event = BalanceChanged(
        account_id="A1", sequence=seq, cause=cause, as_of=T0 + timedelta(hours=seq),
        balance_fen=balance, amount_due_fen=due,
        dues=(BillMonthDue(bill_month="2200-10", amount_due_fen=due),) if due else (),
        customer=CUSTOMER, products=(PRODUCT,))
    return wrap(event, key="A1", source="test", occurred_at=event.as_of), event


def _thresholds_on() -> RuleTable:
    rows = tuple(r.model_copy(update={"enabled": r.enabled or r.trigger is Trigger.THRESHOLD})
                 for r in DEFAULT_RULES.rows)
    return RuleTable(version=2, rows=rows)


async def _suspended_store() -> InMemoryBalanceStore:
    store = InMemoryBalanceStore(T0, table=_thresholds_on())
    await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 5_000, -10_000_000)])
    assert store.products.products["P1"].state is CreditState.SUSPENDED
    return store


async def test_a_held_product_is_not_restored_by_its_own_accounts_events() -> None:
    store = await _suspended_store()
    store.held.add("P1")
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 0, 0),
                                       _event(3, BalanceCause.CHARGE, 0, -100)])
    assert store.products.products["P1"].state is CreditState.SUSPENDED
    assert [d["decision"] for d in store.decisions.values()] == ["suspend"]


async def test_without_the_hold_the_same_payment_restores() -> None:
    store = await _suspended_store()
    await apply_balance_events(store, [_event(2, BalanceCause.PAYMENT, 0, 0)])
    assert store.products.products["P1"].state is CreditState.NORMAL
