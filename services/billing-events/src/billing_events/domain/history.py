"""An account's balance history, recomputed from its ledger: what its balance events said at
each moment of a window (docs/billing.md, "Balance history"). Pure.

The ledger keeps every movement with its business moment (a bill run's `as_of`, a payment's
`paid_at`, a reversal's `reversed_at`, an adjustment's `adjusted_at`, a write-off's
`written_off_at`, a deposit movement's `at`), so the position at any moment is the same
allocation the balance events use (`model.position`, `allocation.product_positions`) over the
movements up to that moment. What-if replays (credit-control's `whatif/`) read it instead of a
copy of every balance event: nothing is written per event for them.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from .allocation import product_positions
from .model import MonthDue, position


@dataclass(frozen=True)
class Movement:
    """One dated ledger movement. `credit_fen`: what it adds to the credits (payments and
    write-offs > 0, a reversal < 0); `bill_fen`: an adjustment's change to a bill; `deposit_fen`:
    a deposit movement."""

    at: datetime
    cause: str  # a BalanceCause value: payment, reversal, adjustment, write_off, deposit…
    credit_fen: int = 0
    bill: tuple[date, str] | None = None  # (bill month, product id) of an adjustment
    bill_fen: int = 0
    deposit_fen: int = 0


@dataclass
class TimedLedger:
    """One account's ledger with moments: charges per (bill month, product), the moment each
    bill month was closed (its bill run), and the dated movements."""

    account_id: str
    charges: dict[tuple[date, str], int] = field(default_factory=dict)
    movements: list[Movement] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Point:
    """The account's position just after `at` (what its balance event of `cause` said)."""

    at: datetime
    cause: str
    balance_fen: int
    amount_due_fen: int
    dues: tuple[MonthDue, ...]
    deposit_fen: int
    product_dues: tuple[tuple[str, int], ...]  # (product id, its own amount due)
    closed_bill_month: date | None = None
    # (product id, what it still owes per bill month, oldest first), owing products only:
    # which product a new credit pays (allocation.paid_by), e.g. the what-if's deduction
    # notices, one per product billing's deduction would pay.
    product_month_dues: tuple[tuple[str, tuple[MonthDue, ...]], ...] = ()


def position_at(ledger: TimedLedger, closed: dict[date, datetime], at: datetime,
                cause: str, closed_bill_month: date | None = None) -> Point:
    """The position counting every movement up to `at` and the bill months closed by then."""
    bills: dict[tuple[date, str], int] = {}
    for bill, fen in ledger.charges.items():
        if _closed_by(closed, bill[0], at):
            bills[bill] = bills.get(bill, 0) + fen
    credits = deposit = 0
    for m in ledger.movements:
        if m.at > at:
            continue
        credits += m.credit_fen
        deposit += m.deposit_fen
        if m.bill is not None and _closed_by(closed, m.bill[0], at):
            bills[m.bill] = bills.get(m.bill, 0) + m.bill_fen
    by_month: dict[date, int] = {}
    for (month, _), fen in bills.items():
        by_month[month] = by_month.get(month, 0) + fen
    pos = position(by_month, 0, credits)
    products = product_positions(bills, {}, credits, ledger.product_ids)
    return Point(at, cause, pos.balance_fen, pos.amount_due_fen, pos.dues, deposit,
                 tuple((p.product_id, p.amount_due_fen) for p in products), closed_bill_month,
                 tuple((p.product_id, p.dues) for p in products if p.dues))


def _closed_by(closed: dict[date, datetime], month: date, at: datetime) -> bool:
    run = closed.get(month)
    return run is not None and run <= at


def history(ledger: TimedLedger, closed: dict[date, datetime], start: datetime,
            end: datetime) -> list[Point]:
    """The opening position at `start`, then one point per moment in (start, end] at which
    the ledger moved (a bill run closing a month the account was billed in, a payment…):
    the balance events the account had in the window, recomputed."""
    points = [position_at(ledger, closed, start, "opening")]
    for at, cause, month in _moments(ledger, closed, start, end):
        points.append(position_at(ledger, closed, at, cause, month))
    return points


def _moments(ledger: TimedLedger, closed: dict[date, datetime], start: datetime,
             end: datetime) -> Iterable[tuple[datetime, str, date | None]]:
    billed = {month for month, _ in ledger.charges} | {
        m.bill[0] for m in ledger.movements if m.bill is not None}
    found: dict[datetime, tuple[str, date | None]] = {}
    for m in sorted(ledger.movements, key=lambda m: m.at):
        if start < m.at <= end:
            found.setdefault(m.at, (m.cause, None))
    for month, run in closed.items():
        if month in billed and start < run <= end:
            found[run] = ("bill_run", month)  # a bill run's event says which month it closed
    return sorted((at, cause, month) for at, (cause, month) in found.items())
