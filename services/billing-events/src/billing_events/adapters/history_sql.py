"""Read-only reads of a page of accounts' dated ledgers (domain/history.py). A handful of
statements per page whatever its size; nothing is locked or written."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.history import Movement, TimedLedger

S = "billing"


@dataclass(frozen=True)
class AccountHead:
    account_id: str
    customer_id: str
    tier: str
    star_level: int | None
    products: tuple[tuple[str, str], ...]  # (product id, family)


async def closed_months(conn: AsyncConnection) -> dict[date, datetime]:
    """Each closed bill month and the moment its bill run took effect."""
    rows = await conn.execute(text(f"SELECT bill_month, as_of FROM {S}.bill_runs"))
    return {r[0]: r[1] for r in rows}


async def account_page(conn: AsyncConnection, through: date, after: str, limit: int,
                       channel: str | None = None) -> list[AccountHead]:
    """Accounts in id order after `after` with a bill of a month up to `through` (and a
    product of `channel`, if given: then only those products are listed)."""
    rows = (await conn.execute(text(f"""
        SELECT a.account_id, a.customer_id, c.tier, c.star_level
          FROM {S}.accounts a JOIN {S}.customers c ON c.customer_id = a.customer_id
         WHERE a.account_id > :after AND EXISTS (
               SELECT 1 FROM {S}.charges ch WHERE ch.account_id = a.account_id
                  AND ch.bill_month <= :through)
           AND (CAST(:channel AS text) IS NULL OR EXISTS (
               SELECT 1 FROM {S}.products p WHERE p.account_id = a.account_id
                  AND p.channel = :channel))
         ORDER BY a.account_id LIMIT :limit"""),
        {"after": after, "through": through, "limit": limit, "channel": channel})).all()
    ids = [r[0] for r in rows]
    products: dict[str, list[tuple[str, str]]] = {}
    for account_id, product_id, family in await conn.execute(text(f"""
            SELECT account_id, product_id, family FROM {S}.products
             WHERE account_id = ANY(:ids)
               AND (CAST(:channel AS text) IS NULL OR channel = :channel)
             ORDER BY account_id, product_id"""), {"ids": ids, "channel": channel}):
        products.setdefault(account_id, []).append((product_id, family))
    return [AccountHead(r[0], r[1], r[2], r[3], tuple(products.get(r[0], ()))) for r in rows]


async def ledgers(conn: AsyncConnection, heads: list[AccountHead], through: date,
                  until: datetime) -> dict[str, TimedLedger]:
    """The dated ledgers of `heads`: charges of bill months up to `through`, movements up to
    `until` (later ones are not history yet)."""
    found = {h.account_id: TimedLedger(h.account_id, product_ids=[p for p, _ in h.products])
             for h in heads}
    params: dict[str, Any] = {"ids": list(found), "through": through, "until": until}
    for account_id, month, product_id, fen in await conn.execute(text(f"""
            SELECT account_id, bill_month, product_id, sum(amount_fen)::bigint
              FROM {S}.charges WHERE account_id = ANY(:ids) AND bill_month <= :through
             GROUP BY account_id, bill_month, product_id"""), params):
        found[account_id].charges[(month, product_id)] = fen
    for row in await conn.execute(text(_MOVEMENTS), params):
        found[row[0]].movements.append(_movement(row))
    return found


# Every dated movement: (account, at, cause, credit, bill month, product, bill change, deposit).
# A reversed payment counts from its payment until its reversal (two movements).
_MOVEMENTS = f"""
    SELECT account_id, paid_at, CASE WHEN source = 'deposit' THEN 'deduction'
                                     ELSE 'payment' END, amount_fen, NULL::date, NULL, 0, 0
      FROM {S}.payments WHERE account_id = ANY(:ids) AND paid_at <= :until
    UNION ALL
    SELECT account_id, reversed_at, 'reversal', -(SELECT amount_fen FROM {S}.payments p
                                                   WHERE p.payment_id = r.payment_id),
           NULL::date, NULL, 0, 0
      FROM {S}.reversals r WHERE account_id = ANY(:ids) AND reversed_at <= :until
    UNION ALL
    SELECT account_id, adjusted_at, 'adjustment', 0, bill_month, product_id, amount_fen, 0
      FROM {S}.adjustments WHERE account_id = ANY(:ids) AND adjusted_at <= :until
           AND bill_month <= :through
    UNION ALL
    SELECT account_id, written_off_at, 'write_off', amount_fen, NULL::date, NULL, 0, 0
      FROM {S}.write_offs WHERE account_id = ANY(:ids) AND written_off_at <= :until
    UNION ALL
    SELECT account_id, lapsed_at, 'write_off', -amount_fen, NULL::date, NULL, 0, 0
      FROM {S}.write_off_lapses WHERE account_id = ANY(:ids) AND lapsed_at <= :until
    UNION ALL
    SELECT account_id, at, 'deposit', 0, NULL::date, NULL, 0, amount_fen
      FROM {S}.deposit_movements WHERE account_id = ANY(:ids) AND at <= :until"""


def _movement(row: Any) -> Movement:
    _, at, cause, credit, month, product_id, bill_fen, deposit = row
    bill = (month, product_id) if month is not None else None
    return Movement(at, cause, int(credit or 0), bill, int(bill_fen or 0), int(deposit or 0))
