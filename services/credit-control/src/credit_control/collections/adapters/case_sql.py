"""The collections cases' SQL (docs/collections.md "Escalation"). Opening and the figures'
update are set-based statements over credit.product_credit; ids are deterministic, so a
re-run adds nothing twice."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ...adapters import tables as t


def _sql(statement: str) -> Any:
    return text(" ".join(statement.split()))


# An account is in arrears past suspension when one of its products is suspended or
# pre-cancelled for its own debt (not by association) and the account still owes.
_OPEN = _sql("""
    WITH past AS (
        SELECT pc.account_id, min(pc.customer_id) AS customer_id,
               max(pc.amount_due_fen) AS arrears
        FROM credit.product_credit pc
        WHERE pc.state IN ('suspended', 'pre_cancel') AND pc.amount_due_fen > 0
          AND pc.customer_id IS NOT NULL
          AND (CAST(:accounts AS text[]) IS NULL OR pc.account_id = ANY(:accounts))
          AND NOT EXISTS (SELECT 1 FROM credit.collection_associations a
                          WHERE a.product_id = pc.product_id AND a.status = 'suspended')
        GROUP BY pc.account_id)
    INSERT INTO credit.collection_cases (case_id, account_id, customer_id, status, phase,
        opened_on, arrears_fen, advanced_at)
    SELECT 'CC-' || left(md5(p.account_id || '|' || CAST(:today AS date)::text), 20),
           p.account_id, p.customer_id, 'open', 1, :today, p.arrears, :as_of
    FROM past p
    ORDER BY p.account_id
    ON CONFLICT DO NOTHING
    RETURNING case_id, account_id, arrears_fen""")

# The open cases' arrears as the newest balance events left them.
_FIGURES = _sql("""
    UPDATE credit.collection_cases c SET arrears_fen = p.amount_due_fen,
        advanced_at = greatest(c.advanced_at, :as_of)
    FROM credit.account_positions p
    WHERE p.account_id = c.account_id AND c.status = 'open'
      AND (CAST(:accounts AS text[]) IS NULL OR c.account_id = ANY(:accounts))
      AND (c.arrears_fen <> p.amount_due_fen OR c.advanced_at < :as_of)""")

# The cases' advisory lock: two runs (the scheduler and a request) never race on a case.
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('credit.collection_cases'))")


async def lock(conn: AsyncConnection) -> None:
    await conn.execute(_LOCK)


async def open_cases(conn: AsyncConnection, today: date, as_of: datetime,
                     accounts: list[str] | None) -> list[Row[Any]]:
    return list(await conn.execute(_OPEN, {"today": today, "as_of": as_of,
                                           "accounts": accounts}))


async def update_figures(conn: AsyncConnection, as_of: datetime,
                         accounts: list[str] | None) -> None:
    await conn.execute(_FIGURES, {"as_of": as_of, "accounts": accounts})


async def open_to_advance(conn: AsyncConnection, accounts: list[str] | None) -> list[Row[Any]]:
    c = t.collection_cases
    q = select(c).where(c.c.status == "open", c.c.phase < 3).order_by(c.c.case_id)
    if accounts is not None:
        q = q.where(c.c.account_id.in_(accounts))
    return list(await conn.execute(q))


async def cleared(conn: AsyncConnection, accounts: list[str] | None = None) -> list[Row[Any]]:
    """Open cases whose account owes nothing now, with the position's moment."""
    c, p = t.collection_cases, t.account_positions
    q = (select(c, p.c.as_of.label("paid_as_of"), p.c.cause.label("paid_cause"))
         .join(p, p.c.account_id == c.c.account_id)
         .where(c.c.status == "open", p.c.amount_due_fen == 0).order_by(c.c.case_id))
    if accounts is not None:
        q = q.where(c.c.account_id.in_(accounts))
    return list(await conn.execute(q))


async def case(conn: AsyncConnection, case_id: str, lock: bool = False) -> Row[Any] | None:
    c = t.collection_cases
    q = select(c).where(c.c.case_id == case_id)
    if lock:
        q = q.with_for_update()
    return (await conn.execute(q)).first()


