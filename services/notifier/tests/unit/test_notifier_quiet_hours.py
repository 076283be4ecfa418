"""notifier.domain.quiet_hours: when an SMS may go, and when a held one is released."""

from datetime import datetime

import pytest

from common.clock import BUSINESS_TZ
from notifier.domain.quiet_hours import SendingWindow


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BUSINESS_TZ)


DAY = SendingWindow.parse("08:00-21:00")


@pytest.mark.parametrize(("at", "held_until"), [
    ("2026-11-25 07:59", "2026-11-25 08:00"),
    ("2026-11-25 08:00", None),
    ("2026-11-25 12:00", None),
    ("2026-11-25 20:59", None),
    ("2026-11-25 21:00", "2026-11-26 08:00"),
    ("2026-11-25 23:30", "2026-11-26 08:00"),
    ("2026-11-30 22:00", "2026-12-01 08:00"),  # month end
    ("2026-12-31 23:59", "2027-01-01 08:00"),
    ("2026-11-26 00:00", "2026-11-26 08:00"),
])
def test_day_window(at: str, held_until: str | None) -> None:
    expected = None if held_until is None else local(held_until)
    assert DAY.hold_until(local(at)) == expected
    assert DAY.is_open(local(at)) is (held_until is None)


def test_utc_moments_are_read_in_shanghai_time() -> None:
    # 13:30 UTC is 21:30 in Shanghai: closed.
    at = datetime.fromisoformat("2026-11-25T13:30:00+00:00")
    assert DAY.hold_until(at) == local("2026-11-26 08:00")


def test_always_open() -> None:
    always = SendingWindow.parse("00:00-24:00")
    assert always.always_open
    assert always.hold_until(local("2026-11-25 03:00")) is None
    assert always.hold_until(local("2026-11-25 23:59")) is None


@pytest.mark.parametrize(("at", "held_until"), [
    ("2026-11-25 23:00", None),
    ("2026-11-26 05:59", None),
    ("2026-11-26 06:00", "2026-11-26 22:00"),
    ("2026-11-26 12:00", "2026-11-26 22:00"),
])
def test_window_over_midnight(at: str, held_until: str | None) -> None:
    night = SendingWindow.parse("22:00-06:00")
    assert night.hold_until(local(at)) == (None if held_until is None else local(held_until))


@pytest.mark.parametrize("text", ["8:00-21:00", "08:00-25:00", "08:00-08:00", "24:00-08:00",
                                  "08:60-21:00", "", "08:00–21:00"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        SendingWindow.parse(text)


def test_window_prints_as_parsed() -> None:
    assert str(SendingWindow.parse("08:00-21:00")) == "08:00-21:00"
