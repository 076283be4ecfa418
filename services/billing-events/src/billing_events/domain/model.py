"""The account's money position, computed from its bill months and payments. Pure."""

import re
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

# ASCII digits only, whole string: \d and $ would let "１３８…" or a trailing newline through.
MOBILE_PHONE = re.compile(r"1[3-9][0-9]{9}")


# Value objects as NamedTuples: immutable like a frozen dataclass, and made several times
# faster, which a bill run (100,000 positions) notices.
class MonthDue(NamedTuple):
    bill_month: date
    amount_due_fen: int


class AccountPosition(NamedTuple):
    """balance_fen < 0 means the account owes; dues list only the closed months still owing."""

    balance_fen: int
    amount_due_fen: int
    dues: tuple[MonthDue, ...]
    unbilled_fen: int

    @property
    def in_arrears(self) -> bool:
        return self.amount_due_fen > 0


def position(billed_by_month: dict[date, int], unbilled_fen: int, paid_fen: int) -> AccountPosition:
    """Allocate everything paid to the oldest bill month first (seed practice: old arrears
    are cleared before new ones); what is left over is credit on the account."""
    remaining = paid_fen
    dues: list[MonthDue] = []
    billed_total = amount_due = 0
    for month in sorted(billed_by_month):
        billed = billed_by_month[month]
        billed_total += billed
        covered = min(billed, max(remaining, 0))
        remaining -= covered
        if billed - covered > 0:
            dues.append(MonthDue(month, billed - covered))
            amount_due += billed - covered
    return AccountPosition(
        balance_fen=paid_fen - billed_total,
        amount_due_fen=amount_due,
        dues=tuple(dues),
        unbilled_fen=unbilled_fen,
    )


def is_mobile_phone(phone: str) -> bool:
    return bool(MOBILE_PHONE.fullmatch(phone))


@dataclass(frozen=True)
class Aging:
    """Amount due by age (账龄) as of a day. A bill month's bill goes out in the month after
    it, so in that month it is current; one month later it is one month overdue, and so on."""

    current_fen: int = 0
    one_month_fen: int = 0
    two_months_fen: int = 0
    three_plus_months_fen: int = 0


def months_overdue(bill_month: date, as_of: date) -> int:
    """0 while the bill is current (the month after its bill month or earlier)."""
    return max((as_of.year * 12 + as_of.month) - (bill_month.year * 12 + bill_month.month) - 1, 0)


def aging(dues: tuple[MonthDue, ...], as_of: date) -> Aging:
    buckets = [0, 0, 0, 0]
    for due in dues:
        buckets[min(months_overdue(due.bill_month, as_of), 3)] += due.amount_due_fen
    return Aging(*buckets)


def deduction_to_collect(requested_fen: int, deposit_fen: int, amount_due_fen: int) -> int:
    """What a deduction (划扣) takes from the deposit: what was asked, but never more than the
    deposit holds nor more than is owed now (a payment may have come in since the decision)."""
    return max(min(requested_fen, deposit_fen, amount_due_fen), 0)


def write_off_allowed(amount_fen: int, amount_due_fen: int) -> bool:
    """Only money owed on closed bill months can be written off; never into credit."""
    return 0 < amount_fen <= amount_due_fen


def write_off_lapse(balance_fen: int, standing_fen: int, revived_fen: int = 0,
                    uncovered_fen: int = 0) -> int:
    """How much the account's write-offs lapse (> 0) or come back (< 0) after a movement.

    A write-off (核销) is the operator giving up on a debt, never money the customer has:
    - once a payment or a credit note would leave the account in credit (`balance_fen` > 0)
      while write-offs stand (`standing_fen`: written off less what lapsed before), the
      excess lapses, at most what stands (bad debt recovered);
    - a credit note on a closed month cancels first what that month still owed and then
      debt the credits covered (`uncovered_fen`: the rest, which a write-off covered before
      a payment, as the credit-note rule says): that much lapses too, even while a later
      month is owed, so the write-off never pays the later bill.
    `revived_fen`: what lapsed by a payment that has just bounced, which comes back first
    (`balance_fen` and `standing_fen` are without it)."""
    balance, standing = balance_fen + revived_fen, standing_fen + revived_fen
    return min(max(balance, uncovered_fen, 0), max(standing, 0)) - revived_fen
