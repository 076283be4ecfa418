"""Inbox: the ids of events a consumer has applied, written in the transaction of the effect."""

from uuid import UUID

from sqlalchemy import Table, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.db import delete_in_chunks, driver


class Inbox:
    def __init__(self, table: Table) -> None:
        self.table = table
        into = f"INSERT INTO {table.schema}.{table.name} (consumer, event_id, topic) "
        self._claim = (into + "SELECT $1, e.id, e.topic FROM unnest($2::uuid[], $3::text[]) "
                       "AS e(id, topic) ON CONFLICT DO NOTHING RETURNING event_id")
        self._claim_one_topic = (into + "SELECT $1, e.id, $3 FROM unnest($2::uuid[]) AS e(id) "
                                 "ON CONFLICT DO NOTHING RETURNING event_id")

    async def claim(self, conn: AsyncConnection, consumer: str, event_id: UUID, topic: str) -> bool:
        """True the first time this consumer sees the event; False for a redelivery."""
        stmt = (
            insert(self.table)
            .values(consumer=consumer, event_id=event_id, topic=topic)
            .on_conflict_do_nothing()
            .returning(self.table.c.event_id)
        )
        return (await conn.execute(stmt)).first() is not None

    async def claim_many(
        self, conn: AsyncConnection, consumer: str, events: list[tuple[UUID, str]]
    ) -> set[UUID]:
        """Claim a batch in one statement; returns the ids seen for the first time.

        On the transaction's asyncpg connection itself: a batch's thousands of returned ids
        would each cost a SQLAlchemy Row (a third of the claim's CPU). The topic goes once
        when the batch has one (the usual case), not once per event."""
        topics = {t for _, t in events}
        raw = await driver(conn)
        if len(topics) == 1:
            rows = await raw.fetch(self._claim_one_topic, consumer, [e for e, _ in events],
                                      next(iter(topics)))
        else:
            rows = await raw.fetch(self._claim, consumer, [e for e, _ in events],
                                      [t for _, t in events])
        return {r[0] for r in rows}

    async def prune(self, engine: AsyncEngine, older_than_days: int) -> int:
        """Forget applied ids older than the retention (longer than Kafka keeps the log)."""
        t = self.table
        cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
        return await delete_in_chunks(engine, lambda chunk: delete(t).where(
            tuple_(t.c.consumer, t.c.event_id).in_(
                select(t.c.consumer, t.c.event_id).where(t.c.applied_at < cutoff).limit(chunk))))
