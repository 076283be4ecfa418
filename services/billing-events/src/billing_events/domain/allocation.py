"""Per-product amounts: how an account's credits are spread over its product instances. Pure.

The rule (docs/billing.md, "Allocation"): the account's credits (payments not reversed,
deductions from the deposit, write-offs) pay its closed bill months **oldest first**, and
within one bill month its products **in product id order**, each product's bill of that
month in full before the next one's. Equivalently: order the (bill month, product) bills,
take the running total of the bills through each one; what a bill still owes is
clamp(running total − credits, 0, bill). That is exactly the statement the receivables
report runs (adapters/receivables.py), so reports, positions and events agree to the fen.

Why this rule and not pro rata: it is exact without any rounding (no remainder fen to
place), it depends only on the totals (a reversal or a late adjustment re-opens exactly the
right products, as for months), and a partial payment clears whole products rather than
leaving every product owing a little, so the products it clears are reminded, warned and
suspended no more (restoring one already suspended stays an account-level decision).
"""

from collections.abc import Iterable, Mapping
from datetime import date
from typing import NamedTuple

from .model import MonthDue

Bill = tuple[date, str]  # (bill month, product id)


class ProductPosition(NamedTuple):
    """One product instance's money: closed months billed, what of it the credits covered,
    what it still owes (per bill month, oldest first) and its charges of open months."""

    product_id: str
    billed_fen: int
    credited_fen: int
    amount_due_fen: int
    dues: tuple[MonthDue, ...]
    unbilled_fen: int


def allocate(billed: Mapping[Bill, int], credits_fen: int) -> dict[Bill, int]:
    """What each (bill month, product) bill still owes after `credits_fen` (every bill,
    owing or not): oldest month first, product id order within a month."""
    owed: dict[Bill, int] = {}
    running = 0
    for bill in sorted(billed):
        amount = billed[bill]
        running += amount
        owed[bill] = max(0, min(amount, running - credits_fen))
    return owed


def product_positions(
    billed: Mapping[Bill, int], unbilled: Mapping[str, int], credits_fen: int,
    product_ids: Iterable[str] = (),
) -> tuple[ProductPosition, ...]:
    """Every product's position, in product id order: the products named in `product_ids`
    (those of the account, billed or not) and every product with a bill.

    One walk over the bills in allocation order (the same clamp as `allocate`): a bill run
    calls this for each of 100,000 accounts, so it does not rescan the bills per product."""
    running = 0
    billed_fen: dict[str, int] = {}
    due_fen: dict[str, int] = {}
    dues: dict[str, list[MonthDue]] = {}
    for bill in sorted(billed):
        month, pid = bill
        amount = billed[bill]
        running += amount
        billed_fen[pid] = billed_fen.get(pid, 0) + amount
        owed = min(running - credits_fen, amount)
        if owed > 0:
            dues.setdefault(pid, []).append(MonthDue(month, owed))
            due_fen[pid] = due_fen.get(pid, 0) + owed
    result = []
    for pid in sorted({*product_ids, *billed_fen, *unbilled}):
        due, total = due_fen.get(pid, 0), billed_fen.get(pid, 0)
        result.append(ProductPosition(pid, total, total - due, due, tuple(dues.get(pid, ())),
                                      unbilled.get(pid, 0)))
    return tuple(result)


def paid_by(products: Iterable[ProductPosition], credit_fen: int) -> list[tuple[str, int]]:
    """What a new credit of `credit_fen` pays of each product's arrears, given the products'
    positions before it: the bills still owing, oldest month first and product id order
    within a month (the rule above, applied to what is left), only the products it pays, in
    product id order. Their sum is min(credit, what is owed); a deduction's notice quotes
    each product's part (docs/billing.md "Deductions")."""
    owing = sorted((d.bill_month, p.product_id, d.amount_due_fen)
                   for p in products for d in p.dues)
    paid: dict[str, int] = {}
    left = credit_fen
    for _, pid, owed in owing:
        if left <= 0:
            break
        part = min(owed, left)
        paid[pid] = paid.get(pid, 0) + part
        left -= part
    return sorted(paid.items())
