"""Red-list review's SQL: the active red-list entries with their review dates, the customers'
arrears (their accounts' newest positions), their audit history, renewal and lapse."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ...adapters import tables as t


def _sql(statement: str) -> Any:
    return text(" ".join(statement.split()))


# An entry's review date: the one a renewal set, else `months` after it was added (business
# date, Asia/Shanghai); make_interval keeps month ends as domain.add_months does.
_REVIEW_ON = ("coalesce(e.review_on, ((e.created_at AT TIME ZONE 'Asia/Shanghai')::date "
              "+ make_interval(months => :months))::date)")

_ACTIVE = _sql(f"""
    SELECT e.*, {_REVIEW_ON} AS review_date FROM credit.exemptions e
    WHERE e.kind = 'red_list' AND e.removed_at IS NULL
      AND (e.until IS NULL OR e.until > :at)
      AND {_REVIEW_ON} <= :by
    ORDER BY review_date, e.exemption_id""")

# Each customer's arrears: the sum of its accounts' newest amounts due.
_ARREARS = _sql("""
    SELECT customer ->> 'customer_id' AS customer_id, sum(amount_due_fen)::bigint AS fen,
           count(*) FILTER (WHERE amount_due_fen > 0)::int AS owing_accounts
    FROM credit.account_positions
    WHERE customer ->> 'customer_id' = ANY(:ids)
    GROUP BY 1""")

_LAPSING_WHERE = f"""
    e.kind = 'red_list' AND e.removed_at IS NULL
      AND (e.until IS NULL OR e.until > :at) AND {_REVIEW_ON} < :today"""
_LAPSE = _sql(f"""
    UPDATE credit.exemptions e SET removed_by = :actor, removed_at = :at
    WHERE {_LAPSING_WHERE}
    RETURNING e.exemption_id, e.customer_id, {_REVIEW_ON} AS review_date""")
_LAPSING = _sql(f"SELECT DISTINCT e.customer_id FROM credit.exemptions e WHERE {_LAPSING_WHERE}")


async def due(conn: AsyncConnection, by: date, at: datetime, months: int) -> list[Row[Any]]:
    return list(await conn.execute(_ACTIVE, {"by": by, "at": at, "months": months}))


async def arrears(conn: AsyncConnection, customer_ids: list[str]) -> dict[str, tuple[int, int]]:
    if not customer_ids:
        return {}
    rows = await conn.execute(_ARREARS, {"ids": customer_ids})
    return {r.customer_id: (int(r.fen or 0), r.owing_accounts) for r in rows}


async def history(conn: AsyncConnection,
                  customer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The customers' red-list audit entries (add, renew, remove, lapse), oldest first."""
    if not customer_ids:
        return {}
    a = t.audit_log
    rows = await conn.execute(select(a).where(a.c.entity == "red_list",
                                              a.c.entity_id.in_(customer_ids))
                              .order_by(a.c.at, a.c.id))
    found: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r.entity_id, []).append(
            {"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "new": r.new})
    return found


async def entry(conn: AsyncConnection, exemption_id: str, months: int) -> Row[Any] | None:
    q = _sql(f"SELECT e.*, {_REVIEW_ON} AS review_date FROM credit.exemptions e "
             "WHERE e.exemption_id = :id FOR UPDATE")
    return (await conn.execute(q, {"id": exemption_id, "months": months})).first()


async def set_review(conn: AsyncConnection, exemption_id: str, review_on: date) -> None:
    e = t.exemptions
    await conn.execute(update(e).where(e.c.exemption_id == exemption_id)
                       .values(review_on=review_on))


async def lapsing(conn: AsyncConnection, today: date, at: datetime, months: int) -> list[str]:
    """The customers whose entries would lapse: locked before the lapse, so it waits for an
    exemption of theirs being added or removed, never the other way round."""
    rows = await conn.execute(_LAPSING, {"today": today, "at": at, "months": months})
    return [r.customer_id for r in rows]


async def lapse(conn: AsyncConnection, today: date, at: datetime, months: int,
                actor: str) -> list[Row[Any]]:
    return list(await conn.execute(_LAPSE, {"today": today, "at": at, "months": months,
                                            "actor": actor}))
