"""Potential churn (潜在离网, seeds 003 and 004): a daily scan lists good customers that were
suspended, customers suspended again and again within twelve months, and pre-cancelled ones;
each entry is a revisit task (seed 003: 对潜在离网客户实施针对性回访) whose outcome is recorded,
with the reason for leaving in seed 003's categories when the customer leaves."""

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from common.clock import BUSINESS_TZ, business_date
from common.errors import Conflict, NotFound, Unprocessable

from ...service_layer.context import CreditContext
from ..adapters import rating_sql as sql
from ..domain.commands import Revisit

_DAY = "(h.at AT TIME ZONE 'Asia/Shanghai')::date"
# Per cause: (customer_id, star_level, detail) found in the scan's window.
_FOUND = f"""
WITH moves AS (
  SELECT pc.customer_id, h.state_after, {_DAY} AS day, h.at
    FROM credit.state_history h JOIN credit.product_credit pc USING (product_id)
   WHERE h.state_after IN ('suspended', 'pre_cancel') AND h.at <= :as_of
     AND h.at > :year_ago),
recent AS (SELECT * FROM moves WHERE at > :since),
found AS (
  SELECT r.customer_id, 'suspended_high_star' AS cause,
         jsonb_build_object('suspended_on', min(r.day)) AS detail
    FROM recent r JOIN credit.credit_profiles cp USING (customer_id)
   WHERE r.state_after = 'suspended' AND cp.star_level >= :high_star
   GROUP BY r.customer_id
  UNION ALL
  SELECT m.customer_id, 'repeated', jsonb_build_object('suspension_days', count(DISTINCT m.day))
    FROM moves m WHERE m.state_after = 'suspended'
     AND m.customer_id IN (SELECT customer_id FROM recent WHERE state_after = 'suspended')
   GROUP BY m.customer_id HAVING count(DISTINCT m.day) >= :repeated
  UNION ALL
  SELECT r.customer_id, 'pre_cancelled', jsonb_build_object('pre_cancelled_on', min(r.day))
    FROM recent r WHERE r.state_after = 'pre_cancel' GROUP BY r.customer_id)
INSERT INTO credit.churn_entries (entry_id, customer_id, cause, star_level, found_on, detail,
                                  status, revisit_due)
SELECT 'churn:' || f.customer_id || ':' || f.cause || ':' || :day_text, f.customer_id,
       f.cause, cp.star_level, CAST(:day AS date), f.detail, 'open', CAST(:due AS date)
  FROM found f LEFT JOIN credit.credit_profiles cp USING (customer_id)
 WHERE NOT EXISTS (SELECT 1 FROM credit.churn_entries e
                    WHERE e.customer_id = f.customer_id AND e.cause = f.cause
                      AND e.found_on > :quiet_from)
ON CONFLICT DO NOTHING
RETURNING cause"""


async def scan(ctx: CreditContext, as_of: datetime | None) -> dict[str, Any]:
    at = as_of or ctx.clock.now()
    day = business_date(at)
    async with ctx.engine.begin() as conn:
        card, _ = await sql.scorecard(conn)
        w = card.churn
        rows = await conn.execute(text(_FOUND), {
            "as_of": at, "since": at - timedelta(days=w.lookback_days),
            "year_ago": at - timedelta(days=365), "high_star": w.high_star,
            "repeated": w.repeated_suspensions, "day": day, "day_text": day.isoformat(),
            "due": day + timedelta(days=w.revisit_within_days),
            "quiet_from": day - timedelta(days=w.quiet_days)})
        causes = [r[0] for r in rows]
    return {"scan_date": day.isoformat(), "added": len(causes),
            "by_cause": {c: causes.count(c) for c in sorted(set(causes))}}


async def entries(ctx: CreditContext, status: str | None, cause: str | None,
                  limit: int) -> list[dict[str, Any]]:
    q = "SELECT * FROM credit.churn_entries WHERE true"
    if status:
        q += " AND status = :status"
    if cause:
        q += " AND cause = :cause"
    q += " ORDER BY revisit_due, entry_id LIMIT :limit"
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(text(q), {"status": status, "cause": cause, "limit": limit})
        return [dict(r._mapping) for r in rows]


async def revisit(ctx: CreditContext, entry_id: str, cmd: Revisit, by: str) -> dict[str, Any]:
    if cmd.outcome == "churned" and cmd.churn_reason is None:
        raise Unprocessable("a customer who left needs the reason (seed 003's categories)",
                            field="churn_reason")
    if cmd.outcome != "churned" and cmd.churn_reason is not None:
        raise Unprocessable("a churn reason only goes with the outcome churned",
                            field="churn_reason")
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = (await conn.execute(text(
            "SELECT status FROM credit.churn_entries WHERE entry_id = :e FOR UPDATE"),
            {"e": entry_id})).first()
        if row is None:
            raise NotFound(f"no churn entry {entry_id}", entry_id=entry_id)
        if row[0] != "open":
            raise Conflict(f"churn entry {entry_id} was already revisited", entry_id=entry_id)
        done = await conn.execute(text("""
            UPDATE credit.churn_entries SET status = 'revisited', outcome = :o,
                   churn_reason = :r, note = :n, revisited_by = :by, revisited_at = :at
             WHERE entry_id = :e RETURNING *"""), {
            "o": cmd.outcome, "r": cmd.churn_reason, "n": cmd.note, "by": by, "at": now,
            "e": entry_id})
        return dict(done.one()._mapping)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return (datetime.combine(month, datetime.min.time(), BUSINESS_TZ),
            datetime.combine(nxt, datetime.min.time(), BUSINESS_TZ))
