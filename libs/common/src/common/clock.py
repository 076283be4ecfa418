"""Time is a parameter: business rules ask a Clock, tests and sweeps pass `as_of`."""

import calendar
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

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


class ClockMovesBackward(ValueError):
    """A simulated clock is only ever moved forward: business time stays monotonic."""


class SimulatedClock:
    """The simulation clock (docs/simulation-clock.md): a base clock (the wall clock) plus an
    offset that only grows. Wall time still flows between moves; a move adds to the offset.

    Moving back is refused (Kill Bill's test clock allows resets; here sweeps, ladders and
    audits assume business time never runs backwards). Thread-safe; listeners are called
    after each move, outside the lock, in the thread that moved it (the event loop's: the
    follower and the HTTP route both run there)."""

    def __init__(self, base: Clock | None = None, offset: timedelta = timedelta(0)) -> None:
        if offset < timedelta(0):
            raise ClockMovesBackward("a simulated clock starts at or ahead of its base clock")
        self._base = base or SystemClock()
        self._offset = offset
        self._lock = threading.Lock()
        self._listeners: list[Callable[[timedelta], None]] = []
        self.moves = 0  # how often it moved: a loop tells a jump from a timer running out

    def now(self) -> datetime:
        return self._base.now() + self._offset

    def base_now(self) -> datetime:
        return self._base.now()

    @property
    def offset(self) -> timedelta:
        return self._offset

    def move_to_offset(self, offset: timedelta) -> bool:
        """Set the offset; False when it is the offset already. Smaller is refused."""
        with self._lock:
            if offset < self._offset:
                raise ClockMovesBackward(
                    f"the simulated clock only moves forward: offset {offset} is behind "
                    f"{self._offset}")
            if offset == self._offset:
                return False
            self._offset = offset
            self.moves += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(offset)
        return True

    def advance(self, delta: timedelta) -> bool:
        if delta < timedelta(0):
            raise ClockMovesBackward(f"the simulated clock only moves forward, not by {delta}")
        with self._lock:
            target = self._offset + delta
        return self.move_to_offset(target)

    def offset_for(self, at: datetime) -> timedelta:
        """The offset that makes now() read `at` at this moment; refused if `at` is past."""
        at = ensure_aware(at)
        offset = at - self._base.now()
        if offset < self._offset:
            raise ClockMovesBackward(
                f"{at.isoformat()} is before the simulated now {self.now().isoformat()}: "
                "the simulated clock only moves forward")
        return offset

    def advance_to(self, at: datetime) -> bool:
        return self.move_to_offset(self.offset_for(at))

    def on_move(self, listener: Callable[[timedelta], None]) -> Callable[[], None]:
        """Call `listener(offset)` after every move; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe


def clock_moves(clock: Clock) -> int:
    """How often `clock` was moved (0 for a clock that is not simulated)."""
    return clock.moves if isinstance(clock, SimulatedClock) else 0


def ensure_aware(at: datetime) -> datetime:
    """A naive datetime is read as Asia/Shanghai wall time, the way staff type it."""
    return at if at.tzinfo is not None else at.replace(tzinfo=BUSINESS_TZ)


def business_date(at: datetime) -> date:
    """The calendar day in Asia/Shanghai: the 25th and the month's last day are local days.

    Every balance event asks (~1 µs through `astimezone` and the zone's rules, with the
    call): a UTC instant since 1992 takes the fast path, UTC + 8 h, as long as the zone's
    rules agree (`_fixed_offset_since`)."""
    if at.tzinfo is UTC and _FAST_FROM is not None and at >= _FAST_FROM:
        return (at + _FAST_OFFSET).date()
    return ensure_aware(at).astimezone(BUSINESS_TZ).date()


def _fixed_offset_since(start: datetime, offset: timedelta, until_year: int = 2200) -> bool:
    """Whether BUSINESS_TZ keeps `offset` from `start` on: checked at import against the
    zone's own rules at every month's start and middle up to `until_year`, so a tzdata
    update bringing back daylight-saving time turns the fast path off instead of moving a
    business date by an hour. (Asia/Shanghai has been UTC+8 without DST since 1991-09.)"""
    for year in range(start.year, until_year):
        for month in range(1, 13):
            for day in (1, 15):
                if datetime(year, month, day, 12, tzinfo=UTC).astimezone(
                        BUSINESS_TZ).utcoffset() != offset:
                    return False
    return True


_FAST_OFFSET = timedelta(hours=8)
_SINCE = datetime(1992, 1, 1, tzinfo=UTC)
_FAST_FROM: datetime | None = _SINCE if _fixed_offset_since(_SINCE, _FAST_OFFSET) else None


def month_text(day: date) -> str:
    """'2026-10' for any day of October 2026: the bill month as the seed writes it
    (`f"{day:%Y-%m}"` goes through strftime: 1.6 µs against 0.5, once per decision)."""
    return f"{day.year:04d}-{day.month:02d}"


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

# The months an API takes (a report's, a KPI's, a bill run's): 2000-01 to 8999-12. Reports reach
# a year back and months ahead; the bounds keep that arithmetic inside what dates can hold.
BUSINESS_MONTH_PATTERN = r"^[2-8][0-9]{3}-(0[1-9]|1[0-2])$"
BUSINESS_MONTH_HINT = "YYYY-MM, a month from 2000-01 to 8999-12"


def parse_business_month(text: str) -> date:
    """A month given over the API: parse_bill_month within 2000-01..8999-12."""
    if not re.fullmatch(BUSINESS_MONTH_PATTERN, text):
        raise ValueError(f"month must be {BUSINESS_MONTH_HINT}, got {text!r}")
    return parse_bill_month(text)


# --- Business time within bounds -------------------------------------------------------------
# A write's business time (`as_of`, `paid_at`, a receipt's `at`, ...) may lie in the past: a
# back-dated run is ordinary work. Ahead of the clock it is refused, beyond a small tolerance
# for clocks that differ, unless the service runs in simulation mode (demos, the test suite's
# year-2200 months): a sweep "in 6963" once sent 84 real-looking SMS about that year.

DEFAULT_FLOOR = datetime(2000, 1, 1, tzinfo=BUSINESS_TZ)
# Even a simulation stays far from datetime's end: rules add months and days to as_of.
SIMULATION_CEILING = datetime(9000, 1, 1, tzinfo=BUSINESS_TZ)
DEFAULT_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class BusinessTimeBounds:
    """Where a write's business time may lie: [floor, now + tolerance], or [floor, ceiling)
    in simulation mode."""

    simulation: bool = False
    tolerance: timedelta = DEFAULT_TOLERANCE
    floor: datetime = DEFAULT_FLOOR
    clock: Clock = field(default_factory=SystemClock)

    def refusal(self, at: datetime) -> str | None:
        """Why `at` is out of bounds, or None when it is within them."""
        at = ensure_aware(at)
        if at < self.floor:
            return f"is before {self.floor.date().isoformat()}, the earliest business time"
        if at >= SIMULATION_CEILING:
            return f"is after {SIMULATION_CEILING.year - 1}, beyond any business time"
        if not self.simulation and at > self.clock.now() + self.tolerance:
            return (f"is more than {_span(self.tolerance)} ahead of the clock; running ahead "
                    "of the clock needs simulation mode (<PREFIX>SIMULATION_MODE=true)")
        return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


_bounds = BusinessTimeBounds()


def configure_business_time(bounds: BusinessTimeBounds) -> None:
    """Set once per process from the service's settings (common.app.service_app)."""
    global _bounds
    _bounds = bounds


