"""The dashboard's account page and its search box: an account's position and products, and
accounts found by id or by their group's name (集团名称), all from credit-control's own read
models (account_positions, product_credit): no call to billing."""

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

S = "credit"

_POSITION = text(f"""
SELECT account_id, balance_fen, amount_due_fen, deposit_fen, customer, as_of
FROM {S}.account_positions WHERE account_id = :account_id""")

_PRODUCTS = text(f"""
SELECT product_id, family, state, state_changed_at, customer_id, tier, star_level,
       amount_due_fen, product_amount_due_fen, oldest_due_month,
       product->>'name' AS product_name, product->>'cpno' AS cpno
FROM {S}.product_credit WHERE account_id = :account_id ORDER BY product_id""")

# An id typed in full or its start, or part of the group's name; the biggest debts first.
_SEARCH = text(f"""
SELECT a.account_id, a.customer->>'customer_id' AS customer_id,
       a.customer->>'name' AS customer_name, a.amount_due_fen, a.balance_fen,
       (SELECT count(*) FROM {S}.product_credit p WHERE p.account_id = a.account_id)
           AS products
FROM {S}.account_positions a
WHERE a.account_id LIKE :prefix ESCAPE '\\'
   OR a.customer->>'customer_id' = :exact
   OR a.customer->>'name' ILIKE :part ESCAPE '\\'
ORDER BY (a.account_id = :exact) DESC, a.amount_due_fen DESC, a.account_id
LIMIT :limit""")


async def account(conn: AsyncConnection, account_id: str) -> dict[str, Any] | None:
    """The account's newest position and its products; None when credit-control has never
    heard of it (neither a balance event nor a product)."""
    position = (await conn.execute(_POSITION, {"account_id": account_id})).first()
    products = [dict(r._mapping) for r in
                await conn.execute(_PRODUCTS, {"account_id": account_id})]
    if position is None and not products:
        return None
    return {"account_id": account_id,
            "position": dict(position._mapping) if position is not None else None,
            "products": products}


async def product_exists(conn: AsyncConnection, product_id: str) -> bool:
    found = await conn.execute(
        text(f"SELECT 1 FROM {S}.product_credit WHERE product_id = :p"), {"p": product_id})
    return found.first() is not None


async def search(conn: AsyncConnection, query: str, limit: int) -> list[dict[str, Any]]:
    like = _escape_like(query)
    rows = await conn.execute(_SEARCH, {"prefix": like + "%", "exact": query,
                                        "part": "%" + like + "%", "limit": limit})
    return [dict(r._mapping) for r in rows]


def _escape_like(value: str) -> str:
    """A typed % or _ is looked for as itself, not as a wildcard."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
