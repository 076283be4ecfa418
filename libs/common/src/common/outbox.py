"""Transactional outbox: events are rows written with the state change, published later.

ONE writer, `add_rows`: every service's outbox rows go in through it (one INSERT … unnest for a
few rows, one binary COPY from `COPY_FROM` rows up, or a COPY streamed from a generator while
its rows are built), in the caller's order, so ids follow the events' order; the relay of
this process is woken once the transaction has ended. `insert_part` is the same INSERT for a
caller that sends it inside a statement of several (the gateway's chain writes).
(credit-control's month-end sweep builds its rows in set-based SQL, in the same shape.)

A row is one message, or several of one topic (its payload the JSON array of their
envelopes, in order), published as separate messages in that order: as rows of their own
they cost the outbox more than their bytes (each a heap tuple, two index entries and a
pending-queue row, written and deleted). A group's key is its messages' when they share
one, else empty (`MIXED_KEYS`: each message is published with its envelope's key). `packed`
makes such rows, 16 messages of a topic to a row (the gateway's results of a batch); the
month-end sweep writes its events so in SQL. `messages` reads a row's messages back,
`keyed_messages` with their keys; in SQL the view `outbox_messages` (common.plumbing) does.

A row is written once and never updated: a statement trigger queues its id in the narrow
`outbox_pending` (common.plumbing), and the relay (`OutboxRelay`) deletes ids from there once
Kafka acknowledged their rows. A crash between send and commit sends a row again (at least
once into Kafka); consumers' inboxes absorb that. Only one relay per schema works at a time
(an advisory lock), so per-key order is kept even when several instances of a service run.
"""

import asyncio
import contextlib
import functools
import logging
import struct
import weakref
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from sqlalchemy import Table, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool

from common import metrics
from common.db import DriverStatement, driver
from common.envelope import Envelope, to_bytes
from common.kafka import Publisher
from common.poll_loop import PollLoop

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
    # The envelope's JSON, or a group's array of envelopes (`packed`); bytes: UTF-8, written
    # as they are.
    payload: str | bytes


def envelope_row(topic: str, envelope: Envelope[Any]) -> OutboxRow:
    return OutboxRow(envelope.event_id, topic, envelope.key, envelope.type, to_bytes(envelope))


# The key of a group row whose messages' keys differ: each message is published with the key
# its envelope names (`keyed_messages`). No message has an empty key.
MIXED_KEYS = ""


def packed(rows: Sequence[OutboxRow], size: int = 16) -> list[OutboxRow]:
    """A topic's consecutive messages `size` to a row, whatever their keys and event types:
    each group where its first message was, its payload the JSON array of their envelopes in
    their order, its key theirs when they share one, else `MIXED_KEYS` (each is published
    with its envelope's key). Each topic's messages keep their order, so each key's do;
    rows of different topics may be published in another order than written (Kafka orders
    a partition's messages, never two topics'). One message alone stays as it was. The
    row's `event_id` and `event_type` are its first message's: the unique index refuses the
    same group written twice, not one of its later messages written again elsewhere (the
    writer makes a group's messages together); the view `outbox_messages` lists every
    message's own id, key and type."""
    groups: list[list[OutboxRow]] = []
    open_: dict[str, list[OutboxRow]] = {}  # topic → its group being filled
    for row in rows:
        group = open_.get(row.topic)
        if group is not None and len(group) < size:
            group.append(row)
        else:
            groups.append(group := [row])
            open_[row.topic] = group
    if len(groups) == len(rows):
        return list(rows)
    return [g[0] if len(g) == 1 else OutboxRow(
        g[0].event_id, g[0].topic,
        g[0].key if all(r.key == g[0].key for r in g) else MIXED_KEYS, g[0].event_type,
        b"[" + b",".join([_utf8(r.payload) for r in g]) + b"]") for g in groups]


