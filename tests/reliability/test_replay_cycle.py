"""The invariant checker's replay moves the product's credit aggregate (domain/product_credit.py),
so "back to normal starts a new arrears cycle" holds there as in the service: a bill notice,
its clearance, and the same month billed again give a second notice (a new decision id)."""

from datetime import UTC, datetime, timedelta

from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.credit_control import DecisionType
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from tests.reliability.invariants.replay import Inputs, Replay

T0 = datetime(2200, 10, 31, 20, 0, tzinfo=UTC)
CUSTOMER = CustomerSnapshot(customer_id="C1", name="集团", tier=Tier.MID,
                            account_manager=Person(name="经理", phone="13900000000"),
                            contacts=(Person(name="联系人", phone="13800000000"),))
PRODUCT = ProductSnapshot(product_id="P1", cpno="CP1", name="集团V网", family=ProductFamily.ADC)


def _event(seq: int, cause: BalanceCause, due: int) -> tuple[datetime, BalanceChanged]:
    at = T0 + timedelta(hours=seq)
    return at, BalanceChanged(
        account_id="A1", sequence=seq, cause=cause, as_of=at, balance_fen=-due,
        amount_due_fen=due,
        dues=(BillMonthDue(bill_month="2200-10", amount_due_fen=due),) if due else (),
        closed_bill_month="2200-10" if cause is BalanceCause.BILL_RUN else None,
        customer=CUSTOMER, products=(PRODUCT,))


def test_a_cleared_product_is_noticed_again_in_its_next_cycle() -> None:
    events = [_event(1, BalanceCause.BILL_RUN, 5_000), _event(2, BalanceCause.PAYMENT, 0),
              _event(3, BalanceCause.BILL_RUN, 5_000), _event(4, BalanceCause.BILL_RUN, 5_000)]
    replay = Replay(Inputs(events, [], {1: (None, DEFAULT_RULES)}, {}, set()))
    expected = replay.run()
    assert [e.decision for e in expected.values()] == [
        DecisionType.BILL_NOTICE, DecisionType.ARREARS_CLEARED, DecisionType.BILL_NOTICE]
    assert replay.products["P1"].cycle == 1
