"""domain/outcomes.py: a notice's outcomes from its messages, and their business time."""

from datetime import datetime, timedelta

from common.clock import BUSINESS_TZ
from common.contracts.notifier import NoticeStatus
from notifier.domain.outcomes import NoticeMessages, business_time, outcomes, sending_as_of
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


TIMEOUT = timedelta(hours=24)


def test_no_receipt_within_the_timeout_is_failed_at_the_moment_it_ran_out() -> None:
    decided = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    n = notice(decided, sent_at=WALL + timedelta(seconds=1))
    just_before = WALL + TIMEOUT
    assert [o.status for o in outcomes(n, WINDOW, just_before, TIMEOUT)] == [NoticeStatus.SENT]
    *_, failed = outcomes(n, WINDOW, WALL + TIMEOUT + timedelta(seconds=1), TIMEOUT)
    assert failed.status is NoticeStatus.FAILED and not failed.permanent
    # business time: the accepted moment + the timeout, wherever the scan came round
    assert failed.at == decided + timedelta(seconds=1) + TIMEOUT
    assert failed.reason == ("no delivery receipt within 86400 s of the SMSC accepting it "
                             "(receipt timeout)")
    later = outcomes(n, WINDOW, WALL + 3 * TIMEOUT, TIMEOUT)
    assert later[-1].at == failed.at  # the same outcome, whenever it is computed


def test_a_delivered_or_never_accepted_notice_never_times_out() -> None:
    decided = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    late = WALL + 10 * TIMEOUT
    delivered = notice(decided, sent_at=WALL, delivered_at=WALL + timedelta(hours=1))
    assert [o.status for o in outcomes(delivered, WINDOW, late, TIMEOUT)] == [
        NoticeStatus.SENT, NoticeStatus.DELIVERED]
    assert outcomes(notice(decided), WINDOW, late, TIMEOUT) == []  # still to be sent
    # without a timeout (the old behaviour) it waits for ever
    assert [o.status for o in outcomes(notice(decided, sent_at=WALL), WINDOW, late)] == [
        NoticeStatus.SENT]


def test_a_notice_held_by_quiet_hours_times_out_from_its_business_send() -> None:
    # Decided 22:00, accepted at once on the wall clock: business time 08:00 the next day.
    decided = datetime(2026, 11, 25, 22, 0, tzinfo=BUSINESS_TZ)
    n = notice(decided, sent_at=WALL)
    *_, failed = outcomes(n, WINDOW, WALL + 2 * TIMEOUT, TIMEOUT)
    assert failed.at == datetime(2026, 11, 27, 8, 0, tzinfo=BUSINESS_TZ)


def test_a_caught_up_decision_is_sent_and_dated_when_it_was_really_made() -> None:
    """A catch-up sweep decides as of the 25th's 20:00 but really runs on the 28th at 10:00
    (`caught_up_at`, its wall time too): its SMS is delivered on the 28th, not the 25th."""
    missed = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    caught_up = datetime(2026, 11, 28, 10, 0, tzinfo=BUSINESS_TZ)
    as_of = sending_as_of(missed, caught_up)
    assert as_of == caught_up
    n = notice(as_of, decided_at=caught_up, sent_at=caught_up + timedelta(seconds=1),
               delivered_at=caught_up + timedelta(seconds=4))
    got = outcomes(n, WINDOW, caught_up + timedelta(seconds=5))
    assert [(o.status, o.at) for o in got] == [
        (NoticeStatus.SENT, caught_up + timedelta(seconds=1)),
        (NoticeStatus.DELIVERED, caught_up + timedelta(seconds=4))]


def test_an_on_time_decision_keeps_its_own_business_time() -> None:
    decided = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    assert sending_as_of(decided, None) == decided
    # a "catch-up" time before the decision's own (a clock behind) moves nothing back
    assert sending_as_of(decided, decided - timedelta(hours=1)) == decided
