"""The bill run's outbox rows go in by COPY from 1,000 up: the same rows as the INSERT path,
in the caller's transaction."""

import uuid

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_events.adapters.ledger import COPY_FROM, OutboxRow, insert_outbox

pytestmark = pytest.mark.integration


def rows(count: int, uid: str) -> list[OutboxRow]:
    return [
        (uuid.uuid4(), f"copy-test-{uid}", f"acct-{uid}-{i}", "billing.balance_changed",
         orjson.dumps({"account_id": f"acct-{uid}-{i}", "balance_fen": -i, "name": "某集团"})
         .decode())
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [3, COPY_FROM])
async def test_outbox_rows_read_back_the_same_by_insert_and_by_copy(
    db: AsyncEngine, uid: str, count: int,
) -> None:
    written = rows(count, f"{uid}-{count}")
    async with db.connect() as conn:
        tx = await conn.begin()
        try:
            await insert_outbox(conn, written)
            found = (await conn.execute(text(
                "SELECT event_id, topic, key, event_type, payload::text AS payload "
                "FROM billing.outbox WHERE topic = :topic ORDER BY key"),
                {"topic": written[0][1]})).all()
        finally:
            await tx.rollback()  # never committed: the relay never sees these rows
    assert len(found) == count
    async with db.connect() as conn:  # and the caller's rollback took them all back
        assert await conn.scalar(text("SELECT count(*) FROM billing.outbox WHERE topic = :t"),
                                 {"t": written[0][1]}) == 0
    by_id = {r.event_id: r for r in found}
    for event_id, topic, key, event_type, payload in written:
        row = by_id[event_id]
        assert (row.topic, row.key, row.event_type) == (topic, key, event_type)
        assert orjson.loads(row.payload) == orjson.loads(payload)
