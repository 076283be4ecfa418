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

    def product_due(self, product_id: str) -> int:
        return self.product_dues.get(product_id, 0)


@dataclass(frozen=True)
class AccountHistory:
    account_id: str
    customer_id: str
    tier: Tier
    star_level: int | None
    products: tuple[tuple[str, ProductFamily], ...]  # (product id, family), id order
    points: tuple[Point, ...]  # time order; the first is the opening position
