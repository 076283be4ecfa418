"""aiokafka plumbing: an idempotent publisher, topic creation, and the exactly-once-in-effect
consumer loop (DB transaction with inbox → commit → Kafka offsets; bad messages → DLQ)."""

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import metrics
from common.db import is_event_error, is_infrastructure_error
from common.envelope import Contract, Envelope, EventDecoder, UnprocessableMessage
from common.inbox import AlreadyClaimed, Inbox, new_items
from common.logging import correlated

log = logging.getLogger(__name__)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


class Publisher:
    """An idempotent producer (acks=all): retries never duplicate or reorder within a partition."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._started: AIOKafkaProducer | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("publisher not started")
        return self._started

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the producer is made here, not in __init__.
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._started = producer

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    async def send_many(self, messages: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Send (topic, key, value) in order and wait until every one is acknowledged."""
        futures = [
            await self._producer.send(topic, value=value, key=key) for topic, key, value in messages
        ]
        await asyncio.gather(*futures)

    async def enqueue_many(
        self, messages: Iterable[tuple[str, bytes, bytes]]
    ) -> list["asyncio.Future[Any]"]:
        """Queue (topic, key, value) in order without waiting for Kafka: returns futures, done
        when every message is acknowledged. Messages are put into record batches per
        partition here (the partition the producer's default partitioner would choose for the
        key), so each costs an append instead of a `send` with its own future; batches of a
        partition are queued in order, and the idempotent producer keeps that order."""
        producer = self._producer
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], Any] = {}
        acks: list[asyncio.Future[Any]] = []
        # A key's hash once per call: murmur2 in Python is ~2 µs a key, and a batch's events
        # share keys (a chain command's three results, an account's decision and notice).
        hashes: dict[bytes, int] = {}
        for topic, key, value in messages:
            ids = partitions.get(topic)
            if ids is None:
                ids = partitions[topic] = sorted(await producer.partitions_for(topic))
            h = hashes.get(key)
            if h is None:
                h = hashes[key] = murmur2(key) & 0x7FFFFFFF
            partition = ids[h % len(ids)]
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise MessageSizeTooLargeError(f"a message of {len(value)} bytes")
        for (topic, partition), batch in open_batches.items():
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks

    async def send(
        self, topic: str, key: bytes | None, value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I") for n in range(64)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's and aiokafka's default partitioner: the same
    partition for a key whoever produces it), written to run ~1.5x faster in CPython:
    the 4-byte words unpacked at once, fewer masks."""
    length = len(data)
    h = 0x9747B28C ^ length
    n4 = length >> 2
    words = _WORDS[n4].unpack_from(data) if n4 < 64 else struct.unpack_from(f"<{n4}I", data)
    for k in words:
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        base = length & ~3
        if extra == 3:
            h ^= data[base + 2] << 16
        if extra >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def topic_replication_factor() -> int:
    """Copies of each topic this service creates: 1 on the single-broker stacks, 3 on a
    production-shaped cluster (`STACK=ha`, docs/scaling.md), where the brokers'
    min.insync.replicas=2 and the producers' acks=all make an acknowledged write survive the
    loss of a broker. From the environment, so every service and tool agrees without a
    per-service setting."""
    return int(os.environ.get("CREDITCTL_TOPIC_REPLICATION_FACTOR", "1"))


async def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int) -> None:
    """Create the topics (and their dead-letter topics) this service touches, if missing."""
    copies = topic_replication_factor()
    await create_missing_topics(bootstrap, [
        NewTopic(name=name, num_partitions=partitions, replication_factor=copies)
        for name in sorted({name for t in topics for name in (t, dead_letter_topic(t))})])


async def create_missing_topics(bootstrap: str, wanted: Iterable[NewTopic]) -> None:
    """Create those of `wanted` that do not exist yet (one created meanwhile is fine)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return
        response = await admin.create_topics(missing)
        # aiokafka reports per-topic errors in the response instead of raising them.
        failed = [(topic, code, *rest) for topic, code, *rest in response.topic_errors
                  if code not in (0, TOPIC_ALREADY_EXISTS)]
        if failed:
            raise RuntimeError(f"could not create topics: {failed}")
    finally:
        await admin.close()


TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


# Handlers get each event decoded once by the runner's EventDecoder: the envelope and its
# typed payload (`envelope.payload`, handed beside it for convenience).
EventHandler = Callable[[AsyncConnection, Envelope[Any], Contract], Awaitable[None]]
# A whole batch (the records of one poll, possibly of several partitions: each partition's in
# offset order, duplicates removed) in one call, so a service can work set-wise: a few
# statements per batch instead of a few per event.
BatchHandler = Callable[[AsyncConnection, list[tuple[Envelope[Any], Contract]]], Awaitable[None]]


@dataclass
class _Parsed:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope[Any]

    @property
    def payload(self) -> Contract:
        payload: Contract = self.envelope.payload
        return payload


@dataclass
class _Batch:
    parsed: list[_Parsed] = field(default_factory=list)
    dead: list[tuple[ConsumerRecord[bytes, bytes], str]] = field(default_factory=list)


@dataclass
class _PartitionState:
    """What the runner remembers of one assigned partition."""

    committed: int  # the next offset to apply: everything before it is committed
    advanced_at: float = field(default_factory=time.monotonic)  # last commit, or caught up
    retry_at: float = 0.0  # paused after a failure until then (monotonic); 0: not paused
    backoff: float = 0.0
    attempts: dict[int, int] = field(default_factory=dict)  # offset → failed attempts


# Room for the record batch, the record's own framing and the header names.
_RECORD_OVERHEAD = 512
_KEY_KEEP = 1024  # a dead letter keeps at most this much of an oversized key