def business_time_bounds() -> BusinessTimeBounds:
    return _bounds


@contextmanager
def business_time_within(bounds: BusinessTimeBounds) -> Iterator[None]:
    """Other bounds for a block (tests): restored afterwards."""
    before = _bounds
    configure_business_time(bounds)
    try:
        yield
    finally:
        configure_business_time(before)


# ISO-8601 only: a date, or a date and time with an optional offset. Pydantic alone would also
# read "0.5" or 1700000000 as seconds since 1970.
_ISO_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?")
ISO_HINT = ("an ISO-8601 date-time such as 2026-11-25T20:00:00+08:00; a date alone "
            "(2026-11-25) means 00:00 Asia/Shanghai of that day")


def strict_iso_moment(value: Any) -> Any:
    """Before pydantic's own parsing: refuse numbers and non-ISO text."""
    if isinstance(value, str):
        if not _ISO_MOMENT.fullmatch(value):
            raise ValueError(f"must be {ISO_HINT}")
        return value
    if isinstance(value, datetime | date):
        return value
    raise ValueError(f"must be {ISO_HINT}")


def _within_bounds(at: datetime, info: ValidationInfo) -> datetime:
    at = ensure_aware(at)
    why = _bounds.refusal(at)
    if why is not None:
        raise ValueError(f"{info.field_name or 'the business time'} {at.isoformat()} {why}")
    return at


