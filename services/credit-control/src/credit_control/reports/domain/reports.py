"""Report arithmetic: arrears rate, recovery rates, aging buckets (账龄), KPI judgements.

Pure: money in integer fen, rates as exact decimals computed from sums of fen (never an
average of rates). The figures themselves come from billing (receivables, arrears), the
notifier (reminders), the gateway (EMOS orders, reconciliation) and our own tables.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from common.clock import last_day_of_month
from common.display_time import beijing_time, is_moment_key

ARREARS_RATE_TARGET = Decimal("0.005")  # seed 000: the company limit, 0.5%
CURRENT_MONTH_RECOVERY_TARGET = Decimal("0.96")  # seed 002: 当月欠费回收率 ≥ 96%
REMINDER_TIMELINESS_TARGET = Decimal("0.95")  # seed 000: 费用提醒及时率 ≥ 95%
EMOS_CROSS_MONTH_TARGET = Decimal("0.005")  # seed 000: EMOS 延时跨月结单 ≤ 0.5%
AGING_BUCKETS = ("current", "one_month", "two_months", "three_plus_months")
_SIX = Decimal("0.000001")
_TWO = Decimal("0.01")


@dataclass(frozen=True)
class Figures:
    """What was billed for some bill months (receivables) and what of it is unpaid."""

    receivables_fen: int
    arrears_fen: int
    # Covered by write-offs (核销, less their lapses): neither arrears nor collected; a
    # write-off is the operator giving up on a debt, never money collected (docs/billing.md).
    written_off_fen: int = 0

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(self.receivables_fen + other.receivables_fen,
                       self.arrears_fen + other.arrears_fen,
                       self.written_off_fen + other.written_off_fen)

    @property
    def collected_fen(self) -> int:
        return self.receivables_fen - self.arrears_fen - self.written_off_fen

    @property
    def arrears_rate(self) -> Decimal | None:
        """欠费率 = arrears / receivables; None when nothing was billed."""
        return ratio(self.arrears_fen, self.receivables_fen)

    @property
    def recovery_rate(self) -> Decimal | None:
        """回收率 = collected / receivables, from the fen sums: 1 − arrears rate less what was
        written off (a write-off is never collected)."""
        return ratio(self.collected_fen, self.receivables_fen)

    @property
    def meets_arrears_target(self) -> bool | None:
        """Judged on the exact fraction, not the 6-place rate shown: 0.0050004 rounds to
        0.005000 but is over the 0.5% limit."""
        return at_most(self.arrears_fen, self.receivables_fen, ARREARS_RATE_TARGET)

    def as_dict(self) -> dict[str, Any]:
        return {"receivables_fen": self.receivables_fen, "arrears_fen": self.arrears_fen,
                "arrears_rate": text(self.arrears_rate),
                "arrears_rate_percent": percent(self.arrears_fen, self.receivables_fen)}


def total(figures: Iterable[Figures]) -> Figures:
    return sum(figures, Figures(0, 0))


def ratio(part: int, whole: int) -> Decimal | None:
    """part / whole exact to 6 decimal places, half up; None for an empty whole."""
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_SIX, rounding=ROUND_HALF_UP)


def exact_ratio(part: int, whole: int) -> Fraction | None:
    """part / whole with nothing rounded, for judging against a target; None for an empty whole."""
    return None if whole == 0 else Fraction(part, whole)


def at_most(part: int, whole: int, target: Decimal) -> bool | None:
    exact = exact_ratio(part, whole)
    return None if exact is None else exact <= Fraction(target)


def at_least(part: int, whole: int, target: Decimal) -> bool | None:
    exact = exact_ratio(part, whole)
    return None if exact is None else exact >= Fraction(target)


def percent(part: int, whole: int) -> str | None:
    """The seed's way of writing a rate: '0.38' (%), two places, half up."""
    if whole == 0:
        return None
    return str((Decimal(part * 100) / Decimal(whole)).quantize(_TWO, rounding=ROUND_HALF_UP))


def text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# --- calendar -------------------------------------------------------------------------------

