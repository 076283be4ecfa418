"""Transactional outbox: events are rows written with the state change, published later.

ONE writer, `add_rows`: every service's outbox rows go in through it (one INSERT … unnest for a
few rows, one binary COPY from `COPY_FROM` rows up), in the caller's order, so ids follow the
events' order; the relay of this process is woken once the transaction has ended.
(credit-control's month-end sweep builds its rows in set-based SQL, in the same shape.)

A relay publishes unpublished rows in id order with an idempotent producer and marks them.
A crash between send and mark republishes a row; consumers' inboxes absorb that.
Only one relay per schema works at a time (an advisory lock), so per-key order is kept even
when several instances of a service run.
"""

import asyncio
import logging
import weakref
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import BigInteger, Table, any_, bindparam, delete, event, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool

from common import metrics
from common.db import delete_in_chunks
from common.envelope import Envelope, to_bytes
from common.kafka import Publisher
from common.wakeup import idle_until_woken

log = logging.getLogger(__name__)

# From this many rows up they go in by binary COPY (~2x an INSERT … unnest on this machine);
# below it one INSERT is fewer round trips.
COPY_FROM = 1_000


class OutboxRow(NamedTuple):
    """One outbox row as written: the serialised envelope is sent to Kafka as is."""

    event_id: UUID
    topic: str
    key: str
    event_type: str
    payload: str | bytes  # the envelope's JSON


def envelope_row(topic: str, envelope: Envelope[Any]) -> OutboxRow:
    return OutboxRow(envelope.event_id, topic, envelope.key, envelope.type,
                     to_bytes(envelope).decode())


_COLUMNS = ["event_id", "topic", "key", "event_type", "payload"]
_INSERT = """
INSERT INTO "{schema}".outbox (event_id, topic, key, event_type, payload)
SELECT u.event_id, u.topic, u.key, u.event_type, u.payload
  FROM unnest(CAST(:event_id AS uuid[]), CAST(:topic AS text[]), CAST(:key AS text[]),
              CAST(:event_type AS text[]), CAST(:payload AS text[])) WITH ORDINALITY
       AS u(event_id, topic, key, event_type, payload, n)
 ORDER BY u.n"""  # ids follow the rows' order: the relay publishes in id order


async def add_rows(
    conn: AsyncConnection, rows: Sequence[tuple[UUID, str, str, str, str | bytes]], *,
    schema: str, wake: asyncio.Event | None = None, copy_from: int = COPY_FROM,
) -> None:
    """Write `rows` (event_id, topic, key, event_type, payload) to `schema`.outbox in the
    caller's transaction, in their order; `wake` is set once that transaction has ended."""
    if not rows:
        return
    records = [r if isinstance(r[4], str) else (*r[:4], r[4].decode()) for r in rows]
    if len(records) >= copy_from:
        await _copy(conn, schema, records)
    else:
        cols = list(zip(*records, strict=True))
        await conn.execute(text(_INSERT.format(schema=schema)),
                           {name: list(col) for name, col in zip(_COLUMNS, cols, strict=True)})
    if wake is not None:
        wake_after_commit(conn, wake)


async def _copy(conn: AsyncConnection, schema: str, records: Sequence[tuple[Any, ...]]) -> None:
    # SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement; COPY
    # bypasses that, so without a statement first it would commit on its own, outside the
    # caller's transaction.
    await conn.execute(text("SELECT 1"))
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "outbox", schema_name=schema, records=records, columns=_COLUMNS)


# Wake-ups wait in the connection's info until it goes back to the pool, which is after its
# transaction committed (or rolled back: a needless look, never a missed one). A relay woken
# before the commit would find nothing and sleep its idle poll.
_WAKE = "common.outbox.wake"
_hooked: "weakref.WeakSet[Pool]" = weakref.WeakSet()


def wake_after_commit(conn: AsyncConnection, wake: asyncio.Event) -> None:
    """Set `wake` once `conn`'s transaction has ended (when it goes back to the pool)."""
    pool = conn.sync_engine.pool
    if pool not in _hooked:
        event.listen(pool, "checkin", _wake_on_checkin)
        _hooked.add(pool)
    conn.info.setdefault(_WAKE, set()).add(wake)


def _wake_on_checkin(_dbapi_conn: Any, record: Any) -> None:
    if record is None:
        return  # invalidated: the relay's idle poll finds the rows
    for wake in record.info.pop(_WAKE, ()):
        wake.set()


class Outbox:
    """A service's outbox table, and the wake-up its relay waits on."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.schema = table.schema or "public"
        self.wake = asyncio.Event()

    async def add_rows(self, conn: AsyncConnection,
                       rows: Sequence[tuple[UUID, str, str, str, str | bytes]]) -> None:
        await add_rows(conn, rows, schema=self.schema, wake=self.wake)

    async def add(self, conn: AsyncConnection, topic: str, envelope: Envelope[Any]) -> None:
        await self.add_rows(conn, [envelope_row(topic, envelope)])

    async def add_many(
        self, conn: AsyncConnection, events: Sequence[tuple[str, Envelope[Any]]]
    ) -> None:
        await self.add_rows(conn, [envelope_row(topic, env) for topic, env in events])

    def wake_after_commit(self, conn: AsyncConnection) -> None:
        """For rows written in SQL of their own (the sweep): wake the relay after commit."""
        wake_after_commit(conn, self.wake)


class OutboxRelay:
    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, publisher: Publisher, *,
        batch_size: int = 1000, idle_poll_s: float = 0.05,
    ) -> None:
        self._engine = engine
        self.outbox = outbox
        self._table = outbox.table
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._lock_id = zlib.crc32(f"outbox:{self._table.fullname}".encode())
        self.schema = self._table.schema or ""

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        t = self._table
        async with self._engine.begin() as conn:
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(self._lock_id))):
                return 0
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.topic, t.c.key, t.c.payload)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            await self._publisher.send_many(
                [(r.topic, r.key.encode(), r.payload.encode()) for r in rows]
            )
            # One array parameter, not an IN list: the same prepared statement whatever the
            # batch size (an IN list re-plans for every size).
            await conn.execute(
                update(t).where(t.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
                .values(published_at=func.now()),
                {"ids": [r.id for r in rows]},
            )
        metrics.OUTBOX_PUBLISHED.labels(self.schema).inc(len(rows))
        return len(rows)

    async def prune(self, older_than_days: int) -> int:
        """Delete published rows older than the retention, a chunk at a time."""
        t = self._table
        cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
        return await delete_in_chunks(self._engine, lambda chunk: delete(t).where(
            t.c.id.in_(select(t.c.id).where(t.c.published_at < cutoff).limit(chunk)
                       .scalar_subquery())))

    async def backlog(self) -> int:
        t = self._table
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(t).where(t.c.published_at.is_(None))
            )
        return int(count or 0)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                published = await self.publish_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size:
                await self._wait_for_work(stop)

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        await idle_until_woken(self.outbox.wake, self._idle_poll_s)
