"""A month's balance history as the replay reads it (billing-events' GET /v1/balance-history:
each account's positions, recomputed from its ledger). Pure value objects."""

from dataclasses import dataclass
from datetime import date, datetime

from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier


@dataclass(frozen=True)
class Point:
    """The account's position just after `at`, as its balance event of `cause` said it
    (cause None: the opening position of the window, not an event)."""

    at: datetime
    cause: BalanceCause | None
    balance_fen: int
    amount_due_fen: int
    oldest_due_month: date | None
    deposit_fen: int
    product_dues: dict[str, int]  # product id → its own amount due
    closed_bill_month: str | None = None
    # The bills still owing, (bill month, product id, owed), from each product's dues per
    # month; empty when billing did not say them (then `owing` makes do).
    product_bills: tuple[tuple[date, str, int], ...] = ()

    def product_due(self, product_id: str) -> int:
        return self.product_dues.get(product_id, 0)

    def owing(self) -> tuple[tuple[date, str, int], ...]:
        """The bills a deduction would pay, oldest first (collection.py). Without billing's
        per-month dues (an older billing-events): each product's amount as one bill of the
        account's oldest owing month, so product id order decides alone."""
        if self.product_bills or self.oldest_due_month is None:
            return self.product_bills
        return tuple((self.oldest_due_month, pid, fen)
                     for pid, fen in sorted(self.product_dues.items()) if fen > 0)


@dataclass(frozen=True)
class AccountHistory:
    account_id: str
    customer_id: str
    tier: Tier
    star_level: int | None
    products: tuple[tuple[str, ProductFamily], ...]  # (product id, family), id order
    points: tuple[Point, ...]  # time order; the first is the opening position
