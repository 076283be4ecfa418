"""Late-fee arithmetic (docs/billing.md "Late fees"): fen, the daily rate, the grace period,
the cap, the exemptions, and what a later posting charges."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_events.domain.late_fees import (
    Bill,
    LateFeePolicy,
    due_date,
    first_charged_day,
    line_for,
    lines_for,
)

ON = LateFeePolicy(enabled=True)  # 0.3 %/day, 15 days' grace, cap 30 %
MARCH = date(2203, 3, 1)


def test_off_by_default() -> None:
    assert LateFeePolicy().enabled is False
    assert lines_for([Bill("P1", MARCH, 100_000)], LateFeePolicy(), date(2203, 6, 2),
                     False) == []


@pytest.mark.parametrize(("month", "due"), [
    (date(2203, 1, 1), date(2203, 2, 28)), (date(2204, 1, 1), date(2204, 2, 29)),
    (date(2203, 3, 1), date(2203, 4, 30)), (date(2203, 12, 1), date(2204, 1, 31)),
])
def test_due_by_the_last_day_of_the_following_month(month: date, due: date) -> None:
    assert due_date(month) == due


def test_the_grace_period() -> None:
    assert first_charged_day(MARCH, 15) == date(2203, 5, 16)
    assert first_charged_day(MARCH, 0) == date(2203, 5, 1)
    # A run on the first chargeable day charges nothing yet (days run to the day before).
    assert line_for(Bill("P1", MARCH, 100_000), ON, date(2203, 5, 16), False) is None
    one = line_for(Bill("P1", MARCH, 100_000), ON, date(2203, 5, 17), False)
    assert one is not None and (one.days, one.fee_fen) == (1, 300)  # 1000 yuan × 0.3 %


def test_fen_rounded_down_once_per_line() -> None:
    # 333 fen × 0.3 % × 10 days = 9.99 fen → 9 fen (never a fraction of a fen charged)
    line = line_for(Bill("P1", MARCH, 333), ON, date(2203, 5, 26), False)
    assert line is not None and (line.days, line.fee_fen) == (10, 9)
    # per day it would be 0 fen × 10: the rounding is after multiplying
    assert 333 * 30 // 10_000 == 0


def test_the_cap_counts_what_was_posted_before() -> None:
    # 100 yuan owed, cap 30 yuan; 200 days × 0.3 % = 60 yuan asked → 30
    line = line_for(Bill("P1", MARCH, 10_000), ON, date(2203, 12, 2), False)
    assert line is not None and (line.fee_fen, line.note) == (3_000, "capped")
    later = line_for(Bill("P1", MARCH, 10_000, posted_fen=2_500,
                          charged_through=date(2203, 10, 31)), ON, date(2203, 12, 2), False)
    assert later is not None and (later.fee_fen, later.note) == (500, "capped")
    full = line_for(Bill("P1", MARCH, 10_000, posted_fen=3_000,
                         charged_through=date(2203, 10, 31)), ON, date(2203, 12, 2), False)
    assert full is not None and full.fee_fen == 0


def test_a_later_run_charges_from_the_day_after_the_last_charged_one() -> None:
    bill = Bill("P1", MARCH, 100_000, posted_fen=300, charged_through=date(2203, 5, 16))
    line = line_for(bill, ON, date(2203, 6, 2), False)
    assert line is not None
    assert (line.first_day, line.last_day, line.days) == (date(2203, 5, 17),
                                                          date(2203, 6, 1), 16)
    assert line.fee_fen == 100_000 * 30 * 16 // 10_000
    # the same run again: nothing more
    again = Bill("P1", MARCH, 100_000, posted_fen=300 + line.fee_fen,
                 charged_through=line.last_day)
    assert line_for(again, ON, date(2203, 6, 2), False) is None


def test_exempt_customers_and_disputed_bills_are_never_charged() -> None:
    red = line_for(Bill("P1", MARCH, 100_000), ON, date(2203, 6, 2), True)
    assert red is not None and red.fee_fen == 0 and red.note.startswith("exempt")
    disputed = line_for(Bill("P1", MARCH, 100_000, disputed=True), ON, date(2203, 6, 2), False)
    assert disputed is not None and (disputed.fee_fen, disputed.note) == (0, "disputed")
    # the forgiven days are not charged by a later run either
    after = Bill("P1", MARCH, 100_000, charged_through=red.last_day)
    line = line_for(after, ON, date(2203, 6, 5), False)
    assert line is not None and line.first_day == date(2203, 6, 2) and line.days == 3


def test_nothing_owed_nothing_charged_and_lines_in_bill_order() -> None:
    assert line_for(Bill("P1", MARCH, 0), ON, date(2203, 9, 2), False) is None
    lines = lines_for([Bill("P2", MARCH, 1_000), Bill("P1", date(2203, 4, 1), 1_000),
                       Bill("P1", MARCH, 1_000)], ON, date(2203, 9, 2), False)
    assert [(ln.bill_month.month, ln.product_id) for ln in lines] == [
        (3, "P1"), (3, "P2"), (4, "P1")]


def test_settings_are_never_negative() -> None:
    with pytest.raises(ValueError):
        LateFeePolicy(rate_bp_per_day=-1)


@given(st.integers(0, 10**9), st.integers(0, 400), st.integers(0, 10_000),
       st.integers(0, 100), st.integers(0, 20_000))
def test_a_fee_is_never_negative_nor_above_the_cap(
        owed: int, days_after: int, posted: int, rate: int, cap: int) -> None:
    policy = LateFeePolicy(enabled=True, rate_bp_per_day=rate, grace_days=0, cap_bp=cap)
    run = date.fromordinal(first_charged_day(MARCH, 0).toordinal() + days_after)
    line = line_for(Bill("P1", MARCH, owed, posted_fen=posted), policy, run, False)
    if line is not None:
        assert 0 <= line.fee_fen <= max(0, owed * cap // 10_000 - posted)
        assert line.fee_fen <= owed * rate * line.days // 10_000
