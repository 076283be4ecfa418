"""The "notice before suspension" invariant check on planted decision histories (pure: the
same `violations` that `check_notice` runs over credit-control's decisions)."""

from datetime import date, datetime, time

from common.clock import BUSINESS_TZ
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from tests.reliability.invariants.notice import Row, violations

TABLES = {1: DEFAULT_RULES}


def at(day: date) -> datetime:
    return datetime.combine(day, time(20), BUSINESS_TZ)


def row(decision: str, day: date, deadline: date | None = None, month: str = "2026-10",
        rule_id: str = "", reason: str = "", product: str = "P1") -> Row:
    return Row(f"{product}-{decision}-{day}", product, ProductFamily.ADC, decision,
               rule_id or f"adc-{decision.replace('_', '-')}-low", reason, at(day), month,
               deadline, Tier.LOW, 1)


def test_on_time_and_late_suspensions_pass() -> None:
    rows = [row("suspension_warning", date(2026, 11, 25), date(2026, 11, 30)),
            row("suspend", date(2026, 11, 30)),
            row("restore", date(2026, 12, 1)),
            row("suspension_warning", date(2026, 12, 2), date(2026, 12, 8)),
            row("suspend", date(2026, 12, 8), reason="…; late: suspension warning of …")]
    assert violations(rows, TABLES) == ([], {"suspensions": 2, "late": 1, "exceptions": 0})


def test_a_suspension_without_a_warning_is_caught() -> None:
    problems, _ = violations([row("suspend", date(2026, 11, 30))], TABLES)
    assert len(problems) == 1 and "P1: suspension" in problems[0]


def test_a_warning_of_an_earlier_cycle_does_not_count() -> None:
    rows = [row("suspension_warning", date(2026, 11, 25), date(2026, 11, 30)),
            row("suspend", date(2026, 11, 30)), row("restore", date(2026, 12, 1)),
            row("suspend", date(2026, 12, 3))]  # re-suspended after a reversal: no notice
    assert len(violations(rows, TABLES)[0]) == 1


def test_a_warning_for_another_month_does_not_count() -> None:
    rows = [row("suspension_warning", date(2026, 11, 25), date(2026, 11, 30), month="2026-09"),
            row("suspend", date(2026, 11, 30))]
    assert len(violations(rows, TABLES)[0]) == 1


def test_a_deadline_after_the_suspension_or_too_short_a_notice_is_caught() -> None:
    later = [row("suspension_warning", date(2026, 11, 25), date(2026, 12, 2)),
             row("suspend", date(2026, 11, 30))]
    short = [row("suspension_warning", date(2026, 11, 29), date(2026, 11, 30)),
             row("suspend", date(2026, 11, 30))]  # one day, the period is 5 in November
    assert len(violations(later, TABLES)[0]) == 1
    assert len(violations(short, TABLES)[0]) == 1


def test_the_threshold_rule_is_an_exception_with_its_reason() -> None:
    rows = [row("suspend", date(2026, 11, 3), rule_id="adc-threshold-suspend-low")]
    assert violations(rows, TABLES) == ([], {"suspensions": 1, "late": 0, "exceptions": 1})