def _utf8(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload


_MESSAGES = msgspec.json.Decoder(list[msgspec.Raw])


def messages(payload: bytes) -> list[bytes]:
    """A row's messages, as Kafka gets them: the payload itself (an envelope, a JSON object),
    or each envelope of a group's array (`packed`), their bytes as they were written.
    ValueError (msgspec's DecodeError is one) for an array that is not of JSON objects, or
    is empty: no writer makes one."""
    if payload[:1] != b"[":
        return [payload]
    found = [bytes(raw) for raw in _MESSAGES.decode(payload)]
    if not found or any(m[:1] != b"{" for m in found):
        raise ValueError("a group of messages is a non-empty JSON array of envelopes")
    return found


class _Keyed(msgspec.Struct):
    key: str


_KEY = msgspec.json.Decoder(_Keyed)


def keyed_messages(key: bytes, payload: bytes) -> list[tuple[bytes, bytes]]:
    """A row's messages with the key each is published with: the row's key, or for a group
    of mixed keys (`MIXED_KEYS`) each envelope's own. ValueError as `messages`, and for an
    envelope of such a group without a key."""
    found = messages(payload)
    if key != b"" or payload[:1] != b"[":
        return [(key, m) for m in found]
    try:
        return [(_KEY.decode(m).key.encode(), m) for m in found]
    except msgspec.ValidationError as exc:
        raise ValueError(f"a message of a group of mixed keys names no key: {exc}") from exc


_COLUMNS = ["event_id", "topic", "key", "event_type", "payload"]
_INSERT = """
INSERT INTO "{schema}".outbox (event_id, topic, key, event_type, payload)
SELECT u.event_id, u.topic, u.key, u.event_type, convert_from(u.payload, 'UTF8')
  FROM unnest(CAST(:event_id AS uuid[]), CAST(:topic AS text[]), CAST(:key AS text[]),
              CAST(:event_type AS text[]), CAST(:payload AS bytea[])) WITH ORDINALITY
       AS u(event_id, topic, key, event_type, payload, n)
 ORDER BY u.n"""  # ids follow the rows' order: the relay publishes in id order
# The payloads go as bytea, converted (and checked as UTF-8) by PostgreSQL: an envelope is
# already UTF-8 bytes, and a text parameter would have it decoded in Python only for asyncpg
# to encode it again (~0.7 µs a few hundred bytes of Chinese).


@functools.cache
def _insert_sql(schema: str) -> str:
    return _INSERT.format(schema=schema)


@functools.cache
def _insert(schema: str) -> DriverStatement:
    return DriverStatement(_insert_sql(schema))


def insert_part(rows: Sequence[tuple[UUID, str, str, str, str | bytes]],
                schema: str) -> tuple[str, dict[str, Any]]:
    """The INSERT `add_rows` sends for fewer than `COPY_FROM` rows, as its SQL (`:name`
    parameters) and its parameters: for a caller that sends it as one part of a statement of
    several (the gateway's chain writes, `WITH w0 AS (…), w1 AS (…)`), one round trip for
    all. The caller wakes the relay after commit (`wake_after_commit`)."""
    records = [r if isinstance(r[4], bytes) else (*r[:4], r[4].encode()) for r in rows]
    cols = list(zip(*records, strict=True))
    return _insert_sql(schema), {name: list(col) for name, col in zip(_COLUMNS, cols,
                                                                    strict=True)}


async def add_rows(
    conn: AsyncConnection, rows: Iterable[tuple[UUID, str, str, str, str | bytes]], *,
    schema: str, wake: asyncio.Event | None = None, copy_from: int = COPY_FROM,
) -> None:
    """Write `rows` (event_id, topic, key, event_type, payload) to `schema`.outbox in the
    caller's transaction, in their order; `wake` is set once that transaction has ended.

    A sequence goes in by one INSERT below `copy_from` rows, by COPY from there up. Any
    other iterable (a generator: a bill run building its events) is streamed by COPY while
    it is built: PostgreSQL inserts one chunk on the other core while Python builds the
    next, instead of the two taking turns."""
    if isinstance(rows, Sequence) and len(rows) < copy_from:
        if not rows:
            return
        await _insert(schema).execute(conn, insert_part(rows, schema)[1])
    else:
        # In the caller's transaction (`driver` begins it if no statement did yet).
        await (await driver(conn)).copy_to_table(
            "outbox", schema_name=schema, columns=_COPY_COLUMNS, format="binary",
            source=_copy_chunks(rows))
    if wake is not None:
        wake_after_commit(conn, wake)


# COPY's binary format (PostgreSQL's "COPY", "Binary Format"): a header, then per row the
# number of fields and each field as its length and its bytes (a uuid's 16, a text's UTF-8),
# then -1. Written here rather than by asyncpg's record encoder because a payload is already
# UTF-8 bytes (the encoded envelope): the encoder takes only str, so every ~1 KB payload was
# decoded to be encoded again; and a topic and event type repeat, so they are encoded once.
# The order `_copy_chunks` writes each row's fields in (topic and event type next to each
# other, so the pair is encoded once), not the rows' tuple order.
_COPY_COLUMNS = ["event_id", "topic", "event_type", "key", "payload"]
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_ROW_START = struct.pack(">hi", len(_COPY_COLUMNS), 16)  # five fields; the uuid's 16 bytes
_LENGTH = struct.Struct(">i").pack
_COPY_CHUNK = 256 * 1024  # bytes handed to the connection at a time


@functools.lru_cache(maxsize=256)
def _topic_and_type(topic: str, event_type: str) -> bytes:
    t, e = topic.encode(), event_type.encode()
    return _LENGTH(len(t)) + t + _LENGTH(len(e)) + e


async def _copy_chunks(
    rows: Iterable[tuple[UUID, str, str, str, str | bytes]],
) -> AsyncIterator[bytes]:
    parts: list[bytes] = [_COPY_HEADER]
    size = 0
    for event_id, topic, key, event_type, payload in rows:
        k = key.encode()
        p = payload.encode() if isinstance(payload, str) else payload
        parts += (_ROW_START, event_id.bytes, _topic_and_type(topic, event_type),
                  _LENGTH(len(k)), k, _LENGTH(len(p)), p)
        size += len(p) + 64
        if size >= _COPY_CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(_COPY_TRAILER)
    yield b"".join(parts)


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
                       rows: Iterable[tuple[UUID, str, str, str, str | bytes]]) -> None:
        await add_rows(conn, rows, schema=self.schema, wake=self.wake)

    async def add(self, conn: AsyncConnection, topic: str, envelope: Envelope[Any]) -> None:
        await self.add_rows(conn, [envelope_row(topic, envelope)])

    async def add_many(
        self, conn: AsyncConnection, events: Sequence[tuple[str, Envelope[Any]]], *,
        pack: bool = False,
    ) -> None:
        """`events` in their order; `pack`: a topic's consecutive ones 16 to a row
        (`packed`), for a writer of many events a transaction (the balance path)."""
        rows = [envelope_row(topic, env) for topic, env in events]
        await self.add_rows(conn, packed(rows) if pack else rows)

    def insert_part(self, rows: Sequence[tuple[UUID, str, str, str, str | bytes]]
                    ) -> tuple[str, dict[str, Any]]:
        """`insert_part` for this outbox (fewer than `COPY_FROM` rows)."""
        return insert_part(rows, self.schema)

    def wake_after_commit(self, conn: AsyncConnection) -> None:
        """For rows written in SQL of their own (the sweep): wake the relay after commit."""
        wake_after_commit(conn, self.wake)


