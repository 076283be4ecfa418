"""Time is a parameter: business rules ask a Clock, tests and sweeps pass `as_of`."""

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move (tests, demos, replays)."""

    def __init__(self, at: datetime) -> None:
        self._at = ensure_aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = ensure_aware(at)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def ensure_aware(at: datetime) -> datetime:
    """A naive datetime is read as Asia/Shanghai wall time, the way staff type it."""
    return at if at.tzinfo is not None else at.replace(tzinfo=BUSINESS_TZ)


def business_date(at: datetime) -> date:
    """The calendar day in Asia/Shanghai: the 25th and the month's last day are local days."""
    return ensure_aware(at).astimezone(BUSINESS_TZ).date()


def last_day_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def is_last_day_of_month(day: date) -> bool:
    return day == last_day_of_month(day)


def parse_bill_month(text: str) -> date:
    """'2026-10' → date(2026, 10, 1); raises ValueError on anything else."""
    if not _BILL_MONTH.fullmatch(text):  # ASCII digits: str.isdigit() accepts "２０２６"
        raise ValueError(f"bill month must look like YYYY-MM, got {text!r}")
    return date(int(text[:4]), int(text[5:]), 1)


_BILL_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")
