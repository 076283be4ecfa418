"""One way to show a moment to people, one way to stamp a log line.

People (the dashboard, creditctl, CSV downloads) read business time: Asia/Shanghai wall time
to the second, labelled so nobody wonders which zone it is: "2026-11-30 20:00:00 北京时间".
The services store and exchange instants in UTC; only what a person reads goes through here.

Logs are read by tools as much as by people: ISO-8601 with the offset and milliseconds
("2026-12-02T23:32:57.247+08:00"), in the same zone as the screens so a time on the
dashboard can be searched in the log as it is.
"""

from datetime import date, datetime

from common.clock import BUSINESS_TZ, ensure_aware

LABEL = "北京时间"
_SHOWN = "%Y-%m-%d %H:%M:%S"


def parse_instant(value: object) -> datetime | None:
    """An aware datetime from a datetime or ISO-8601 text ("…Z" and "+08:00" included); a
    naive one is Asia/Shanghai wall time, as staff type it (`clock.ensure_aware`). None for
    anything else: a bare date, other text, None."""
    if isinstance(value, datetime):
        return ensure_aware(value)
    if not isinstance(value, str) or ("T" not in value and " " not in value.strip()):
        return None
    try:
        return ensure_aware(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def beijing_time(value: object, *, label: bool = True) -> str:
    """A moment as people read it: "2026-11-30 20:00:00 北京时间". A bare date stays a date
    ("2026-11-30": a business day has no zone), None is "", and text that is not a moment is
    shown as it is rather than hidden."""
    at = parse_instant(value)
    if at is None:
        if isinstance(value, date):
            return value.isoformat()
        return "" if value is None else str(value)
    shown = at.astimezone(BUSINESS_TZ).strftime(_SHOWN)
    return f"{shown} {LABEL}" if label else shown


def is_moment_key(key: str) -> bool:
    """Field names that hold a moment in the services' JSON (`created_at`, `due_at`,
    `reconciled_at`, ...): the CSV and table writers format these, and only these, as time."""
    return key == "at" or key.endswith("_at")


def log_timestamp(created: float) -> str:
    """A log record's time (`LogRecord.created`, Unix seconds) as ISO-8601 with offset."""
    return datetime.fromtimestamp(created, BUSINESS_TZ).isoformat(timespec="milliseconds")
