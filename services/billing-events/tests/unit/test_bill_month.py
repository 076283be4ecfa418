"""domain.bill_month: one rule between a month's charges and its bill run, for a charge with
`as_of`, one without and a CSV row alike."""

from datetime import datetime, timedelta

from billing_events.domain.bill_month import (
    ChargeMoment,
    bill_run_refusal,
    charge_moment,
    closed_month_refusal,
)
from common.clock import BUSINESS_TZ

RECORDED = datetime(2031, 3, 1, 9, 30, tzinfo=BUSINESS_TZ)


def test_a_charge_without_as_of_has_the_moment_it_was_recorded() -> None:
    claimed = datetime(2031, 1, 31, 18, 0, tzinfo=BUSINESS_TZ)
    assert charge_moment(claimed, RECORDED) == claimed
    assert charge_moment(None, RECORDED) == RECORDED  # HTTP without as_of, a CSV row


def test_a_closed_month_takes_no_charge() -> None:
    assert closed_month_refusal("2031-01", closed=False) is None
    refused = closed_month_refusal("2031-01", closed=True)
    assert refused is not None
    assert "2031-01" in refused and "closed by its bill run" in refused
    assert "adjustment" in refused  # what to do instead


def test_a_bill_run_is_not_dated_before_a_charge_of_its_month() -> None:
    last = ChargeMoment("C1", charge_moment(None, RECORDED))
    assert bill_run_refusal("2031-01", RECORDED, None) is None  # no charge kept a moment
    assert bill_run_refusal("2031-01", RECORDED, last) is None  # the same moment: after it
    assert bill_run_refusal("2031-01", RECORDED + timedelta(days=1), last) is None
    early = RECORDED - timedelta(days=27)
    refused = bill_run_refusal("2031-01", early, last)
    assert refused is not None and refused.charge == last
    assert "before charge 'C1'" in refused.message and "2031-01" in refused.message
    assert early.isoformat() in refused.message and RECORDED.isoformat() in refused.message
