"""Inbox: the ids of events a consumer has applied, written in the transaction of the effect."""

from collections.abc import Sequence
from typing import TypeVar
from uuid import UUID

import asyncpg
from sqlalchemy import Table, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.db import delete_in_chunks, driver
from common.pg_arrays import array_text

T = TypeVar("T")


class AlreadyClaimed(Exception):
    """`Inbox.claim_new` met an event claimed before (a redelivery, or one event twice in
    the batch): the claim failed and with it the transaction, which the caller rolls back
    and makes again with `claim_many`."""


class Inbox:
    def __init__(self, table: Table) -> None:
        self.table = table
        into = f"INSERT INTO {table.schema}.{table.name} (consumer, event_id, topic) "
        # The arrays as their text form (common.pg_arrays.array_text).
        self._claim = _claim_sql(into, "unnest($2::text::uuid[], $3::text::text[])", "e.topic")
        self._claim_one_topic = _claim_sql(into, "unnest($2::text::uuid[])", "$3")
        self._insert = f"{into}SELECT $1, e.id, e.topic FROM unnest($2::text::uuid[], " \
            "$3::text::text[]) AS e(id, topic)"
        self._insert_one_topic = f"{into}SELECT $1, unnest($2::text::uuid[]), $3"

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
    ) -> list[int] | None:
        """Claim a batch in one statement; returns the positions (0-based, ascending) of the
        events seen for the first time, or None when every one of them was.

        On the transaction's asyncpg connection itself, and answered by position: a set of
        the batch's returned ids cost a UUID per row to read and two Python-level hashes per
        event to look up (~4 µs an event, more than the claim's statement). The topic goes
        once when the batch has one (the usual case), not once per event."""
        if not events:
            return None
        topic = events[0][1]
        raw = await driver(conn)
        if all(t == topic for _, t in events):
            return await raw.fetchval(  # type: ignore[no-any-return]
                self._claim_one_topic, consumer, array_text([e for e, _ in events], "uuid"),
                topic)
        return await raw.fetchval(  # type: ignore[no-any-return]
            self._claim, consumer, array_text([e for e, _ in events], "uuid"),
            array_text([t for _, t in events], "text"))

    async def claim_new(
        self, conn: AsyncConnection, consumer: str, events: list[tuple[UUID, str]]
    ) -> None:
        """Claim a batch taken to be all new (a consumer's usual batch) with a plain INSERT,
        as the transaction's first statement; raises `AlreadyClaimed` if any event was
        claimed before, the transaction then void.

        Why not `claim_many` every time: its `ON CONFLICT DO NOTHING` probes the primary key
        for each row before inserting it (a second descent of the tree), inserts
        speculatively (a confirmation record more in the WAL) and returns every id to be
        matched back to its position: ~8-10 µs of the server's time an event against
        ~5 for the plain INSERT here (1,500-event batches, docs/benchmarks.md, thirty-first
        session). A redelivery (after a crash or a rebalance) costs one failed statement and
        the batch's transaction made again."""
        if not events:
            return
        topic = events[0][1]
        raw = await driver(conn)
        try:
            if all(t == topic for _, t in events):
                await raw.execute(self._insert_one_topic, consumer,
                                  array_text([e for e, _ in events], "uuid"), topic)
            else:
                await raw.execute(self._insert, consumer,
                                  array_text([e for e, _ in events], "uuid"),
                                  array_text([t for _, t in events], "text"))
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyClaimed(str(exc)) from exc

    async def prune(self, engine: AsyncEngine, older_than_days: int) -> int:
        """Forget applied ids older than the retention (longer than Kafka keeps the log)."""
        t = self.table
        cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
        return await delete_in_chunks(engine, lambda chunk: delete(t).where(
            tuple_(t.c.consumer, t.c.event_id).in_(
                select(t.c.consumer, t.c.event_id).where(t.c.applied_at < cutoff).limit(chunk))))


def new_items(items: Sequence[T], claimed: list[int] | None) -> Sequence[T]:
    """The items of a batch that `Inbox.claim_many` answered `claimed` for, in order."""
    return items if claimed is None else [items[n] for n in claimed]


def _claim_sql(into: str, unnest: str, topic: str) -> str:
    """The batch claim: the batch's positions that were new, or NULL when all were (the
    usual case: no per-event work in Python at all). A redelivery is a position left out; an
    event twice in one batch counts at its first position, as it is applied there. `topic`
    is each row's (`e.topic`) or one parameter for all."""
    columns = "id, topic, n" if topic == "e.topic" else "id, n"
    return (f"WITH e AS MATERIALIZED (SELECT * FROM {unnest} WITH ORDINALITY AS e({columns})), "
            f"ins AS ({into}SELECT $1, e.id, {topic} FROM e "
            "ON CONFLICT DO NOTHING RETURNING event_id) "
            "SELECT CASE WHEN (SELECT count(*) FROM ins) = (SELECT count(*) FROM e) "
            "THEN NULL ELSE ARRAY(SELECT min(e.n)::int - 1 FROM ins "
            "JOIN e ON e.id = ins.event_id GROUP BY e.id ORDER BY 1) END")