@dataclass
class _Batch:
    """Claimed rows (deleted from the pending queue in a transaction still open), their
    acknowledgement futures; committed once Kafka acknowledged every one of them."""

    conn: AsyncConnection
    size: int  # rows
    messages: int
    full: bool  # as many rows as the claim asked for: more may be waiting
    acks: list["asyncio.Future[Any]"] = field(default_factory=list)

    async def commit(self) -> None:
        await asyncio.gather(*self.acks)
        await self.conn.commit()
        await self.conn.close()

    async def abandon(self) -> None:
        """Roll back: its rows are pending again and will be sent again (at least once)."""
        for ack in self.acks:
            ack.add_done_callback(_retrieved)  # its failure is ours already: no warning
        try:
            await self.conn.rollback()
        finally:
            await self.conn.close()


def _retrieved(ack: "asyncio.Future[Any]") -> None:
    if not ack.cancelled():
        ack.exception()


class OutboxRelay:
    """Publishes the outbox in id order at the producer's pace.

    Leadership: one relay per schema (a session advisory lock on a connection of its own).
    Pipeline: a batch is claimed by deleting its ids from `outbox_pending` in a transaction
    that stays open; its messages are queued on the idempotent producer at once and the next
    batch is claimed (`FOR UPDATE SKIP LOCKED` passes over the rows in flight) while Kafka
    acknowledges, up to `pipeline` batches. Each batch commits after all its acknowledgements,
    in claim order. A crash or a failed send rolls the open batches back, so their rows are
    sent again: at least once into Kafka, never lost, and each key's first copies in order
    (rows are claimed in id order and the producer keeps order per partition).
    """

    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, publisher: Publisher, *,
        batch_size: int = 5000, idle_poll_s: float = 0.05, pipeline: int = 4,
        batches_per_step: int = 50,
    ) -> None:
        self._engine = engine
        self.outbox = outbox
        self._table = outbox.table
        self._publisher = publisher
        self._batch_size = batch_size
        # Rows a claim asks for: `batch_size` messages' worth at the last claim's messages a
        # row, so a backlog of groups (the sweep's 16 a row) is not claimed 16 times as large.
        self._claim_rows = batch_size
        self._pipeline = max(pipeline, 1)
        self._batches_per_step = batches_per_step
        self._lock_id = zlib.crc32(f"outbox:{self._table.fullname}".encode())
        self.schema = self._table.schema or ""
        s = f'"{outbox.schema}"'
        # `= ANY(ARRAY(…))`: the DELETE goes through the primary key whatever the backlog (an
        # `IN (SELECT …)` was planned as a hash join over the whole queue). One prepared
        # statement whatever the batch size. Key and payload come back as the bytes Kafka
        # gets (no decode and encode per row; a group's array split into its envelopes'
        # bytes, `messages`).
        self._claim_sql = f"""
            WITH claimed AS (
              DELETE FROM {s}.outbox_pending WHERE id = ANY(ARRAY(
                SELECT id FROM {s}.outbox_pending ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))
              RETURNING id)
            SELECT o.id, o.topic, convert_to(o.key, 'UTF8'), convert_to(o.payload, 'UTF8')
              FROM {s}.outbox o JOIN claimed USING (id)"""
        self._prune_sql = f"""
            DELETE FROM {s}.outbox WHERE id = ANY(ARRAY(
              SELECT o.id FROM {s}.outbox o
               WHERE o.created_at < now() - make_interval(days => :days)
                 AND NOT EXISTS (SELECT 1 FROM {s}.outbox_pending p WHERE p.id = o.id)
               ORDER BY o.id LIMIT :chunk))"""
        self._backlog_sql = text(f"SELECT count(*) FROM {s}.outbox_pending")
        self.loop = PollLoop(f"outbox relay ({self.schema})", self._step, idle_s=idle_poll_s,
                             wake=outbox.wake)

    async def run(self, stop: asyncio.Event) -> None:
        await self.loop.run(stop)

    async def _step(self) -> bool:
        _, more = await self._lead_and_publish(self._batches_per_step)
        return more

    async def publish_once(self) -> int:
        """Publish one batch (leader or not at all); how many messages were published."""
        published, _ = await self._lead_and_publish(1)
        return published

    async def drain(self) -> int:
        """Publish until nothing is pending (benches, tools, tests); how many messages were
        published. 0 at once when another instance is the leader."""
        total = 0
        while True:
            published, more = await self._lead_and_publish(self._batches_per_step)
            total += published
            if not more:
                return total

    async def _lead_and_publish(self, max_batches: int) -> tuple[int, bool]:
        async with self._engine.connect() as lead:
            await lead.execution_options(isolation_level="AUTOCOMMIT")
            if not await lead.scalar(select(func.pg_try_advisory_lock(self._lock_id))):
                return 0, False  # another instance relays this outbox
            try:
                return await self._publish(lead, max_batches)
            finally:
                try:
                    await lead.execute(select(func.pg_advisory_unlock(self._lock_id)))
                except Exception:
                    await lead.invalidate()  # closed: the server drops the lock with it
                    raise

    async def _publish(self, lead: AsyncConnection, max_batches: int) -> tuple[int, bool]:
        """Up to `max_batches` batches, `pipeline` in flight; (published, more waiting)."""
        in_flight: deque[_Batch] = deque()
        published, claimed, more = 0, 0, True
        try:
            while True:
                if more and claimed < max_batches and len(in_flight) < self._pipeline:
                    await lead.execute(select(1))  # still the leader: its session is alive
                    batch = await self._claim()
                    claimed += 1
                    more = batch is not None and batch.full
                    if batch is not None:
                        in_flight.append(batch)
                    continue
                if not in_flight:
                    return published, more
                batch = in_flight[0]
                await batch.commit()  # failed: still in flight, rolled back below
                in_flight.popleft()
                published += batch.messages
                metrics.OUTBOX_PUBLISHED.labels(self.schema).inc(batch.messages)
        finally:
            for batch in in_flight:
                with contextlib.suppress(Exception):
                    await batch.abandon()

    async def _claim(self) -> _Batch | None:
        conn = await self._engine.connect()
        try:
            await conn.begin()
            # The driver's own fetch (no row objects per row); the statement before it opens
            # the transaction, which SQLAlchemy's asyncpg adapter does lazily.
            await conn.execute(select(1))
            raw = (await conn.get_raw_connection()).driver_connection
            limit = self._claim_rows
            rows = await raw.fetch(self._claim_sql, limit)  # type: ignore[union-attr]
            if not rows:
                await conn.rollback()
                await conn.close()
                return None
            rows.sort(key=itemgetter(0))  # id order: the order of the events
            sends = [(topic, message_key, value) for _, topic, key, payload in rows
                     for message_key, value in self._messages(key, payload)]
            batch = _Batch(conn, len(rows), len(sends), full=len(rows) == limit)
            self._claim_rows = max(1, min(self._batch_size,
                                          self._batch_size * len(rows) // len(sends)))
            batch.acks = await self._publisher.enqueue_many(sends)
            return batch
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.rollback()
            await conn.close()
            raise

    def _messages(self, key: bytes, payload: bytes) -> list[tuple[bytes, bytes]]:
        """The row's messages and their keys; a group that is not a JSON array of messages
        (or, of mixed keys, names none; no writer makes one: SQL by hand) goes out as it is,
        one message, which its consumers dead-letter with the reason, rather than stop the
        relay at that row for ever."""
        try:
            return keyed_messages(key, payload)
        except ValueError as exc:
            log.error("outbox relay (%s): a row's group of messages is not a JSON array "
                      "of envelopes (%s); published as one message", self.schema, exc)
            return [(key, payload)]

    async def prune(self, older_than_days: int, chunk: int = 10_000) -> int:
        """Delete published rows older than the retention, a chunk at a time (oldest first),
        each chunk in its own short transaction."""
        return await delete_in_chunks_sql(self._engine, self._prune_sql,
                                          {"days": older_than_days}, chunk)

    async def backlog(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(self._backlog_sql) or 0)


async def delete_in_chunks_sql(engine: AsyncEngine, sql: str, params: dict[str, Any],
                               chunk: int = 10_000) -> int:
    """`sql` (a DELETE with a `:chunk` limit) until it removes fewer than `chunk` rows, each
    in its own short transaction."""
    removed = 0
    while True:
        async with engine.begin() as conn:
            n = (await conn.execute(text(sql), {**params, "chunk": chunk})).rowcount
        removed += n
        if n < chunk:
            return removed
