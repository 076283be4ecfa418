"""Late fees (滞纳金, seed 001: "电信部门有权按规定向欠费用户收取滞纳金"). Optional and OFF by
default. Pure: no I/O. docs/billing.md "Late fees".

- A bill month's amount is due by the last day of the following month (the month the
  seed-000 ladder suspends in); after a grace period, every further day costs a daily rate
  on what that product's bill of that month still owes.
- The fee is posted by the next bill run as its own line (a late-fee charge of the product,
  in the bill month the run closes), from the day after the last posting through the day
  before the run's business date.
- Capped per product and bill month: all postings together never exceed a share of the
  amount still owed.
- Never charged to a customer exempt from suspension (red list or emergency no-suspension,
  as credit-control's decisions on the account last said) nor on a disputed bill: the period
  is recorded with fee 0 and the reason, and is not charged later either.

Money in integer fen; rounding: **down** (floor) once per line, after multiplying — the
customer is never charged a fraction of a fen, and the day count is exact.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

PER = 10_000  # rates and caps in hundredths of a percent (basis points)


@dataclass(frozen=True)
class LateFeePolicy:
    enabled: bool = False
    rate_bp_per_day: int = 30  # 0.3 % a day: 千分之三, the rate telecom contracts commonly use
    grace_days: int = 15  # days after the due date before the first day is charged
    cap_bp: int = 3_000  # all postings of a bill together ≤ 30 % of what it still owes

    def __post_init__(self) -> None:
        if self.rate_bp_per_day < 0 or self.grace_days < 0 or self.cap_bp < 0:
            raise ValueError("late-fee rate, grace and cap are never negative")


def due_date(bill_month: date) -> date:
    """A bill month's payment deadline: the last day of the following month."""
    nxt = (bill_month.replace(day=1) + timedelta(days=32)).replace(day=1)
    return nxt.replace(day=calendar.monthrange(nxt.year, nxt.month)[1])


def first_charged_day(bill_month: date, grace_days: int) -> date:
    return due_date(bill_month) + timedelta(days=grace_days + 1)


@dataclass(frozen=True)
class Bill:
    """One product's bill of one month, as a posting sees it."""

    product_id: str
    bill_month: date
    owed_fen: int  # what it still owes now
    posted_fen: int = 0  # late fees already posted for it (the cap counts them)
    charged_through: date | None = None  # the last day already charged (or forgiven)
    disputed: bool = False


@dataclass(frozen=True)
class Line:
    product_id: str
    bill_month: date
    base_fen: int
    first_day: date
    last_day: date
    days: int
    fee_fen: int
    note: str  # why the fee is what it is: "", "capped", "exempt: …", "disputed"


def line_for(bill: Bill, policy: LateFeePolicy, run_day: date, exempt: bool) -> Line | None:
    """The late-fee line a bill run on `run_day` posts for `bill` (None: no days to charge).
    Days run from the first chargeable day (or the day after the last charged one) through
    the day before `run_day`."""
    if bill.owed_fen <= 0:
        return None
    start = first_charged_day(bill.bill_month, policy.grace_days)
    if bill.charged_through is not None:
        start = max(start, bill.charged_through + timedelta(days=1))
    end = run_day - timedelta(days=1)
    days = (end - start).days + 1
    if days <= 0:
        return None
    if exempt or bill.disputed:
        note = "exempt: red list or emergency no-suspension" if exempt else "disputed"
        return Line(bill.product_id, bill.bill_month, bill.owed_fen, start, end, days, 0, note)
    fee = bill.owed_fen * policy.rate_bp_per_day * days // PER
    room = max(0, bill.owed_fen * policy.cap_bp // PER - bill.posted_fen)
    note = "capped" if fee > room else ""
    return Line(bill.product_id, bill.bill_month, bill.owed_fen, start, end, days,
                min(fee, room), note)


def lines_for(bills: list[Bill], policy: LateFeePolicy, run_day: date,
              exempt: bool) -> list[Line]:
    """An account's lines of one bill run, in (bill month, product id) order; none when late
    fees are off."""
    if not policy.enabled:
        return []
    ordered = sorted(bills, key=lambda b: (b.bill_month, b.product_id))
    return [line for b in ordered if (line := line_for(b, policy, run_day, exempt))]
