"""Report arithmetic without I/O: seed 000's arrears rates, recovery deadlines, aging
boundaries, KPI judgements, CSV flattening, and the vendored chart library's provenance."""

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from credit_control.reports.domain import reports as r
from credit_control.reports.domain.reports import Figures, Kpi, Recovery

# Seed 000, 效果检查: (arrears, receivables) in fen for Sep, Oct, Nov 2011.
SEED_000 = {
    "2011-09": (6_683_113, 1_713_618_718, "0.39"),
    "2011-10": (6_346_578, 1_762_938_333, "0.36"),
    "2011-11": (5_352_135, 1_408_456_579, "0.38"),
}


@pytest.mark.parametrize("month", sorted(SEED_000))
def test_seed_000_monthly_arrears_rates(month: str) -> None:
    arrears, receivables, percent = SEED_000[month]
    assert Figures(receivables, arrears).as_dict()["arrears_rate_percent"] == percent


def test_seed_000_total_is_a_ratio_of_sums_not_an_average_of_rates() -> None:
    whole = r.total(Figures(rec, arr) for arr, rec, _ in SEED_000.values())
    assert (whole.arrears_fen, whole.receivables_fen) == (18_381_826, 4_885_013_630)
    assert whole.as_dict() == {"receivables_fen": 4_885_013_630, "arrears_fen": 18_381_826,
                               "arrears_rate": "0.003763", "arrears_rate_percent": "0.38"}
    assert whole.arrears_rate is not None and whole.arrears_rate <= r.ARREARS_RATE_TARGET


def test_rates_round_half_up_and_empty_months_have_none() -> None:
    assert r.percent(5, 1000) == "0.50" and r.percent(1, 800) == "0.13"  # 0.125 → 0.13
    assert r.ratio(1, 3) == Decimal("0.333333")
    assert Figures(0, 0).arrears_rate is None and Figures(0, 0).as_dict()["arrears_rate"] is None
    assert Figures(1000, 40).recovery_rate == Decimal("0.96")


def test_calendar_helpers() -> None:
    assert r.add_months(date(2011, 11, 1), 3) == date(2012, 2, 1)
    assert r.add_months(date(2011, 1, 1), -1) == date(2010, 12, 1)
    assert r.months_between(date(2011, 11, 1), date(2012, 2, 1)) == [
        date(2011, 11, 1), date(2011, 12, 1), date(2012, 1, 1), date(2012, 2, 1)]
    # Sep's bill goes out in October: collected in October (当月), three months: end of Dec.
    assert r.collection_deadline(date(2011, 9, 1), 1) == date(2011, 10, 31)
    assert r.collection_deadline(date(2011, 12, 1), 3) == date(2012, 3, 31)
    assert r.collection_deadline(date(2012, 1, 1), 1) == date(2012, 2, 29)  # leap year
    assert r.measuring_day(date(2011, 9, 1), date(2012, 1, 5)) == date(2011, 10, 31)
    assert r.measuring_day(date(2011, 9, 1), date(2011, 10, 12)) == date(2011, 10, 12)
    assert r.end_of(date(2011, 9, 1), date(2011, 9, 12)) == date(2011, 9, 12)
    assert r.latest_billed_month(date(2011, 12, 3)) == date(2011, 11, 1)


def test_recovery_is_complete_only_once_its_deadline_passed() -> None:
    partial = Recovery("current_month", date(2011, 10, 31), date(2011, 10, 15),
                       Figures(10_000, 500), r.CURRENT_MONTH_RECOVERY_TARGET).as_dict()
    assert partial["complete"] is False
    assert partial["recovery_rate"] == "0.950000" and partial["recovery_rate_percent"] == "95.00"
    assert partial["collected_fen"] == 9_500 and partial["meets_target"] is False
    done = Recovery("current_month", date(2011, 10, 31), date(2011, 10, 31),
                    Figures(10_000, 400), r.CURRENT_MONTH_RECOVERY_TARGET).as_dict()
    assert done["complete"] is True and done["meets_target"] is True


@pytest.mark.parametrize(("bill_month", "bucket"), [
    (date(2011, 11, 1), "current"),  # billed in December: current on 12-15
    (date(2011, 10, 1), "one_month"),
    (date(2011, 9, 1), "two_months"),
    (date(2011, 8, 1), "three_plus_months"),
    (date(2010, 1, 1), "three_plus_months"),
])
def test_aging_bucket_boundaries(bill_month: date, bucket: str) -> None:
    buckets = r.aging_buckets({bill_month: 700}, date(2011, 12, 15))
    assert buckets[bucket] == 700 and sum(buckets.values()) == 700