# A write's business time: strict ISO-8601, naive read as Asia/Shanghai, within the bounds.
BusinessTime = Annotated[
    datetime, BeforeValidator(strict_iso_moment), AfterValidator(_within_bounds),
    Field(examples=["2026-11-25T20:00:00+08:00"],
          description="business time, ISO-8601; not before 2000-01-01 and not ahead of the "
                      "clock (beyond a small tolerance) unless the service is in simulation "
                      "mode; a date alone means 00:00 Asia/Shanghai"),
]
def _month_within_bounds(text: str, info: ValidationInfo) -> str:
    """A business month of a write (a charge's, a bill run's): its first moment within the
    bounds, so no month is billed before it has begun outside simulation mode."""
    try:
        first = datetime.combine(parse_business_month(text), datetime.min.time(), BUSINESS_TZ)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    why = _bounds.refusal(first)
    if why is not None:
        raise ValueError(f"{info.field_name or 'the month'} {text} begins {first.isoformat()}, "
                         f"which {why}")
    return text


# A business month of a write, YYYY-MM: the pattern in the schema is what the code accepts.
BusinessMonth = Annotated[str, AfterValidator(_month_within_bounds), Field(
    examples=["2026-10"], description=BUSINESS_MONTH_HINT,
    json_schema_extra={"pattern": BUSINESS_MONTH_PATTERN})]


# A moment that is not the business time of a write (a filter, a deadline): strict ISO only,
# naive read as Asia/Shanghai, and within what dates can hold (year 2000..8999).
# A read may look a little past the last business month (a report's measuring day months
# after the bill month), still far from what dates can hold.
READ_CEILING = datetime(9900, 1, 1, tzinfo=BUSINESS_TZ)
# The first month a business month may be (BUSINESS_MONTH_PATTERN): reports reaching back
# from an early month stop here.
EARLIEST_MONTH = date(2000, 1, 1)


def _plausible(at: datetime, info: ValidationInfo) -> datetime:
    at = ensure_aware(at)
    if not DEFAULT_FLOOR <= at < READ_CEILING:
        raise ValueError(f"{info.field_name or 'the moment'} {at.isoformat()} is outside "
                         f"2000-01-01 .. {READ_CEILING.year - 1}-12-31")
    return at


IsoMoment = Annotated[datetime, BeforeValidator(strict_iso_moment), AfterValidator(_plausible),
                      Field(examples=["2026-11-25T20:00:00+08:00"])]


def _strict_iso_day(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("must be a business day, YYYY-MM-DD")


def _plausible_day(day: date, info: ValidationInfo) -> date:
    if not DEFAULT_FLOOR.date() <= day < READ_CEILING.date():
        raise ValueError(f"{info.field_name or 'the day'} {day.isoformat()} is outside "
                         f"2000-01-01 .. {READ_CEILING.year - 1}-12-31")
    return day


# A business day (a report's `as_of`: the state at the end of that day), strict YYYY-MM-DD.
IsoDay = Annotated[date, BeforeValidator(_strict_iso_day), AfterValidator(_plausible_day),
                   Field(examples=["2026-11-25"])]


def carried_business_time(at: datetime, decided_as_of: datetime, decided_at: datetime,
                          now: datetime) -> datetime:
    """The business time of a step that follows a decision (a chain confirmation, a work-order
    step): the decision's business time plus how long the step took on the wall clock. A
    back-dated run's confirmations then fall in the run's own month, not in today's.

    `at` is a wall-clock reading when it lies between the decision's wall time and now; any
    other `at` is already business time (a simulated chain advanced `as_of` a moment), which
    is kept, though never before the decision."""
    if decided_at <= at <= now:
        return decided_as_of + (at - decided_at)
    return max(at, decided_as_of)
