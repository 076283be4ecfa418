"""Promises to pay (承诺缴费) on a worklist entry: the policy's limits, the instalment schedule,
and what payments make of a promise (kept, broken, still open). Pure: no I/O, time is a
parameter (business dates, Asia/Shanghai).

What "paid" means: the account's dues of the bill months it owed when the promise was made
(`covered_through`, the newest of them) fell from `baseline_fen` to what they are now; a bill
issued later neither counts as paid nor hides a payment. The sweep's statement computes the
same (collections/adapters/promise_sql.py `DEFERRED_SQL`, tested against this module)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum


class PromiseStatus(StrEnum):
    OPEN = "open"
    KEPT = "kept"  # the promised amount paid by the promised date: the worklist entry closes
    BROKEN = "broken"  # a date passed with its (cumulative) amount not paid: the ladder resumes


@dataclass(frozen=True)
class PromisePolicy:
    """The limits (settings CREDIT_PROMISE_*): how far ahead staff may promise, how far a
    credit-admin may approve, how many promises an account may make in a year (the 365
    days before the new one's business date), how many instalments at most."""

    max_days: int = 15
    admin_max_days: int = 30
    per_year: int = 2
    max_instalments: int = 6


@dataclass(frozen=True)
class Step:
    """One date of the schedule: by `due_on`, `cumulative_fen` in all must have been paid."""

    due_on: date
    amount_fen: int
    cumulative_fen: int


@dataclass(frozen=True)
class Promise:
    promise_id: str
    account_id: str
    status: PromiseStatus
    promised_date: date
    amount_fen: int
    schedule: tuple[Step, ...]
    covered_through: str  # YYYY-MM
    baseline_fen: int
    recorded_at: datetime  # business time: it holds nothing back before

    def paid_fen(self, dues: Iterable[tuple[str, int]]) -> int:
        """What was paid towards it, given the account's dues now ((bill month, fen) pairs)."""
        owed = sum(fen for month, fen in dues if month <= self.covered_through and fen > 0)
        return max(0, self.baseline_fen - owed)

    def kept(self, paid_fen: int) -> bool:
        return paid_fen >= self.amount_fen

    def broken(self, paid_fen: int, today: date) -> bool:
        """A date of the schedule is over (before `today`) and what was due by it is not paid."""
        return not self.kept(paid_fen) and any(
            s.due_on < today and s.cumulative_fen > paid_fen for s in self.schedule)

    def defers(self, paid_fen: int, today: date) -> bool:
        """Whether it holds the account's suspension (and suspension warnings) back today."""
        return self.status is PromiseStatus.OPEN and not self.broken(paid_fen, today)

    def deferred_until(self, paid_fen: int) -> date | None:
        """The date of the next step not paid yet (None: the whole amount is paid)."""
        return next((s.due_on for s in self.schedule if s.cumulative_fen > paid_fen), None)

    def outcome(self, paid_fen: int, today: date) -> PromiseStatus:
        """What a check on `today` makes of an open promise. A payment counts whenever the
        check sees it (a payment on the promised date seen the next morning keeps it)."""
        if self.kept(paid_fen):
            return PromiseStatus.KEPT
        if self.broken(paid_fen, today):
            return PromiseStatus.BROKEN
        return PromiseStatus.OPEN


def schedule(promised_date: date, amount_fen: int,
             instalments: Sequence[tuple[date, int]] = ()) -> tuple[Step, ...]:
    """The steps: the instalments given, or the whole amount on the promised date."""
    parts = list(instalments) or [(promised_date, amount_fen)]
    steps, total = [], 0
    for due_on, fen in parts:
        total += fen
        steps.append(Step(due_on, fen, total))
    return tuple(steps)


def problems(policy: PromisePolicy, today: date, promised_date: date, amount_fen: int,
             instalments: Sequence[tuple[date, int]], arrears_fen: int,
             admin: bool) -> dict[str, str]:
    """Why a promise cannot be recorded (field → message); empty when it can. `admin`: the
    caller may approve up to the larger maximum (a credit-admin)."""
    found: dict[str, str] = {}
    ahead = (promised_date - today).days
    limit = policy.admin_max_days if admin else policy.max_days
    if ahead < 0:
        found["promised_date"] = f"{promised_date} is before the business date {today}"
    elif ahead > limit:
        found["promised_date"] = (
            f"{promised_date} is {ahead} days ahead: at most {limit} days"
            + ("" if admin else f" (a credit-admin may approve up to {policy.admin_max_days})"))
    if amount_fen <= 0:
        found["amount_fen"] = "the promised amount must be more than 0 fen"
    elif amount_fen > arrears_fen:
        found["amount_fen"] = (f"{amount_fen} fen is more than the entry's arrears "
                               f"({arrears_fen} fen)")
    found.update(_instalment_problems(policy, today, promised_date, amount_fen, instalments))
    return found


def _instalment_problems(policy: PromisePolicy, today: date, promised_date: date,
                         amount_fen: int,
                         instalments: Sequence[tuple[date, int]]) -> dict[str, str]:
    if not instalments:
        return {}
    dates = [d for d, _ in instalments]
    if len(instalments) > policy.max_instalments:
        return {"instalments": f"at most {policy.max_instalments} instalments"}
    if any(fen <= 0 for _, fen in instalments):
        return {"instalments": "every instalment must be more than 0 fen"}
    if sum(fen for _, fen in instalments) != amount_fen:
        return {"instalments": f"the instalments add up to {sum(f for _, f in instalments)} "
                               f"fen, not the promised {amount_fen} fen"}
    if dates != sorted(set(dates)):
        return {"instalments": "instalment dates must be distinct and in order"}
    if dates[0] < today or dates[-1] != promised_date:
        return {"instalments": "instalments fall between the business date and the promised "
                               "date, the last on the promised date"}
    return {}


def year_window(today: date) -> date:
    """The first day of the year counted for `PromisePolicy.per_year`."""
    return today - timedelta(days=364)
