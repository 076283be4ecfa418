"""Receivables and arrears per bill month, over the whole base in one statement.

FIFO at product level: an account's credits (payments not reversed, write-offs less their
lapses) cover its
closed bill months oldest first, and within a month its products in product-id order. So
a month's arrears = the part of the running total of debits through that row which the
account's credits do not reach: clamp(cumulative − credits, 0, row). Summed by month, this
is exactly what the account positions (domain.model.position) say is due per month.

With a cutoff (figures as of the end of a day) every input is cut at it: bill runs (a month
billed later had no receivables yet), adjustments, payments and their reversals,
write-offs and their lapses, each by its own business moment.
"""

from datetime import date, datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

S = "billing"
GroupBy = Literal["family", "tier", "channel", "vendor", "region"]
# By the master data as it is now (a customer moved to another region counts there).
_GROUP_COLUMN: dict[str, str] = {
    "family": "p.family", "tier": "cu.tier",
    "channel": "coalesce(p.channel, '')", "vendor": "coalesce(p.vendor, '')",
    "region": "coalesce(cu.region, '')",
}


def _query(group: str | None) -> str:
    key = _GROUP_COLUMN[group] if group else "''"
    return f"""
    WITH debits AS (
        SELECT account_id, bill_month, product_id, sum(amount_fen) AS fen FROM (
            SELECT account_id, bill_month, product_id, amount_fen FROM {S}.charges
            UNION ALL
            SELECT account_id, bill_month, product_id, amount_fen FROM {S}.adjustments
             WHERE CAST(:cutoff AS timestamptz) IS NULL OR adjusted_at < :cutoff) d
        WHERE bill_month <= :through
          AND bill_month IN (SELECT bill_month FROM {S}.bill_runs
                              WHERE CAST(:cutoff AS timestamptz) IS NULL OR as_of < :cutoff)
        GROUP BY account_id, bill_month, product_id),
    ranked AS (
        SELECT account_id, bill_month, product_id, fen,
               sum(fen) OVER (PARTITION BY account_id ORDER BY bill_month, product_id) AS cum
        FROM debits),
    credits AS (
        SELECT account_id, sum(fen) AS fen, sum(paid) AS paid FROM (
            SELECT p.account_id, p.amount_fen AS fen, p.amount_fen AS paid FROM {S}.payments p
             WHERE (CAST(:cutoff AS timestamptz) IS NULL OR p.paid_at < :cutoff)
               AND NOT EXISTS (SELECT 1 FROM {S}.reversals r WHERE r.payment_id = p.payment_id
                     AND (CAST(:cutoff AS timestamptz) IS NULL OR r.reversed_at < :cutoff))
            UNION ALL
            SELECT account_id, amount_fen, 0 FROM {S}.write_offs
             WHERE CAST(:cutoff AS timestamptz) IS NULL OR written_off_at < :cutoff
            UNION ALL
            SELECT account_id, -amount_fen, 0 FROM {S}.write_off_lapses
             WHERE CAST(:cutoff AS timestamptz) IS NULL OR lapsed_at < :cutoff) c
        GROUP BY account_id)
    SELECT r.bill_month, {key} AS grp, sum(r.fen) AS receivables,
           sum(greatest(0, least(r.fen, r.cum - coalesce(c.fen, 0)))) AS arrears,
           sum(greatest(0, least(r.fen, r.cum - coalesce(c.paid, 0)))) AS unpaid
      FROM ranked r
      LEFT JOIN credits c ON c.account_id = r.account_id
      JOIN {S}.products p ON p.product_id = r.product_id
      JOIN {S}.accounts a ON a.account_id = r.account_id
      JOIN {S}.customers cu ON cu.customer_id = a.customer_id
     WHERE r.bill_month >= :first
     GROUP BY r.bill_month, grp
     ORDER BY r.bill_month, grp"""


async def receivables(
    conn: AsyncConnection, first: date, through: date, cutoff: datetime | None,
    group: GroupBy | None,
) -> list[tuple[date, str, int, int, int]]:
    """(bill_month, group key, receivables_fen, arrears_fen, written_off_fen) for the closed
    months in range. Written off: what the write-offs (less their lapses) cover of the
    month's bills after the payments (`unpaid` − arrears: the payments pay first), never
    collected."""
    rows = await conn.execute(text(_query(group)),
                              {"first": first, "through": through, "cutoff": cutoff})
    return [(r.bill_month, r.grp, int(r.receivables), int(r.arrears),
             max(0, int(r.unpaid) - int(r.arrears))) for r in rows]


async def closed_in(conn: AsyncConnection, first: date, through: date,
                    cutoff: datetime | None = None) -> list[date]:
    """The months in range closed by a bill run (before `cutoff`: a month billed later had
    no receivables yet on that day)."""
    rows = await conn.execute(text(
        f"SELECT bill_month FROM {S}.bill_runs WHERE bill_month BETWEEN :f AND :t "
        "AND (CAST(:cutoff AS timestamptz) IS NULL OR as_of < :cutoff) ORDER BY bill_month"),
        {"f": first, "t": through, "cutoff": cutoff})
    return list(rows.scalars())
