"""The month's balance history from billing-events (GET /v1/balance-history, via
adapters/peers.py), page by page, parsed into the replay's value objects."""

from datetime import date, datetime
from typing import Any

from common.clock import parse_bill_month
from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier
from common.errors import Unprocessable

from ...adapters.peers import Peers
from ..domain.history import AccountHistory, Point

PAGE = 500


class TooManyProducts(Unprocessable):
    code = "too_many_products"


async def month_history(peers: Peers, month: date, warmup_months: int,
                        max_products: int, channel: str | None = None) -> list[AccountHistory]:
    """Every account's history of the window; refused (4xx) past `max_products` products,
    before the replay spends anything on them."""
    found: list[AccountHistory] = []
    products, after = 0, ""
    while True:
        page = await peers.balance_history(month, warmup_months, after, PAGE, channel)
        for body in page["accounts"]:
            history = parse_account(body)
            products += len(history.products)
            if products > max_products:
                raise TooManyProducts(
                    f"the month has more than {max_products} products to replay; a what-if "
                    "is refused beyond that cap", max_products=max_products)
            found.append(history)
        if not page.get("next_after"):
            return found
        after = page["next_after"]


def parse_account(body: dict[str, Any]) -> AccountHistory:
    customer = body["customer"]
    return AccountHistory(
        account_id=body["account_id"], customer_id=customer["customer_id"],
        tier=Tier(customer["tier"]), star_level=customer.get("star_level"),
        products=tuple((p["product_id"], ProductFamily(p["family"]))
                       for p in body["products"]),
        points=tuple(parse_point(p) for p in body["points"]))


def parse_point(body: dict[str, Any]) -> Point:
    dues = body["dues"]
    cause = body["cause"]
    return Point(
        at=datetime.fromisoformat(body["at"]),
        cause=None if cause == "opening" else BalanceCause(cause),
        balance_fen=body["balance_fen"], amount_due_fen=body["amount_due_fen"],
        oldest_due_month=parse_bill_month(dues[0]["bill_month"]) if dues else None,
        deposit_fen=body["deposit_fen"],
        product_dues={d["product_id"]: d["amount_due_fen"] for d in body["product_dues"]},
        closed_bill_month=body.get("closed_bill_month"),
        product_bills=tuple(sorted(
            (parse_bill_month(m["bill_month"]), d["product_id"], m["amount_due_fen"])
            for d in body["product_dues"] for m in d.get("dues", ())
            if m["amount_due_fen"] > 0)))
