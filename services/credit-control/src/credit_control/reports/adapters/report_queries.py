"""Report figures credit-control owns: products per credit state and work orders, as of a
moment, derived from the state history so a past month gives the same answer later."""

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ...admin.adapters.admin_repository import OPEN_STATUSES

S = "credit"

# A product's state at a moment (None: now, whatever business moment the newest change
# carries): the newest change at or before it; a product whose first
# change came later was in that change's `state_before`; one never changed is in its
# current state (normal: every other state is reached through a recorded change).
_STATES = f"""
SELECT family, state, count(*) AS products FROM (
    SELECT p.family, CASE WHEN CAST(:at AS timestamptz) IS NULL THEN p.state ELSE coalesce(
        (SELECT h.state_after FROM {S}.state_history h
          WHERE h.product_id = p.product_id AND h.at <= :at
          ORDER BY h.at DESC, h.id DESC LIMIT 1),
        (SELECT h.state_before FROM {S}.state_history h
          WHERE h.product_id = p.product_id ORDER BY h.at, h.id LIMIT 1),
        p.state) END AS state
      FROM {S}.product_credit p
     WHERE (CAST(:prefix AS text) = '' OR p.product_id LIKE :prefix || '%')) s
 GROUP BY family, state ORDER BY family, state"""

# A work order counts as open at a moment when it was created by then and had not reached a
# final status by then (only a final step comes after it, so `updated_at` > the moment means
# it was still open). None: open now; overdue counts orders due before `overdue_at`.
_WORK_ORDERS = f"""
SELECT action, count(*) AS open,
       count(*) FILTER (WHERE due_at < :overdue_at) AS overdue
  FROM {S}.work_orders
 WHERE ((CAST(:at AS timestamptz) IS NULL AND status = ANY(:open))
        OR (created_at <= :at AND (status = ANY(:open) OR updated_at > :at)))
   AND (CAST(:prefix AS text) = '' OR product_id LIKE :prefix || '%')
 GROUP BY action ORDER BY action"""


async def states_at(conn: AsyncConnection, at: datetime | None,
                    prefix: str) -> list[dict[str, Any]]:
    rows = await conn.execute(text(_STATES), {"at": at, "prefix": prefix})
    return [{"family": r.family, "state": r.state, "products": int(r.products)} for r in rows]


async def work_orders_at(conn: AsyncConnection, at: datetime | None, overdue_at: datetime,
                         prefix: str) -> list[dict[str, Any]]:
    rows = await conn.execute(text(_WORK_ORDERS), {
        "at": at, "overdue_at": overdue_at, "open": list(OPEN_STATUSES), "prefix": prefix})
    return [{"action": r.action, "open": int(r.open), "overdue": int(r.overdue)} for r in rows]


async def open_work_orders(conn: AsyncConnection, limit: int, overdue_at: datetime,
                           about: str | None = None) -> dict[str, Any]:
    """The worklist of manual work: open orders, the most overdue first, at most `limit`;
    `about` keeps only a product's or a customer's (its id, exactly). With how many open
    orders there are and how many are overdue at `overdue_at`, so a list cut at `limit`
    says what it leaves out."""
    params = {"open": list(OPEN_STATUSES), "limit": limit, "about": about,
              "overdue_at": overdue_at}
    where = (f"FROM {S}.work_orders WHERE status = ANY(:open) AND (CAST(:about AS text) IS NULL"
             " OR product_id = :about OR customer_id = :about)")
    rows = await conn.execute(text(
        "SELECT work_order_id, product_id, customer_id, action, status, role, assignee, "
        f"due_at, created_at {where} ORDER BY due_at, work_order_id LIMIT :limit"), params)
    counts = (await conn.execute(text(
        f"SELECT count(*) AS open, count(*) FILTER (WHERE due_at < :overdue_at) AS overdue "
        f"{where}"), params)).one()
    return {"orders": [dict(r._mapping) for r in rows], "open": int(counts.open),
            "overdue": int(counts.overdue)}
