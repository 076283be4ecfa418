"""Inbox: the ids of events a consumer has applied, written in the transaction of the effect."""

from uuid import UUID

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection


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
