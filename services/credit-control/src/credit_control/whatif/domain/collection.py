"""What billing's deduction (划扣) would collect for a deduction the replay decides, and which
products it would pay. Pure.

The deduction notice (划扣通知) is not sent from the decision: billing collects at most what
was asked, what the deposit holds and what the account owes, pays the account's oldest bills
first (bill month, then product id), and credit-control publishes one
`credit.deduction_collected` per product the money paid, which the notifier announces
(docs/billing.md "Deductions", docs/notifier.md; `balance_events.announce_deductions`). So
the what-if counts a notice per product paid, none for a deduction that collected nothing.
billing's rule is repeated here (services never import each other: `model.
deduction_to_collect` and `allocation.paid_by` there); test_whatif_collection checks it on
billing's own examples.

The replay's money otherwise moves as it did (billing's history): what its own deductions
take is tracked only until the account's next point, which says what really happened.
"""

from dataclasses import dataclass, field
from datetime import date

Bill = tuple[date, str]  # (bill month, product id)


@dataclass
class Taken:
    """What the replay's deductions took from one account since its latest point."""

    deposit_fen: int = 0
    bills: dict[Bill, int] = field(default_factory=dict)  # what each bill was paid
    day: date | None = None  # the business day of the latest collection
    day_fen: int = 0  # what that day's collections took

    def before(self, day: date) -> int:
        """Taken on earlier days: billing answered those, so the deposit a sweep of `day`
        sees is already less by them (the day's own asks are shared apart, as the sweep's
        SQL shares them)."""
        return self.deposit_fen - (self.day_fen if self.day == day else 0)


def collect(ask_fen: int, deposit_fen: int, owing: tuple[tuple[date, str, int], ...],
            taken: Taken, day: date) -> tuple[tuple[str, int], ...]:
    """Billing's answer on `day` to a deduction asking `ask_fen`, given the account's
    deposit and owing bills (bill month, product id, owed) at its latest point and what the
    replay's deductions took since: (product id, collected) for each product it pays, in
    product id order, each > 0; empty when it collects nothing. `taken` is updated."""
    left = [(month, pid, owed - taken.bills.get((month, pid), 0))
            for month, pid, owed in sorted(owing)]
    due = sum(owed for _, _, owed in left if owed > 0)
    amount = max(min(ask_fen, deposit_fen - taken.deposit_fen, due), 0)
    taken.deposit_fen += amount
    taken.day_fen = (taken.day_fen if taken.day == day else 0) + amount
    taken.day = day
    paid: dict[str, int] = {}
    for month, pid, owed in left:
        if amount <= 0:
            break
        part = min(owed, amount)
        if part <= 0:
            continue
        paid[pid] = paid.get(pid, 0) + part
        taken.bills[(month, pid)] = taken.bills.get((month, pid), 0) + part
        amount -= part
    return tuple(sorted(paid.items()))
