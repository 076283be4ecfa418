"""SQL for submits and CMPP logins: the block check and the submit's record in ONE statement,
so the HTTP submit and every CMPP_SUBMIT cost the same single round trip."""

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.cmpp import CmppAccount
from . import tables as t

# A product the chain has never seen is open (it was never suspended). The row records the
# judgement the gateway answered with, read from the same snapshot.
_RECORD = text("""
INSERT INTO gateway.submits
    (message_id, product_id, channel, source_addr, recipients, accepted, submitted_at)
SELECT :message_id, :product_id, :channel, :source_addr, :recipients,
       NOT coalesce((SELECT gateway_blocked FROM gateway.chain_products
                     WHERE product_id = :product_id), false),
       :now
RETURNING accepted
""")


async def record_submit(conn: AsyncConnection, *, message_id: str, product_id: str,
                        channel: str, source_addr: str | None, recipients: int,
                        now: datetime) -> bool:
    """Judge a submit against the gateway's block and record it; True if accepted."""
    accepted = await conn.scalar(_RECORD, {
        "message_id": message_id, "product_id": product_id, "channel": channel,
        "source_addr": source_addr, "recipients": recipients, "now": now})
    return bool(accepted)


async def recent_submits(conn: AsyncConnection, product_id: str, limit: int
                         ) -> list[dict[str, Any]]:
    s = t.submits
    rows = await conn.execute(select(s).where(s.c.product_id == product_id)
                              .order_by(s.c.submit_id.desc()).limit(limit))
    return [dict(r._mapping) for r in reversed(rows.all())]


async def load_account(conn: AsyncConnection, source_addr: str) -> CmppAccount | None:
    a = t.cmpp_accounts
    row = (await conn.execute(select(a).where(a.c.source_addr == source_addr))).first()
    if row is None:
        return None
    m = row._mapping
    return CmppAccount(m["source_addr"], m["shared_secret"], m["product_id"],
                       m["max_connections"], m["max_rate_per_s"])


async def save_account(conn: AsyncConnection, account: CmppAccount, now: datetime) -> None:
    values = {"shared_secret": account.shared_secret, "product_id": account.product_id,
              "max_connections": account.max_connections,
              "max_rate_per_s": account.max_rate_per_s, "updated_at": now}
    await conn.execute(pg_insert(t.cmpp_accounts)
                       .values(source_addr=account.source_addr, **values)
                       .on_conflict_do_update(index_elements=["source_addr"], set_=values))
