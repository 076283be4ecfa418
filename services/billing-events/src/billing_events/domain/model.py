"""The account's money position, computed from its bill months and payments. Pure."""

import re
from dataclasses import dataclass
from datetime import date

# ASCII digits only, whole string: \d and $ would let "１３８…" or a trailing newline through.
MOBILE_PHONE = re.compile(r"1[3-9][0-9]{9}")


@dataclass(frozen=True)
class MonthDue:
    bill_month: date
    amount_due_fen: int


@dataclass(frozen=True)
class AccountPosition:
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
    for month in sorted(billed_by_month):
        billed = billed_by_month[month]
        covered = min(billed, max(remaining, 0))
        remaining -= covered
        if billed - covered > 0:
            dues.append(MonthDue(month, billed - covered))
    billed_total = sum(billed_by_month.values())
    amount_due = sum(d.amount_due_fen for d in dues)
    return AccountPosition(
        balance_fen=paid_fen - billed_total,
        amount_due_fen=amount_due,
        dues=tuple(dues),
        unbilled_fen=unbilled_fen,
    )


def is_mobile_phone(phone: str) -> bool:
    return bool(MOBILE_PHONE.fullmatch(phone))
