"""Review tasks and the pre-cancellation worklist: plain reads and writes of credit.reviews,
credit.product_credit and credit.state_history."""

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ...adapters import tables as t


async def sanctioned_products(conn: AsyncConnection, customer_id: str,
                              states: list[str]) -> list[Row[Any]]:
    pc = t.product_credit
    return list(await conn.execute(
        select(pc.c.product_id, pc.c.account_id, pc.c.state)
        .where(pc.c.customer_id == customer_id, pc.c.state.in_(states))
        .order_by(pc.c.product_id)))


async def insert_review(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    stmt = pg_insert(t.reviews).values(**values).on_conflict_do_nothing()
    return bool((await conn.execute(stmt)).rowcount)


_COLUMNS = (t.reviews, t.product_credit.c.state.label("product_state"),
            t.product_credit.c.family)


def _select() -> Any:
    r, pc = t.reviews, t.product_credit
    return select(*_COLUMNS).select_from(
        r.outerjoin(pc, pc.c.product_id == r.c.product_id))


async def reviews(conn: AsyncConnection, filters: dict[str, str | None],
                  limit: int) -> list[dict[str, Any]]:
    r = t.reviews
    conds = [r.c[k] == v for k, v in filters.items() if v is not None]
    q = _select().where(and_(True, *conds)).order_by(r.c.opened_at, r.c.review_id).limit(limit)
    return [dict(row._mapping) for row in await conn.execute(q)]


async def review_for_update(conn: AsyncConnection, review_id: str) -> Row[Any] | None:
    r = t.reviews
    return (await conn.execute(
        select(r).where(r.c.review_id == review_id).with_for_update())).first()


async def decide(conn: AsyncConnection, review_id: str, **values: Any) -> None:
    r = t.reviews
    await conn.execute(update(r).where(r.c.review_id == review_id).values(**values))


def _owned(q: Select[Any], owner: dict[str, str | None]) -> Select[Any]:
    """`q` narrowed to one customer's or account's products (product_credit's columns)."""
    pc = t.product_credit
    for column, value in owner.items():
        if value is not None:
            q = q.where(pc.c[column] == value)
    return q


async def pre_cancelled(conn: AsyncConnection, owner: dict[str, str | None],
                        limit: int) -> list[dict[str, Any]]:
    """Products pre-cancelled now: the line is kept until staff cancel it or the debt is paid.
    Each line with its own amount due (`amount_due_fen`, billing's allocation) and its
    account's total beside it (`account_amount_due_fen`: paying it lifts every line of the
    account), so a list summed by line does not count an account's debt once per line."""
    pc = t.product_credit
    rows = await conn.execute(_owned(
        select(pc.c.product_id, pc.c.account_id, pc.c.customer_id, pc.c.family,
               pc.c.state, pc.c.state_changed_at.label("since"),
               pc.c.product_amount_due_fen.label("amount_due_fen"),
               pc.c.amount_due_fen.label("account_amount_due_fen"))
        .where(pc.c.state == "pre_cancel"), owner)
        .order_by(pc.c.state_changed_at, pc.c.product_id).limit(limit))
    return [dict(row._mapping) for row in rows]


async def lifted(conn: AsyncConnection, since: datetime | None, owner: dict[str, str | None],
                 limit: int) -> list[dict[str, Any]]:
    """Pre-cancellations lifted (by a payment or a review), newest first, with what the product
    is now (a chain or work-order restore may still be in flight)."""
    h, pc = t.state_history, t.product_credit
    q = (select(h.c.product_id, pc.c.account_id, pc.c.customer_id, pc.c.family,
                h.c.at.label("lifted_at"), h.c.state_after, h.c.cause, h.c.decision_id,
                pc.c.state, pc.c.pending_work_order_id)
         .select_from(h.join(pc, pc.c.product_id == h.c.product_id))
         .where(h.c.state_before == "pre_cancel")
         .order_by(h.c.at.desc(), h.c.id.desc()).limit(limit))
    if since is not None:
        q = q.where(h.c.at >= since)
    return [dict(row._mapping) for row in await conn.execute(_owned(q, owner))]

