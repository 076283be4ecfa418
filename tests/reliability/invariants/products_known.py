"""Invariant: every product billing knows is known to credit-control once quiet.

A product that exists in billing but has no row in credit-control cannot be warned or
suspended (漏停): before products were published on creation, one added to an owing account
stayed invisible until the account's next money event (issue 23.3). Once the system is
quiet, every billing product has a credit-control row, on the same account, holding the
product's own amount due of the account's newest balance event (its `product_dues`; an
event without them means the account's amount, as credit-control reads it).
"""

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.billing import BalanceChanged
from common.envelope import convert
from credit_control.credit.domain.product_amount import product_amount_due

from .counts import Check

NAME = "products known"


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def check_products_known(conn: AsyncConnection, prefix: str) -> Check:
    c = Check(NAME)
    rows = (await conn.execute(text("""
        SELECT b.product_id, b.account_id, pc.account_id AS credit_account,
               pc.product_amount_due_fen AS credit_due
          FROM billing.products b
          LEFT JOIN credit.product_credit pc ON pc.product_id = b.product_id
         WHERE b.product_id LIKE :p ORDER BY b.product_id"""), {"p": _like(prefix)})).all()
    newest = await _newest_events(conn, sorted({r.account_id for r in rows}))
    c.expected = len(rows)
    lost, wrong = [], []
    for r in rows:
        if r.credit_account is None:
            lost.append(f"{r.product_id} (account {r.account_id}) unknown to credit-control")
            continue
        c.found += 1
        event = newest.get(r.account_id)
        due = product_amount_due(event, r.product_id) if event is not None else None
        if r.credit_account != r.account_id:
            wrong.append(f"{r.product_id} on {r.credit_account} in credit-control, "
                         f"{r.account_id} in billing")
        elif due is not None and due != r.credit_due:
            wrong.append(f"{r.product_id} owes {due} fen in billing's newest event, "
                         f"{r.credit_due} in credit-control")
    c.flag("lost", len(lost), lost)
    c.flag("wrong", len(wrong), wrong)
    return c


async def _newest_events(conn: AsyncConnection, accounts: list[str]) -> dict[str, BalanceChanged]:
    """Each account's newest balance event in billing's outbox (the highest sequence)."""
    rows = await conn.execute(text("""
        SELECT DISTINCT ON (key) key, payload FROM billing.outbox
         WHERE event_type = 'billing.balance_changed' AND key = ANY(:a)
         ORDER BY key, (payload::jsonb #>> '{payload,sequence}')::bigint DESC"""),
        {"a": accounts})
    found: dict[str, BalanceChanged] = {}
    for r in rows:
        envelope: dict[str, Any] = orjson.loads(r.payload)
        found[r.key] = convert(envelope["payload"], BalanceChanged)
    return found