def dead_letter_record(
    record: ConsumerRecord[bytes, bytes], reason: str, consumer: str, max_bytes: int,
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the dead letter of `record`. Headers carry the reason and where
    the original was (topic, partition, offset); a record that would not fit in `max_bytes`
    (the broker's limit) keeps the head of its body and says so in `dlq-truncated` (the
    original size), so the dead letter is always publishable."""
    headers = [
        ("dlq-reason", reason.encode()[:2000]),
        ("dlq-source-topic", record.topic.encode()),
        ("dlq-source-partition", str(record.partition).encode()),
        ("dlq-source-offset", str(record.offset).encode()),
        ("dlq-consumer", consumer.encode()),
    ]
    key, value = record.key, record.value if record.value is not None else b""
    size = _record_size(key, value, headers)
    if size <= max_bytes:
        return key, value, headers
    if key is not None and len(key) > _KEY_KEEP:
        headers.append(("dlq-key-truncated", str(len(key)).encode()))
        key = key[:_KEY_KEEP]
    headers.append(("dlq-truncated", str(len(value)).encode()))
    room = max_bytes - _record_size(key, b"", headers)
    return key, value[:max(room, 0)], headers


def _record_size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return (_RECORD_OVERHEAD + len(key or b"") + len(value)
            + sum(len(k) + len(v) for k, v in headers))


Polled = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


_BUSY_POLL_MS = 20  # a poll's timeout while batches are in flight


class _Lanes:
    """Up to `width` batches in flight at once, each on partitions of its own.

    A consumer's batch spends about half its time waiting for PostgreSQL; with a second
    batch in flight, the process decodes and decides one batch while the other's statements
    run (what two processes in a group already do, in one). A partition is in at most one
    batch at a time, so its events are still applied, and its offsets committed, in offset
    order. The poll asks only for the partitions not in flight; their records already
    fetched stay buffered (pausing them would throw the buffer away)."""

    def __init__(self, width: int) -> None:
        self.width = max(1, width)
        self._batches: dict[asyncio.Task[None], frozenset[TopicPartition]] = {}
        self._poll: asyncio.Task[Polled] | None = None

    def _busy(self) -> frozenset[TopicPartition]:
        return frozenset().union(*self._batches.values())

    async def next(self, consumer: AIOKafkaConsumer, poll_ms: int, max_records: int) -> Polled:
        """The records of the next poll, of partitions not in flight. Waits for that poll or
        for a batch to finish (its exception, a bug, is raised here), whichever comes first:
        empty if a batch finished first, or the poll found nothing."""
        if len(self._batches) < self.width and self._poll is None:
            free = consumer.assignment() - self._busy()
            if not self._batches or free:
                # Nothing in flight: every partition (before the first assignment too). With
                # batches in flight the poll is short, so that a partition a batch gives back
                # is asked for again soon: a poll is never cancelled (aiokafka counts polls in
                # flight, for its max-poll-interval check, and a cancelled one is never
                # counted out).
                asked = free if self._batches else set()
                timeout = min(poll_ms, _BUSY_POLL_MS) if self._batches else poll_ms
                self._poll = asyncio.ensure_future(consumer.getmany(
                    *asked, timeout_ms=timeout, max_records=max_records))
        waiting: set[asyncio.Future[Any]] = set(self._batches)
        if self._poll is not None:
            waiting.add(self._poll)
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in [task for task in done if task in self._batches]:
            del self._batches[task]
            task.result()
        if self._poll is not None and self._poll.done():
            poll, self._poll = self._poll, None
            return poll.result()
        return {}

    def split(self, polled: Polled) -> list[Polled]:
        """The poll's partitions over the free lanes, the busiest partitions first, each to
        the lane with the fewest records so far."""
        lanes = min(self.width - len(self._batches), len(polled))
        if lanes <= 1:
            return [polled] if polled else []
        groups: list[Polled] = [{} for _ in range(lanes)]
        sizes = [0] * lanes
        for tp, records in sorted(polled.items(), key=lambda item: -len(item[1])):
            lane = sizes.index(min(sizes))
            groups[lane][tp] = records
            sizes[lane] += len(records)
        return groups

    def start(self, group: Polled, work: Awaitable[None]) -> None:
        self._batches[asyncio.ensure_future(work)] = frozenset(group)

    async def close(self, grace_s: float = 10.0) -> None:
        """On stop: the batches in flight may finish (and commit) for a while; the rest is
        cancelled and rolled back, and the next owner starts from the last commit."""
        if self._poll is not None:  # returns within its timeout; not cancelled (see next)
            await asyncio.wait([self._poll])
            with contextlib.suppress(Exception):
                self._poll.result()
            self._poll = None
        if self._batches:
            _, pending = await asyncio.wait(set(self._batches), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._batches, return_exceptions=True)
            self._batches.clear()


class ConsumerRunner:
    """Consumes topics in a group and applies each event exactly once in effect.

    Per poll: decode each record once with the consumer's `EventDecoder` (unparseable or out
    of the contract's bounds → DLQ), then ONE database transaction with one inbox statement
    for the batch and each new event's handler; a batch spans every partition the poll
    returned. Offsets (each partition's) are committed only after the transaction commits.
    When a batch of several partitions fails, it is redone at once partition by partition,
    as follows. When a partition's batch fails:
    - an infrastructure error (`is_infrastructure_error`: the database or Kafka away, a lost
      connection, a deadlock or serialization failure) rolls the batch back and retries it
      without limit;
    - any other error redoes the batch with a savepoint per event. An event refused for its
      own fault (`is_event_error`) goes to the DLQ at once with the reason; an event failing
      with anything else (a bug meeting an odd event) is tried `max_attempts` times, then
      dead-lettered with the exception. The other events are applied.
    A failing partition is paused and sought back while it waits for its retry, so the other
    partitions go on. A partition behind its end that has not advanced for `stall_after_s`
    is reported by `stalled_partitions` (/readyz, a gauge, an alert).
    """

    def __init__(
        self, *, name: str, engine: AsyncEngine, bootstrap: str, group_id: str,
        topics: list[str], decoder: EventDecoder, handler: EventHandler,
        inbox: Inbox,
        publisher: Publisher, batch_size: int = 500, poll_ms: int = 200,
        batch_handler: BatchHandler | None = None, max_attempts: int = 5,
        stall_after_s: float = 120.0, dlq_max_bytes: int = 1_000_000, lanes: int = 1,
        fetch_wait_ms: int = 50,
    ) -> None:
        self.name = name
        self._lanes = lanes
        self._fetch_wait_ms = fetch_wait_ms
        self._engine = engine
        self._topics = topics
        self._decoder = decoder
        self._handler = handler
        self._batch_handler = batch_handler
        self._inbox = inbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_ms = poll_ms
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._max_attempts = max_attempts
        self._stall_after_s = stall_after_s
        self._dlq_max_bytes = dlq_max_bytes
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[TopicPartition, _PartitionState] = {}
        self._lag_series: set[TopicPartition] = set()  # partitions with a lag gauge series

    @property
    def group_id(self) -> str:
        return self._group_id

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_size,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            max_poll_interval_ms=300_000,
            # aiokafka keeps one fetch in flight per broker, for the partitions with nothing
            # buffered when it was sent. A fetch of partitions caught up waits this long on
            # the broker (500 ms by default), and a partition drained meanwhile (its batch
            # taken by a lane) waits behind it: a backlog's tail ran at half the rate, in
            # 250-500 ms gaps with no batch in flight (docs/benchmarks.md, twenty-ninth
            # session). A short wait costs an idle consumer a fetch every `fetch_wait_ms`:
            # ~1.2 % of a core at 50 ms here (0.3 % at 500, 2.8 % at 20).
            fetch_max_wait_ms=self._fetch_wait_ms,
        )
        self._partitions = {}
        lanes = _Lanes(self._lanes)
        try:
            await consumer.start()
            while not stop.is_set():
                self._forget_revoked(consumer)
                self._resume_due(consumer)
                polled = await lanes.next(consumer, self._poll_ms, self._batch_size)
                if stop.is_set():
                    break  # not committed: the next owner starts from the last commit
                for group in lanes.split(polled):
                    lanes.start(group, self._process_group(consumer, group))
        finally:
            try:
                await lanes.close()
            finally:
                await consumer.stop()
                self._partitions = {}  # none is ours any more (lag and stalls report nothing)

    async def _process_group(
        self, consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        if len(batches) == 1:
            [(tp, records)] = batches.items()
            await self._process_partition(consumer, tp, records)
        else:
            await self._process_partitions(consumer, batches)

    def stalled_partitions(self) -> list[TopicPartition]:
        """Partitions behind their end that have not advanced for `stall_after_s`; also sets
        the stalled-partitions gauge. Called by /readyz and a watcher every few seconds."""
        now = time.monotonic()
        stalled = []
        assigned = self._consumer.assignment() if self._consumer is not None else set()
        for tp, state in list(self._partitions.items()):
            if tp not in assigned or self._consumer is None:
                continue  # revoked: forgotten at the next poll
            end = self._consumer.highwater(tp)
            if end is None or end <= state.committed:
                state.advanced_at = now  # caught up: not behind, so not stalled
            elif now - state.advanced_at > self._stall_after_s:
                stalled.append(tp)
        metrics.CONSUMER_STALLED.labels(self.name).set(len(stalled))
        return stalled

    def _state(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]],
    ) -> _PartitionState:
        state = self._partitions.get(tp)
        if state is None:
            state = self._partitions[tp] = _PartitionState(committed=records[0].offset)
        return state

    async def _process_partitions(
        self, consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Several partitions' records in one transaction, then each partition's offset.
        A failure goes back to one partition at a time, so the partition at fault is held or
        has its event set aside while the others go on."""
        decoded = {tp: self._parse(records) for tp, records in batches.items()}
        try:
            applied = await self._apply_fast([p for b in decoded.values() for p in b.parsed])
        except asyncio.CancelledError:
            raise
        except Exception:
            # Whatever failed (an event, or the database for one partition's rows), each
            # partition on its own now: the one at fault is held or has its event set aside,
            # exactly as below, while the others go on. (The database away fails them all.)
            for tp, records in batches.items():
                await self._process_partition(consumer, tp, records, decoded[tp])
            return
        try:
            for batch in decoded.values():
                for record, reason in batch.dead:
                    await self._dead_letter(record, reason)
            await self._commit(consumer, {tp: records[-1].offset + 1
                                          for tp, records in batches.items()})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            for tp, records in batches.items():
                self._hold(consumer, tp, records[0].offset, self._state(tp, records), exc)
            return
        for tp, records in batches.items():
            self._count(tp.topic, decoded[tp], applied, [])
            self._advanced(consumer, tp, records, self._state(tp, records))

    async def _process_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]], decoded: _Batch | None = None,
    ) -> None:
        state = self._state(tp, records)
        try:
            await self._process(tp, records, state, decoded)
            await self._commit(consumer, {tp: records[-1].offset + 1})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._hold(consumer, tp, records[0].offset, state, exc)
            return
        self._advanced(consumer, tp, records, state)

    async def _commit(self, consumer: AIOKafkaConsumer,
                      offsets: dict[TopicPartition, int]) -> None:
        """Commits the offsets of the partitions still assigned. One revoked while its batch
        ran (another process joined) is left to its new owner, which starts again from the
        last commit, and the inbox skips what this batch applied: committing it would fail
        the whole commit and send every partition of the batch round again."""
        assigned = consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if len(mine) < len(offsets):
            log.info("%s: %s revoked during the batch; left to the new owner", self.name,
                     sorted(f"{tp.topic}:{tp.partition}" for tp in offsets.keys() - mine.keys()))
        if mine:
            await consumer.commit(mine)

    def _advanced(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]], state: _PartitionState,
    ) -> None:
        state.committed = records[-1].offset + 1
        state.advanced_at = time.monotonic()
        state.backoff = 0.0
        state.attempts = {o: n for o, n in state.attempts.items() if o >= state.committed}
        self._record_lag(consumer, tp, records[-1].offset)

    def _hold(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, first: int,
        state: _PartitionState, exc: Exception,
    ) -> None:
        """Rewind the failed partition and pause it until its backoff is over; the others
        keep being served meanwhile."""
        kind = "infrastructure" if is_infrastructure_error(exc) else "other"
        metrics.CONSUMER_BATCH_FAILURES.labels(self.name, tp.topic, kind).inc()
        state.backoff = min(max(state.backoff * 2, 0.2), 10.0)
        log.error("%s: batch on %s from offset %d failed (%s: %s); retrying in %.1fs",
                  self.name, tp, first, type(exc).__name__, exc, state.backoff,
                  exc_info=kind == "other")
        if tp not in consumer.assignment():
            self._partitions.pop(tp, None)
            return  # revoked: the new owner starts again from the last commit
        # Ours (again: with lanes, it may have been revoked and given back while its batch
        # ran, and forgotten meanwhile): remembered, so that its pause ends (_resume_due).
        self._partitions[tp] = state
        consumer.seek(tp, first)
        consumer.pause(tp)
        state.retry_at = time.monotonic() + state.backoff

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        assigned = consumer.assignment()
        for tp, state in list(self._partitions.items()):
            if state.retry_at and now >= state.retry_at:
                state.retry_at = 0.0
                if tp in assigned:
                    consumer.resume(tp)

    def _forget_revoked(self, consumer: AIOKafkaConsumer) -> None:
        """A partition taken away (rebalance) starts afresh when it comes back: its offset
        from the group's commit, no pause, no attempts."""
        assigned = consumer.assignment()
        for tp in [tp for tp in self._partitions if tp not in assigned]:
            del self._partitions[tp]

    async def _process(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]],
        state: _PartitionState, decoded: _Batch | None = None,
    ) -> None:
        batch = decoded if decoded is not None else self._parse(records)
        rejected: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        try:
            applied = await self._apply_fast(batch.parsed)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise  # the whole batch is retried, with backoff, until it goes through
            # Someone in the batch can't be applied: again, one savepoint per event, so only
            # that event is set aside.
            applied, rejected = await self._apply_carefully(batch.parsed, state)
        for record, reason in batch.dead + rejected:
            await self._dead_letter(record, reason)
        self._count(tp.topic, batch, applied, rejected)

    async def _apply_fast(self, items: list[_Parsed]) -> set[int] | None:
        """One transaction, one inbox statement for the whole batch, no savepoints; returns
        the ids (`id()`) of the items that were new (the rest were redeliveries), or None
        when all of them were (the usual case: nothing to look up per event). The batch is
        first claimed as all new (`Inbox.claim_new`, the cheaper statement); a redelivery
        in it voids that transaction, and the batch is made again claiming event by event
        which are new (`Inbox.claim_many`)."""
        if not items:
            return None
        events = [(i.envelope.event_id, i.record.topic) for i in items]
        try:
            return await self._apply_batch(items, events, all_new=True)
        except AlreadyClaimed:
            return await self._apply_batch(items, events, all_new=False)

    async def _apply_batch(
        self, items: list[_Parsed], events: list[tuple[UUID, str]], *, all_new: bool,
    ) -> set[int] | None:
        """`_apply_fast`'s transaction, claiming the batch as all new or event by event."""
        async with self._engine.begin() as conn:
            fresh = None
            if all_new:
                await self._inbox.claim_new(conn, self.name, events)
            else:
                fresh = await self._inbox.claim_many(conn, self.name, events)
            todo = new_items(items, fresh)
            if self._batch_handler is not None and todo:
                await self._batch_handler(conn, [(i.envelope, i.payload) for i in todo])
            else:
                for item in todo:
                    with _correlated(item.envelope):
                        await self._handler(conn, item.envelope, item.payload)
        return None if fresh is None else {id(item) for item in todo}

    async def _apply_carefully(
        self, items: list[_Parsed], state: _PartitionState,
    ) -> tuple[set[int], list[tuple[ConsumerRecord[bytes, bytes], str]]]:
        applied: set[int] = set()
        rejected: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        async with self._engine.begin() as conn:
            for item in items:
                outcome = await self._apply_one(conn, item, state)
                if outcome is None:
                    applied.add(id(item))
                elif outcome:
                    rejected.append((item.record, outcome))
        return applied, rejected

    def _parse(self, records: list[ConsumerRecord[bytes, bytes]]) -> _Batch:
        batch = _Batch()
        for record in records:
            try:
                envelope = self._decoder.decode(record.value)
            except UnprocessableMessage as exc:
                batch.dead.append((record, str(exc)))
                continue
            batch.parsed.append(_Parsed(record, envelope))
        return batch

    async def _apply_one(
        self, conn: AsyncConnection, item: _Parsed, state: _PartitionState,
    ) -> str | None:
        """None: applied; "": a duplicate; otherwise the reason it was rejected."""
        with _correlated(item.envelope):
            try:
                async with conn.begin_nested():
                    if not await self._inbox.claim(
                        conn, self.name, item.envelope.event_id, item.record.topic
                    ):
                        return ""
                    await self._handler(conn, item.envelope, item.payload)
                return None
            except Exception as exc:
                return self._rejection(item, state, exc)

    def _rejection(self, item: _Parsed, state: _PartitionState, exc: Exception) -> str:
        """The reason an event that failed is dead-lettered, or raise to retry the batch."""
        reason = f"{type(exc).__name__}: {exc}"
        if is_event_error(exc):
            log.warning("%s: rejected event %s: %r", self.name, item.envelope.event_id, exc)
            return reason[:1000]
        if is_infrastructure_error(exc):
            raise exc  # nothing is wrong with the event: the batch waits for the database
        offset = item.record.offset
        attempts = state.attempts[offset] = state.attempts.get(offset, 0) + 1
        if attempts < self._max_attempts:
            raise exc  # rolled back, tried again after a backoff (the bug may be transient)
        log.error("%s: event %s failed %d times, dead-lettered: %r", self.name,
                  item.envelope.event_id, attempts, exc)
        return f"failed {attempts} times: {reason}"[:1000]

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        key, value, headers = dead_letter_record(record, reason, self.name, self._dlq_max_bytes)
        if any(name == "dlq-truncated" for name, _ in headers):
            metrics.DEAD_LETTERS_TRUNCATED.labels(self.name, record.topic).inc()
        topic = dead_letter_topic(record.topic)
        try:
            await self._publisher.send(topic, key, value, headers)
        except MessageSizeTooLargeError:
            # The broker's limit is below the setting: the reason and the source are what
            # matter, the body can be read from the source topic while it is retained.
            log.error("%s: dead letter of %s/%d@%d too large even truncated; sent without body",
                      self.name, record.topic, record.partition, record.offset)
            kept = [(k, v) for k, v in headers if k != "dlq-truncated"]
            await self._publisher.send(
                topic, key[:_KEY_KEEP] if key else key, b"",
                [*kept, ("dlq-truncated", str(len(record.value or b"")).encode())])

    def _count(
        self, topic: str, batch: _Batch, applied: set[int] | None,
        rejected: list[tuple[ConsumerRecord[bytes, bytes], str]],
    ) -> None:
        """Count one partition's outcomes (`applied`: ids of the items applied, maybe of a
        larger batch than this one; None: every parsed item was)."""
        new = (len(batch.parsed) if applied is None
               else sum(1 for item in batch.parsed if id(item) in applied))
        outcomes = {"applied": new, "duplicate": len(batch.parsed) - new - len(rejected),
                    "dead_lettered": len(batch.dead) + len(rejected)}
        for outcome, n in outcomes.items():
            if n:
                metrics.EVENTS_CONSUMED.labels(self.name, topic, outcome).inc(n)

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        if tp not in consumer.assignment():
            return  # revoked during its batch: highwater() is only known for our partitions
        end = consumer.highwater(tp)
        if end is not None:
            self._set_lag(tp, max(end - offset - 1, 0))

    def _set_lag(self, tp: TopicPartition, lag: int) -> None:
        metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)
        self._lag_series.add(tp)

    async def refresh_lag(self) -> dict[TopicPartition, int]:
        """Each assigned partition's lag from the broker's end offsets (ListOffsets), not the
        last fetch's highwater: a paused or stuck partition fetches nothing, so its highwater,
        and a lag computed from it, would freeze while events keep arriving. Partitions no
        longer ours lose their series, or a new owner's figure would sit beside a stale one.
        Called by the runtime's stall watcher every few seconds."""
        consumer = self._consumer
        known = ({tp: s.committed for tp, s in self._partitions.items()
                  if tp in consumer.assignment()} if consumer is not None else {})
        ends = await consumer.end_offsets(list(known)) if consumer and known else {}
        lags = {tp: max(end - known[tp], 0) for tp, end in ends.items()}
        for tp in self._lag_series - lags.keys():
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.name, tp.topic, str(tp.partition))
        self._lag_series.clear()
        for tp, lag in lags.items():
            self._set_lag(tp, lag)
        return lags


def _correlated(envelope: Envelope[Any]) -> contextlib.AbstractContextManager[None]:
    return correlated(envelope.correlation_id or str(envelope.event_id))
