"""credit-control's SQL in one place."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ...adapters import tables as t


async def product_for_update(conn: AsyncConnection, product_id: str) -> Row[Any] | None:
    pc = t.product_credit
    return (
        await conn.execute(select(pc).where(pc.c.product_id == product_id).with_for_update())
    ).first()


# Whole columns as one array parameter: a rating run may name tens of thousands of products,
# past what `IN (…)` can bind (32,767 parameters a statement).
_PRODUCTS_FOR_UPDATE = text("""
    SELECT * FROM credit.product_credit WHERE product_id = ANY(CAST(:ids AS text[]))
    ORDER BY product_id FOR UPDATE""")


async def products_for_update(conn: AsyncConnection, product_ids: list[str]) -> list[Row[Any]]:
    """The rows of these products, locked in product id order (everyone's lock order)."""
    if not product_ids:
        return []
    return list(await conn.execute(_PRODUCTS_FOR_UPDATE, {"ids": product_ids}))


async def products_of_customers(conn: AsyncConnection,
                                customer_ids: list[str]) -> list[Row[Any]]:
    """(product_id, account_id) of every product credit control knows of the customers."""
    if not customer_ids:
        return []
    return list(await conn.execute(text(
        "SELECT product_id, account_id FROM credit.product_credit "
        "WHERE customer_id = ANY(CAST(:ids AS text[])) ORDER BY product_id"),
        {"ids": customer_ids}))


async def position(conn: AsyncConnection, account_id: str) -> Row[Any] | None:
    ap = t.account_positions
    return (await conn.execute(select(ap).where(ap.c.account_id == account_id))).first()


async def positions(conn: AsyncConnection, account_ids: list[str]) -> dict[str, Row[Any]]:
    """The accounts' newest positions, by account id."""
    if not account_ids:
        return {}
    return {r.account_id: r for r in await conn.execute(text(
        "SELECT * FROM credit.account_positions WHERE account_id = ANY(CAST(:ids AS text[]))"),
        {"ids": account_ids})}


async def decision(conn: AsyncConnection, decision_id: str) -> Row[Any] | None:
    d = t.decisions
    return (await conn.execute(select(d).where(d.c.decision_id == decision_id))).first()


async def product(conn: AsyncConnection, product_id: str) -> Row[Any] | None:
    pc = t.product_credit
    return (await conn.execute(select(pc).where(pc.c.product_id == product_id))).first()


async def history(conn: AsyncConnection, product_id: str) -> dict[str, list[dict[str, Any]]]:
    d, h = t.decisions, t.state_history
    decisions = await conn.execute(
        select(d).where(d.c.product_id == product_id).order_by(d.c.created_at, d.c.decision_id))
    changes = await conn.execute(select(h).where(h.c.product_id == product_id).order_by(h.c.id))
    return {
        "decisions": [dict(r._mapping) for r in decisions],
        "state_history": [dict(r._mapping) for r in changes],
    }


async def loop_due(conn: AsyncConnection, at: datetime, timeout_s: float,
                   limit: int) -> list[Row[Any]]:
    """Products whose command attempt needs attention: its backoff ran out, or it got no final
    result in time. Skips rows another worker holds."""
    pc = t.product_credit
    timed_out = and_(pc.c.retry_at.is_(None),
                     pc.c.command_sent_at < at - timedelta(seconds=timeout_s))
    rows = await conn.execute(
        select(pc).where(pc.c.pending_command_id.is_not(None),
                         pc.c.pending_work_order_id.is_(None),
                         or_(pc.c.retry_at <= at, timed_out))
        .order_by(pc.c.product_id).limit(limit).with_for_update(skip_locked=True))
    return list(rows)


async def desired_page(conn: AsyncConnection, after: str | None, limit: int) -> list[Row[Any]]:
    pc = t.product_credit
    q = (select(pc.c.product_id, pc.c.account_id, pc.c.customer_id, pc.c.product, pc.c.family,
                pc.c.state, pc.c.command_seq, pc.c.command_at, pc.c.command_sent_at)
         .where(pc.c.family.in_(["MAS", "SMS_DIRECT"])).order_by(pc.c.product_id).limit(limit))
    if after:
        q = q.where(pc.c.product_id > after)
    return list(await conn.execute(q))
