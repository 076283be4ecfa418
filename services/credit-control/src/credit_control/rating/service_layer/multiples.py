"""Credit multiples (信控倍数每天核查, seed 002): every day, each customer's credit limit against
its average monthly bill; those above the scorecard's multiple go on a review list, once per
day (idempotent: a second check of the same day adds nothing)."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from common.clock import business_date
from common.errors import NotFound

from ...service_layer.context import CreditContext
from ..adapters import rating_sql as sql
from .runs import months_back

_CANDIDATES = """
SELECT p.customer_id, p.star_level, p.credit_limit_fen,
       coalesce((SELECT sum(b.billed_fen) / count(DISTINCT b.bill_month)
                   FROM credit.rating_bills b
                  WHERE b.customer_id = p.customer_id AND b.bill_month >= :since
                    AND b.bill_month < :month_start), 0) AS avg_bill_fen
  FROM credit.credit_profiles p
 WHERE p.credit_limit_fen > 0
 ORDER BY p.customer_id"""
_INSERT = """
INSERT INTO credit.multiple_checks (check_date, customer_id, star_level, limit_fen,
                                    avg_bill_fen, multiple_milli, status)
SELECT :day, * , 'open' FROM unnest(CAST(:c AS text[]), CAST(:s AS integer[]),
                                   CAST(:l AS bigint[]), CAST(:a AS bigint[]),
                                   CAST(:m AS bigint[]))
ON CONFLICT DO NOTHING"""


async def check(ctx: CreditContext, as_of: datetime | None) -> dict[str, Any]:
    at = as_of or ctx.clock.now()
    day = business_date(at)
    async with ctx.engine.begin() as conn:
        card, _ = await sql.scorecard(conn)
        rule = card.multiples
        rows = list(await conn.execute(text(_CANDIDATES), {
            "since": months_back(day, rule.window_months), "month_start": day.replace(day=1)}))
        flagged = [r for r in rows if rule.too_high(int(r[2]), int(r[3]))]
        if flagged:
            await conn.execute(text(_INSERT), {
                "day": day, "c": [r[0] for r in flagged], "s": [r[1] for r in flagged],
                "l": [r[2] for r in flagged], "a": [r[3] for r in flagged],
                "m": [rule.multiple_milli(int(r[2]), int(r[3])) for r in flagged]})
    return {"check_date": day.isoformat(), "checked": len(rows), "flagged": len(flagged),
            "max_multiple": rule.max_multiple_milli / 1000,
            "window_months": rule.window_months}


async def listing(ctx: CreditContext, day: date, status: str | None) -> list[dict[str, Any]]:
    q = ("SELECT * FROM credit.multiple_checks WHERE check_date = :d "
         + ("AND status = :s " if status else "") + "ORDER BY multiple_milli DESC NULLS FIRST,"
         " customer_id")
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(text(q), {"d": day, "s": status})
        return [_view(dict(r._mapping)) for r in rows]


def _view(row: dict[str, Any]) -> dict[str, Any]:
    m = row.pop("multiple_milli")
    return {**row, "multiple": None if m is None else m / 1000}


async def review(ctx: CreditContext, day: date, customer_id: str, note: str, by: str
                 ) -> dict[str, Any]:
    async with ctx.engine.begin() as conn:
        done = await conn.execute(text(
            "UPDATE credit.multiple_checks SET status = 'reviewed', reviewed_by = :by, "
            "note = :note WHERE check_date = :d AND customer_id = :c RETURNING *"),
            {"by": by, "note": note, "d": day, "c": customer_id})
        row = done.first()
    if row is None:
        raise NotFound(f"no credit-multiple finding for {customer_id} on {day}",
                       customer_id=customer_id, check_date=day.isoformat())
    return _view(dict(row._mapping))