def add_months(month: date, n: int) -> date:
    """The first day of the month `n` months after `month` (n may be negative)."""
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_text(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def months_between(first: date, last: date) -> list[date]:
    count = (last.year * 12 + last.month) - (first.year * 12 + first.month)
    return [add_months(first.replace(day=1), i) for i in range(count + 1)]


def collection_deadline(bill_month: date, months_after: int) -> date:
    """The last day of the `months_after`-th month after the bill month. Bill month M is billed
    at the start of M+1, so M+1 is the month it is collected in (当月); M+3 closes the
    three-month window (三月内 / 近三个月)."""
    return last_day_of_month(add_months(bill_month, months_after))


def measuring_day(bill_month: date, today: date) -> date:
    """Where a bill month's arrears are measured unless a day is given: the end of the month
    its bill is collected in (M+1), or today while that month is still running. Fixed for a
    past month, so the same request gives the same figure on any later day."""
    return min(collection_deadline(bill_month, 1), today)


def end_of(month: date, today: date) -> date:
    """A report 'for month M' that looks at a moment (aging, states, work orders): the end of
    M, or today while M is still running."""
    return min(last_day_of_month(month), today)


def latest_billed_month(as_of: date) -> date:
    """The newest bill month whose bill has gone out by `as_of` (bills go out in M+1)."""
    return add_months(as_of.replace(day=1), -1)


# --- recovery -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recovery:
    """One recovery rate of a bill month: what was collected by `deadline` of what was billed.
    `complete` is False while the deadline lies after the day measured (a figure so far)."""

    name: str
    deadline: date
    measured_on: date
    figures: Figures
    target: Decimal | None = None

    @property
    def complete(self) -> bool:
        return self.measured_on >= self.deadline

    def as_dict(self) -> dict[str, Any]:
        rate = self.figures.recovery_rate
        return {
            "name": self.name, "deadline": self.deadline.isoformat(),
            "measured_on": self.measured_on.isoformat(), "complete": self.complete,
            "receivables_fen": self.figures.receivables_fen,
            "collected_fen": self.figures.collected_fen,
            "arrears_fen": self.figures.arrears_fen,
            "written_off_fen": self.figures.written_off_fen,
            "recovery_rate": text(rate),
            "recovery_rate_percent": percent(self.figures.collected_fen,
                                             self.figures.receivables_fen),
            "target": text(self.target),
            "meets_target": None if self.target is None else at_least(
                self.figures.collected_fen, self.figures.receivables_fen, self.target),
        }


# --- aging ----------------------------------------------------------------------------------

def months_overdue(bill_month: date, as_of: date) -> int:
    """0 while the bill is current (the month after its bill month); then 1, 2, 3, …"""
    return max((as_of.year * 12 + as_of.month) - (bill_month.year * 12 + bill_month.month) - 1,
               0)


def aging_buckets(arrears_by_month: Mapping[date, int], as_of: date) -> dict[str, int]:
    """账龄: the arrears still open on `as_of`, by how long their bill has been out. Same
    boundaries as billing's account aging: current / 1 month / 2 months / 3 months and more."""
    buckets = dict.fromkeys(AGING_BUCKETS, 0)
    for month, fen in arrears_by_month.items():
        buckets[AGING_BUCKETS[min(months_overdue(month, as_of), 3)]] += fen
    return buckets


# --- KPIs -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kpi:
    """A figure judged against the seed's standard: at least (`>=`) or at most (`<=`).
    `value` is what is shown (a rate rounded to 6 places); `exact`, when given, is what is
    judged, so a rate just over a limit never rounds into meeting it."""

    name: str
    value: Decimal | int | None
    target: Decimal | int
    direction: str  # ">=" or "<="
    detail: Mapping[str, Any]
    exact: Fraction | None = None

    @property
    def meets_target(self) -> bool | None:
        if self.value is None:
            return None
        judged = Fraction(self.value) if self.exact is None else self.exact
        target = Fraction(self.target)
        return judged >= target if self.direction == ">=" else judged <= target

    def as_dict(self) -> dict[str, Any]:
        value = self.value
        return {"name": self.name,
                "value": str(value) if isinstance(value, Decimal) else value,
                "target": str(self.target) if isinstance(self.target, Decimal) else self.target,
                "direction": self.direction, "meets_target": self.meets_target,
                **dict(self.detail)}


def share(part: int, whole: int) -> Decimal | None:
    return ratio(part, whole)


# --- CSV ------------------------------------------------------------------------------------

def flatten(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows of flat dicts → a header (in first-seen key order) and string cells; None is '',
    a moment (a datetime, or a `*_at` field's ISO text) is shown as 北京时间 to the second."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    cells = [[_cell(k, row.get(k)) for k in header] for row in rows]
    return header, cells


def _cell(key: str, value: Any) -> str:
    if isinstance(value, datetime) or (is_moment_key(key) and isinstance(value, str)):
        return beijing_time(value)
    return "" if value is None else str(value)
