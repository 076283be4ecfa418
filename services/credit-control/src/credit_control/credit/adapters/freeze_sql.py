"""Scoped emergency freezes in credit.freezes and what they held back in credit.freeze_holds
(domain/freezes.py; the sweep's own test is adapters/sweep_sql.py `_frozen`)."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.snapshots import ProductFamily, Tier
from common.db import DriverStatement

from ...adapters import tables as t
from ..domain.freezes import Covered, Freeze, Scope


def to_freeze(row: Any) -> Freeze:
    return Freeze(row.freeze_id, Scope(row.scope), row.value, row.covers_warnings,
                  row.starts_at, row.until, row.ended_at)


async def add(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """False when the id exists (the caller compares)."""
    made = await conn.execute(insert(t.freezes).values(**values)
                              .on_conflict_do_nothing(index_elements=["freeze_id"]))
    return bool(made.rowcount)


async def get(conn: AsyncConnection, freeze_id: str, lock: bool = False) -> Any:
    q = select(t.freezes).where(t.freezes.c.freeze_id == freeze_id)
    return (await conn.execute(q.with_for_update() if lock else q)).one_or_none()


async def listed(conn: AsyncConnection, active_at: datetime | None,
                 limit: int) -> list[dict[str, Any]]:
    """Newest first; with `active_at`, only those in force then."""
    f = t.freezes
    q = select(f).order_by(f.c.created_at.desc()).limit(limit)
    if active_at is not None:
        q = q.where(f.c.ended_at.is_(None), f.c.starts_at <= active_at, f.c.until > active_at)
    return [dict(r._mapping) for r in await conn.execute(q)]


_OPEN = DriverStatement("""
    SELECT freeze_id, scope, value, covers_warnings, starts_at, until, ended_at
    FROM credit.freezes WHERE ended_at IS NULL""")


async def open_freezes(conn: AsyncConnection) -> list[Freeze]:
    """Every freeze not ended (whether in force depends on the moment: `Freeze.active`). The
    balance path asks once per batch: a handful of rows, on the driver."""
    return [Freeze(r[0], Scope(r[1]), r[2], r[3], r[4], r[5], r[6])
            for r in await _OPEN.fetch(conn, {})]


# What a freeze's scope is compared with, per product, as the sweep's `_frozen` reads it (the
# star: the customer's credit profile's, else billing's).
_COVERED = DriverStatement("""
    SELECT pc.product_id, pc.family, pc.tier, COALESCE(cp.star_level, pc.star_level),
           pc.product->>'vendor', pc.product->>'channel', pc.customer_id, pc.region
    FROM credit.product_credit pc
    LEFT JOIN credit.credit_profiles cp ON cp.customer_id = pc.customer_id
    WHERE pc.product_id = ANY(CAST(:ids AS text[]))""")


async def covered(conn: AsyncConnection, product_ids: list[str]) -> dict[str, Covered]:
    """Each known product's facts a freeze's scope looks at."""
    return {r[0]: Covered(ProductFamily(r[1]), Tier(r[2]), r[3], r[4], r[5], r[6], r[7])
            for r in await _COVERED.fetch(conn, {"ids": product_ids})}


async def end(conn: AsyncConnection, freeze_id: str, at: datetime, by: str,
              reason: str) -> None:
    await conn.execute(update(t.freezes).where(t.freezes.c.freeze_id == freeze_id)
                       .values(ended_at=at, ended_by=by, end_reason=reason))


async def due_for_release(conn: AsyncConnection, as_of: datetime) -> list[str]:
    """Freezes over (ended, or expired by `as_of`) whose held-back products were not yet
    sent through the notice period again."""
    f = t.freezes
    rows = await conn.execute(select(f.c.freeze_id).where(
        f.c.released_at.is_(None), (f.c.ended_at.is_not(None)) | (f.c.until <= as_of))
        .order_by(f.c.freeze_id))
    return [r[0] for r in rows]


async def mark_released(conn: AsyncConnection, freeze_id: str, at: datetime,
                        released: dict[str, Any]) -> None:
    await conn.execute(update(t.freezes).where(t.freezes.c.freeze_id == freeze_id)
                       .values(released_at=at, released=released))


async def held_products(conn: AsyncConnection, freeze_id: str) -> list[str]:
    """The products this freeze held back from suspension."""
    h = t.freeze_holds
    rows = await conn.execute(select(h.c.product_id).where(
        h.c.freeze_id == freeze_id, h.c.decision == "suspend").order_by(h.c.product_id))
    return [r[0] for r in rows]


async def holds(conn: AsyncConnection, freeze_id: str, limit: int) -> list[dict[str, Any]]:
    h = t.freeze_holds
    rows = await conn.execute(select(h).where(h.c.freeze_id == freeze_id)
                              .order_by(h.c.product_id, h.c.decision).limit(limit))
    return [dict(r._mapping) for r in rows]


async def hold_counts(conn: AsyncConnection, freeze_id: str) -> dict[str, int]:
    return (await hold_counts_of(conn, [freeze_id])).get(freeze_id, {})


async def hold_counts_of(conn: AsyncConnection,
                         freeze_ids: list[str]) -> dict[str, dict[str, int]]:
    """Products held back per freeze and decision, counted by the database in one statement."""
    h = t.freeze_holds
    rows = await conn.execute(
        select(h.c.freeze_id, h.c.decision, func.count())
        .where(h.c.freeze_id.in_(freeze_ids)).group_by(h.c.freeze_id, h.c.decision))
    counts: dict[str, dict[str, int]] = {}
    for freeze_id, decision, n in rows:
        counts.setdefault(freeze_id, {})[decision] = n
    return counts


_RECORD = DriverStatement("""
    INSERT INTO credit.freeze_holds (freeze_id, product_id, decision, account_id,
        first_held_on, last_held_on, amount_due_fen)
    SELECT u.f, u.p, u.d, u.a, CAST(:today AS date), CAST(:today AS date), u.due
    FROM unnest(CAST(:f AS text[]), CAST(:p AS text[]), CAST(:d AS text[]),
                CAST(:a AS text[]), CAST(:due AS bigint[])) AS u(f, p, d, a, due)
    ON CONFLICT (freeze_id, product_id, decision) DO UPDATE
    SET last_held_on = GREATEST(freeze_holds.last_held_on, excluded.last_held_on),
        amount_due_fen = excluded.amount_due_fen""")


async def record(conn: AsyncConnection, today: date,
                 held: list[tuple[str, str, str, str, int]]) -> None:
    """(freeze, product, decision, account, amount due) held back on `today`: first and last
    day kept, so a re-run or a resumed sweep records nothing twice."""
    if held:
        cols = list(zip(*held, strict=True))
        await _RECORD.execute(conn, {"today": today, "f": list(cols[0]), "p": list(cols[1]),
                                     "d": list(cols[2]), "a": list(cols[3]),
                                     "due": list(cols[4])})