def test_aging_sums_months_in_the_same_bucket() -> None:
    buckets = r.aging_buckets({date(2011, 7, 1): 1, date(2011, 8, 1): 2, date(2011, 11, 1): 4},
                              date(2011, 12, 1))
    assert buckets == {"current": 4, "one_month": 0, "two_months": 0, "three_plus_months": 3}


def test_kpis_are_judged_in_the_seed_direction() -> None:
    timely = Kpi("reminder_timeliness", r.share(66, 100), r.REMINDER_TIMELINESS_TARGET, ">=", {})
    assert timely.meets_target is False  # seed 000 before the fix: 66% < 95%
    emos = Kpi("emos_cross_month", r.share(2, 685), r.EMOS_CROSS_MONTH_TARGET, "<=", {})
    assert emos.as_dict()["value"] == "0.002920" and emos.meets_target is True  # 0.29%
    assert Kpi("missed_suspensions", 1, 0, "<=", {}).meets_target is False
    assert Kpi("missed_suspensions", None, 0, "<=", {}).meets_target is None


def test_the_arrears_target_is_judged_exactly_not_on_the_rounded_rate() -> None:
    """125,010 of 25,000,000 fen is 0.50004%: shown as 0.005000 but over the 0.5% limit."""
    over, at = Figures(25_000_000, 125_010), Figures(25_000_000, 125_000)
    assert over.arrears_rate == Decimal("0.005000") and over.meets_arrears_target is False
    assert at.meets_arrears_target is True and Figures(0, 0).meets_arrears_target is None
    kpi = Kpi("arrears_rate", over.arrears_rate, r.ARREARS_RATE_TARGET, "<=", {},
              exact=r.exact_ratio(over.arrears_fen, over.receivables_fen))
    assert kpi.as_dict()["value"] == "0.005000" and kpi.meets_target is False


def test_the_recovery_target_is_judged_exactly_not_on_the_rounded_rate() -> None:
    """23,999,990 of 25,000,000 collected is 95.99996%: shown as 0.960000, under 96%."""
    short = Recovery("current_month", date(2011, 10, 31), date(2011, 10, 31),
                     Figures(25_000_000, 1_000_010), r.CURRENT_MONTH_RECOVERY_TARGET).as_dict()
    assert short["recovery_rate"] == "0.960000" and short["meets_target"] is False
    exact = Recovery("current_month", date(2011, 10, 31), date(2011, 10, 31),
                     Figures(25_000_000, 1_000_000), r.CURRENT_MONTH_RECOVERY_TARGET).as_dict()
    assert exact["meets_target"] is True
    timely = Kpi("reminder_timeliness", r.share(18_999_999, 20_000_000),
                 r.REMINDER_TIMELINESS_TARGET, ">=", {},
                 exact=r.exact_ratio(18_999_999, 20_000_000))
    assert timely.as_dict()["value"] == "0.950000" and timely.meets_target is False


def test_flatten_for_csv() -> None:
    header, cells = r.flatten([{"a": 1, "b": None}, {"b": "x", "c": 2}])
    assert header == ["a", "b", "c"] and cells == [["1", "", ""], ["", "x", "2"]]


def test_the_vendored_chart_library_is_the_registry_file() -> None:
    vendor = (Path(__file__).parents[2] / "src/credit_control/reports/entrypoints/static/vendor")
    body = (vendor / "chart.umd.min.js").read_bytes()
    assert body.startswith(b"/*!\n * Chart.js v4.5.1")
    assert hashlib.sha256(body).hexdigest() in (vendor / "README.md").read_text()


def test_written_off_debt_is_neither_arrears_nor_collected() -> None:
    """200.00 billed, 50.00 paid, 150.00 written off (QA pass 29): collected 50.00, 25 %."""
    recovery = Recovery("current_month", date(2011, 10, 31), date(2011, 10, 31),
                        Figures(20_000, 0, written_off_fen=15_000), Decimal("0.96"))
    body = recovery.as_dict()
    assert (body["collected_fen"], body["written_off_fen"], body["arrears_fen"]) == (
        5_000, 15_000, 0)
    assert (body["recovery_rate"], body["meets_target"]) == ("0.250000", False)
    assert Figures(20_000, 0, 15_000) + Figures(100, 50, 10) == Figures(20_100, 50, 15_010)