async def update_case(conn: AsyncConnection, case_id: str, **values: Any) -> None:
    c = t.collection_cases
    await conn.execute(update(c).where(c.c.case_id == case_id).values(**values))


async def advance_phase(conn: AsyncConnection, case_id: str, phase: int) -> bool:
    """Phases only move forward: an older or repeated run changes nothing."""
    c = t.collection_cases
    done = await conn.execute(update(c).where(c.c.case_id == case_id, c.c.phase < phase)
                              .values(phase=phase))
    return bool(done.rowcount)


async def add_step(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    done = await conn.execute(insert(t.collection_steps).values(**values)
                              .on_conflict_do_nothing())
    return bool(done.rowcount)


async def steps(conn: AsyncConnection, case_id: str) -> list[dict[str, Any]]:
    s = t.collection_steps
    rows = await conn.execute(select(s).where(s.c.case_id == case_id)
                              .order_by(s.c.at, s.c.seq))
    return [dict(r._mapping) for r in rows]


async def add_association(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    done = await conn.execute(insert(t.collection_associations).values(**values)
                              .on_conflict_do_nothing())
    return bool(done.rowcount)


async def associations(conn: AsyncConnection, case_id: str,
                       status: str | None = None) -> list[dict[str, Any]]:
    a = t.collection_associations
    q = select(a).where(a.c.case_id == case_id).order_by(a.c.product_id)
    if status:
        q = q.where(a.c.status == status)
    return [dict(r._mapping) for r in await conn.execute(q)]


async def update_association(conn: AsyncConnection, case_id: str, product_id: str,
                             **values: Any) -> None:
    a = t.collection_associations
    await conn.execute(update(a).where(a.c.case_id == case_id, a.c.product_id == product_id)
                       .values(**values))


async def customer_products(conn: AsyncConnection, customer_id: str) -> list[Row[Any]]:
    pc = t.product_credit
    return list(await conn.execute(
        select(pc.c.product_id, pc.c.account_id, pc.c.state, pc.c.product_amount_due_fen)
        .where(pc.c.customer_id == customer_id).order_by(pc.c.product_id)))


async def account_products(conn: AsyncConnection, account_id: str,
                           states: list[str]) -> list[Row[Any]]:
    pc = t.product_credit
    return list(await conn.execute(
        select(pc.c.product_id, pc.c.state, pc.c.product_amount_due_fen)
        .where(pc.c.account_id == account_id, pc.c.state.in_(states))
        .order_by(pc.c.product_id)))


async def arrears(conn: AsyncConnection, account_id: str) -> int:
    p = t.account_positions
    found = await conn.scalar(select(p.c.amount_due_fen).where(p.c.account_id == account_id))
    return int(found or 0)


async def cases(conn: AsyncConnection, filters: dict[str, Any],
                limit: int) -> list[dict[str, Any]]:
    c = t.collection_cases
    q = select(c).order_by(c.c.opened_on, c.c.case_id).limit(limit)
    for key, value in filters.items():
        if value is not None:
            q = q.where(c.c[key] == value)
    return [dict(r._mapping) for r in await conn.execute(q)]


async def holding_associations(conn: AsyncConnection, product_ids: list[str],
                               besides: str | None = None) -> dict[str, dict[str, Any]]:
    """Of these products, those an association holds suspended (of a case other than
    `besides`): each with one such association (its case and suspension decision)."""
    if not product_ids:
        return {}
    a = t.collection_associations
    q = (select(a.c.product_id, a.c.case_id, a.c.suspend_decision_id)
         .where(a.c.product_id.in_(product_ids), a.c.status == "suspended")
         .order_by(a.c.product_id, a.c.suspended_at, a.c.case_id))
    if besides is not None:
        q = q.where(a.c.case_id != besides)
    found: dict[str, dict[str, Any]] = {}
    for r in await conn.execute(q):
        found.setdefault(r.product_id, dict(r._mapping))
    return found


async def held_products(conn: AsyncConnection, product_ids: list[str]) -> set[str]:
    """Of these products, those an open association holds suspended (the balance path asks,
    for its sanctioned products only)."""
    return set(await holding_associations(conn, product_ids))
