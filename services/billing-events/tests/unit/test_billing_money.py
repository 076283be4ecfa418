"""Aging, deductions, write-offs, the arrears rate, and the balance event as built set-wise."""

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import orjson
import pytest

from billing_events.domain.model import (
    Aging,
    MonthDue,
    aging,
    deduction_to_collect,
    months_overdue,
    position,
    write_off_allowed,
)
from billing_events.domain.receivables import Receivables
from billing_events.service_layer.balances import AccountState, _EnvelopeParts, balance_payload
from common.contracts import BalanceChanged, registry
from common.contracts.billing import BalanceCause, DeductionOutcome
from common.envelope import parse


@pytest.mark.parametrize(("bill_month", "as_of", "months"), [
    (date(2026, 10, 1), date(2026, 10, 31), 0),  # not even billed yet: current
    (date(2026, 10, 1), date(2026, 11, 2), 0),  # the bill goes out in November: current
    (date(2026, 10, 1), date(2026, 11, 30), 0),
    (date(2026, 10, 1), date(2026, 12, 1), 1),
    (date(2026, 10, 1), date(2027, 1, 15), 2),
    (date(2026, 10, 1), date(2027, 2, 1), 3),
    (date(2026, 10, 1), date(2028, 2, 1), 15),
])
def test_months_overdue_counts_from_the_month_after_the_bill_month(
    bill_month: date, as_of: date, months: int
) -> None:
    assert months_overdue(bill_month, as_of) == months


def test_aging_buckets_current_one_two_and_three_plus() -> None:
    dues = tuple(MonthDue(date(2026, m, 1), fen) for m, fen in
                 ((5, 1), (6, 20), (7, 300), (8, 4_000), (9, 50_000), (10, 600_000)))
    assert aging(dues, date(2026, 11, 10)) == Aging(
        current_fen=600_000, one_month_fen=50_000, two_months_fen=4_000,
        three_plus_months_fen=321)


def test_aging_after_a_partial_payment_follows_the_oldest_first_dues() -> None:
    pos = position({date(2026, 8, 1): 10_000, date(2026, 9, 1): 10_000,
                    date(2026, 10, 1): 10_000}, 0, 15_000)
    assert aging(pos.dues, date(2026, 11, 5)) == Aging(10_000, 5_000, 0, 0)


@pytest.mark.parametrize(("requested", "deposit", "due", "collected"), [
    (5_000, 10_000, 8_000, 5_000),  # all asked for
    (5_000, 3_000, 8_000, 3_000),  # the deposit runs dry
    (5_000, 0, 8_000, 0),  # nothing held: collected 0, still answered
    (5_000, 10_000, 2_000, 2_000),  # paid meanwhile: never more than owed now
    (5_000, 10_000, 0, 0),
])
def test_deduction_takes_the_least_of_asked_held_and_owed(
    requested: int, deposit: int, due: int, collected: int
) -> None:
    assert deduction_to_collect(requested, deposit, due) == collected


@pytest.mark.parametrize(("amount", "due", "ok"),
                         [(1, 1, True), (100, 99, False), (99, 100, True), (1, 0, False)])
def test_write_off_never_goes_past_what_is_owed(amount: int, due: int, ok: bool) -> None:
    assert write_off_allowed(amount, due) is ok


def test_seed_000_sep_to_nov_2011_is_0_38_percent() -> None:
    """Seed 000: 183,818.26 yuan of 48,850,136.30 receivable, Sep–Nov 2011."""
    r = Receivables(receivables_fen=4_885_013_630, arrears_fen=18_381_826)
    assert r.rate == Decimal("0.003763")
    assert r.rate_percent == "0.38"


def test_seed_000_january_2011_work_order_share() -> None:
    """Seed 000: work-order products caused 83,021.12 of 155,117.03 yuan (53.52%)."""
    assert Receivables(15_511_703, 8_302_112).rate_percent == "53.52"


def test_rates_add_by_fen_not_by_averaging_percentages() -> None:
    total = Receivables(1_000, 10) + Receivables(3, 3)
    assert total == Receivables(1_003, 13)
    assert total.rate_percent == "1.30"
    assert Receivables(0, 0).rate is None and Receivables(0, 0).rate_percent is None


CUSTOMER = {"customer_id": "G1", "name": "某某集团", "tier": "high", "star_level": 4,
            "account_manager": {"name": "周经理", "phone": "13900000001"},
            "contacts": [{"name": "联系人", "phone": "13800000001"}]}
PRODUCTS = [{"product_id": "P1", "cpno": "CP1", "name": "华为CRM-MAS", "family": "MAS",
             "vendor": "huawei", "channel": "东莞政企"}]


def test_balance_event_with_snapshots_from_postgres_parses_as_the_contract() -> None:
    pos = position({date(2026, 9, 1): 10_000, date(2026, 10, 1): 5_000}, 700, 12_000)
    paid = datetime(2026, 11, 3, 2, tzinfo=UTC)
    state = AccountState("A1", 7, pos, deposit_fen=900, last_payment_at=paid)
    at = datetime(2026, 11, 3, 2, tzinfo=UTC)
    payload = balance_payload(
        state, BalanceCause.DEDUCTION, at, msgspec.Raw(orjson.dumps(CUSTOMER)),
        msgspec.Raw(orjson.dumps(PRODUCTS)),
        {"deduction": DeductionOutcome(decision_id="D1", requested_fen=100, collected_fen=90)})
    _, _, key, event_type, raw = _EnvelopeParts("billing-events", at, "c1").row("A1", payload)
    envelope, event = parse(raw, registry(BalanceChanged))
    assert (key, event_type, envelope.key, envelope.correlation_id) == (
        "A1", "billing.balance_changed", "A1", "c1")
    assert isinstance(event, BalanceChanged)
    assert event.sequence == 7 and event.cause is BalanceCause.DEDUCTION
    assert (event.balance_fen, event.amount_due_fen, event.unbilled_fen) == (-3_000, 3_000, 700)
    assert [(d.bill_month, d.amount_due_fen) for d in event.dues] == [("2026-10", 3_000)]
    assert event.deposit_fen == 900 and event.last_payment_at == paid
    assert event.deduction is not None and event.deduction.collected_fen == 90
    assert event.customer.star_level == 4 and event.customer.account_manager.name == "周经理"
    assert event.products[0].vendor == "huawei" and event.products[0].channel == "东莞政企"
