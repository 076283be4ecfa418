"""The "notice delivered before suspension" invariant check on planted histories (pure: the
same `violations` that `check_notice_delivered` runs over credit-control's decisions and the
notifier's notice outcomes)."""

from datetime import date, datetime, time, timedelta

from common.clock import BUSINESS_TZ
from tests.reliability.invariants.notice_delivered import Waiting, unheard_left, violations
from tests.reliability.test_notice_check import TABLES, row


def at(day: date, hour: int = 20) -> datetime:
    return datetime.combine(day, time(hour), BUSINESS_TZ)


WARNING = row("suspension_warning", date(2026, 11, 25), date(2026, 11, 30))
SUSPENSION = row("suspend", date(2026, 11, 30))


def test_a_warning_delivered_in_time_passes() -> None:
    reached = {WARNING.decision_id: at(date(2026, 11, 25))}
    assert violations([WARNING, SUSPENSION], TABLES, reached) == (
        [], {"suspensions": 1, "exceptions": 0})


def test_a_suspension_whose_warning_was_never_delivered_is_caught() -> None:
    problems, _ = violations([WARNING, SUSPENSION], TABLES, {})
    assert len(problems) == 1 and "P1: suspension" in problems[0]


def test_a_warning_delivered_too_late_is_caught() -> None:
    # held overnight: reached the customer on the 26th, 4 days before the 30th (5 needed)
    reached = {WARNING.decision_id: at(date(2026, 11, 26), 8)}
    assert len(violations([WARNING, SUSPENSION], TABLES, reached)[0]) == 1
    later = row("suspend", date(2026, 12, 1), reason="…; late: suspension warning reached …")
    assert violations([WARNING, later], TABLES, reached)[0] == []


def test_an_exception_with_its_reason_passes() -> None:
    undeliverable = row("suspend", date(2026, 11, 30),
                        reason="…; exception: suspension warning undeliverable: no phone")
    assert violations([WARNING, undeliverable], TABLES, {}) == (
        [], {"suspensions": 1, "exceptions": 1})


# --- no warning left waiting for ever (unheard_left) ---------------------------------------

DECIDED = at(date(2026, 11, 25))
LEFT = Waiting("P1", WARNING.decision_id, date(2026, 11, 30), DECIDED)


def sweep(day: date) -> tuple[date, datetime]:
    """A finished sweep of business day `day`, run (wall) after the warning was decided."""
    return day, DECIDED + timedelta(hours=1)


def test_a_warning_never_heard_of_and_left_waiting_after_its_limit_is_caught() -> None:
    # planted: the sweep of 2 December (the 30th + 2) ran and left the product waiting
    problems = unheard_left([LEFT], set(), [sweep(date(2026, 12, 2))], 2)
    assert len(problems) == 1 and "P1: suspension warning" in problems[0]
    assert "the sweep of 2026-12-02" in problems[0]


def test_before_the_limit_or_once_heard_of_it_passes() -> None:
    assert unheard_left([LEFT], set(), [sweep(date(2026, 12, 1))], 2) == []  # a day before
    heard = {WARNING.decision_id}  # delivered, failed or cancelled: the sweep's to act on
    assert unheard_left([LEFT], heard, [sweep(date(2026, 12, 2))], 2) == []


def test_a_sweep_that_finished_before_the_warning_was_decided_does_not_count() -> None:
    # a back-dated warning decided after that sweep ran: no sweep has read it yet
    early = (date(2026, 12, 2), DECIDED - timedelta(minutes=1))
    assert unheard_left([LEFT], set(), [early], 2) == []
