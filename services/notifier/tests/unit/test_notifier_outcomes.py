"""domain/outcomes.py: a notice's outcomes from its messages, and their business time."""

from datetime import datetime, timedelta

from common.clock import BUSINESS_TZ
from common.contracts.notifier import NoticeStatus
from notifier.domain.outcomes import NoticeMessages, business_time, outcomes
from notifier.domain.quiet_hours import SendingWindow

WINDOW = SendingWindow.parse("08:00-21:00")
WALL = datetime(2026, 12, 3, 10, 0, tzinfo=BUSINESS_TZ)  # the real clock, back-dated run


def notice(decided: datetime, **kw: object) -> NoticeMessages:
    base: dict[str, object] = dict(
        decision_id="D1", product_id="P1", account_id="A1", template="suspension_warning",
        decision_as_of=decided, decided_at=WALL, total=2, sent_at=None, delivered_at=None,
        failed=0, undeliverable=0, cancelled=0, reasons="")
    base.update(kw)
    return NoticeMessages(**base)  # type: ignore[arg-type]


def test_a_back_dated_decision_carries_the_wall_time_the_message_took() -> None:
    decided = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    at = business_time(WALL + timedelta(seconds=3), decided, WALL, WINDOW)
    assert at == decided + timedelta(seconds=3)


def test_a_held_notice_reaches_the_customer_when_the_quiet_hours_end() -> None:
    decided = datetime(2026, 11, 25, 22, 0, tzinfo=BUSINESS_TZ)
    at = business_time(WALL + timedelta(seconds=1), decided, WALL, WINDOW)
    assert at == datetime(2026, 11, 26, 8, 0, tzinfo=BUSINESS_TZ)
    # production: business time is the wall clock, held all night
    released = datetime(2026, 11, 26, 8, 0, 2, tzinfo=BUSINESS_TZ)
    assert business_time(released, decided, decided, WINDOW) == released


def test_sent_then_delivered_by_the_first_contact() -> None:
    decided = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    n = notice(decided, sent_at=WALL + timedelta(seconds=1),
               delivered_at=WALL + timedelta(seconds=2), failed=1)
    got = outcomes(n, WINDOW, WALL + timedelta(seconds=5))
    assert [(o.status, o.at) for o in got] == [
        (NoticeStatus.SENT, decided + timedelta(seconds=1)),
        (NoticeStatus.DELIVERED, decided + timedelta(seconds=2))]


def test_nothing_final_while_a_contact_is_still_to_try() -> None:
    n = notice(WALL, failed=1)
    assert outcomes(n, WINDOW, WALL) == []


def test_every_contact_lost_fails_or_cancels_with_the_reasons() -> None:
    failed = outcomes(notice(WALL, failed=2, undeliverable=2, reasons="no phone"), WINDOW, WALL)
    assert [(o.status, o.reason, o.permanent) for o in failed] == [
        (NoticeStatus.FAILED, "no phone", True)]
    mixed = outcomes(notice(WALL, failed=1, cancelled=1, sent_at=WALL, reasons="x"), WINDOW,
                     WALL)
    assert [(o.status, o.permanent) for o in mixed] == [
        (NoticeStatus.SENT, False), (NoticeStatus.CANCELLED, False)]
