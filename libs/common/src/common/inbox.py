"""Inbox: the ids of events a consumer has applied, written in the transaction of the effect."""

from uuid import UUID

from sqlalchemy import Table, delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.db import delete_in_chunks


class Inbox:
    def __init__(self, table: Table) -> None:
        self.table = table

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
        """Claim a batch in one statement; returns the ids seen for the first time."""
        rows = await conn.execute(
            text(
                f"INSERT INTO {self.table.schema}.{self.table.name} (consumer, event_id, topic) "
                "SELECT :consumer, e.id, e.topic "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:topics AS text[])) AS e(id, topic) "
                "ON CONFLICT DO NOTHING RETURNING event_id"
            ),
            {"consumer": consumer, "ids": [e for e, _ in events], "topics": [t for _, t in events]},
        )
        return set(rows.scalars())

    async def prune(self, engine: AsyncEngine, older_than_days: int) -> int:
        """Forget applied ids older than the retention (longer than Kafka keeps the log)."""
        t = self.table
        cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
        return await delete_in_chunks(engine, lambda chunk: delete(t).where(
            tuple_(t.c.consumer, t.c.event_id).in_(
                select(t.c.consumer, t.c.event_id).where(t.c.applied_at < cutoff).limit(chunk))))
