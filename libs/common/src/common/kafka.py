"""aiokafka plumbing: an idempotent publisher, topic creation, and the exactly-once-in-effect
consumer loop (DB transaction with inbox → commit → Kafka offsets; bad messages → DLQ)."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import metrics
from common.db import is_event_error
from common.envelope import Contract, RawEnvelope, UnprocessableMessage, parse
from common.inbox import Inbox
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

    async def send(
        self, topic: str, key: bytes | None, value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)


async def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int) -> None:
    """Create the topics (and their dead-letter topics) this service touches, if missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = sorted({name for t in topics for name in (t, dead_letter_topic(t))} - existing)
        if not wanted:
            return
        response = await admin.create_topics(
            [NewTopic(name=name, num_partitions=partitions, replication_factor=1)
             for name in wanted])
        # aiokafka reports per-topic errors in the response instead of raising them.
        failed = [(topic, code, *rest) for topic, code, *rest in response.topic_errors
                  if code not in (0, TOPIC_ALREADY_EXISTS)]
        if failed:
            raise RuntimeError(f"could not create topics: {failed}")
    finally:
        await admin.close()


TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


EventHandler = Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]
# A whole batch (one partition, in offset order, duplicates removed) in one call, so a
# service can work set-wise: a few statements per batch instead of a few per event.
BatchHandler = Callable[[AsyncConnection, list[tuple[RawEnvelope, Contract]]], Awaitable[None]]


@dataclass
class _Parsed:
    record: ConsumerRecord[bytes, bytes]
    envelope: RawEnvelope
    payload: Contract


@dataclass
class _Batch:
    parsed: list[_Parsed] = field(default_factory=list)
    dead: list[tuple[ConsumerRecord[bytes, bytes], str]] = field(default_factory=list)


class ConsumerRunner:
    """Consumes topics in a group and applies each event exactly once in effect.

    Per partition batch: parse (unparseable → DLQ), then ONE database transaction with one
    inbox statement for the batch and each new event's handler. Offsets are committed only
    after the transaction commits. An error that belongs to an event (`is_event_error`:
    unprocessable, invalid, refused by a data or integrity constraint) redoes the batch with a
    savepoint per event, so only the events that fail go to the DLQ with the reason and the
    partition goes on. Any other error (database or Kafka away, a full disk, a bug) rolls the
    batch back and retries it with backoff: nothing is skipped, the partition waits.
    """

    def __init__(
        self, *, name: str, engine: AsyncEngine, bootstrap: str, group_id: str,
        topics: list[str], contracts: dict[str, type[Contract]], handler: EventHandler,
        inbox: Inbox,
        publisher: Publisher, batch_size: int = 500, poll_ms: int = 200,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.name = name
        self._engine = engine
        self._topics = topics
        self._contracts = contracts
        self._handler = handler
        self._batch_handler = batch_handler
        self._inbox = inbox
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_ms = poll_ms
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._consumer: AIOKafkaConsumer

    async def run(self, stop: asyncio.Event) -> None:
        self._consumer = AIOKafkaConsumer(
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
        )
        try:
            await self._consumer.start()
            while not stop.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=self._poll_ms, max_records=self._batch_size
                )
                for tp, records in batches.items():
                    await self._process_with_retry(tp, records, stop)
        finally:
            await self._consumer.stop()

    async def _process_with_retry(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], stop: asyncio.Event
    ) -> None:
        backoff = 0.2
        while True:
            try:
                await self._process(tp, records)
                await self._consumer.commit({tp: records[-1].offset + 1})
                self._record_lag(tp, records[-1].offset)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: batch on %s failed; retrying in %.1fs", self.name, tp, backoff)
                if tp not in self._consumer.assignment():
                    return  # revoked: the new owner starts again from the last commit
                if stop.is_set():
                    # Not committed: the next owner of the partition starts from the last commit.
                    self._consumer.seek(tp, records[0].offset)
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _process(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        batch = self._parse(records)
        rejected: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        try:
            applied = await self._apply_fast(batch.parsed)
        except Exception as exc:
            if not is_event_error(exc):
                raise  # the whole batch is retried, with backoff, until it goes through
            # Someone in the batch can't be applied: again, one savepoint per event, so only
            # that event is set aside.
            applied, rejected = await self._apply_carefully(batch.parsed)
        for record, reason in batch.dead + rejected:
            await self._dead_letter(record, reason)
        outcomes = {"applied": applied,
                    "duplicate": len(batch.parsed) - applied - len(rejected)}
        self._count(tp.topic, outcomes, len(batch.dead) + len(rejected))

    async def _apply_fast(self, items: list[_Parsed]) -> int:
        """One transaction, one inbox statement for the whole batch, no savepoints; returns
        how many events were new (the rest were redeliveries)."""
        if not items:
            return 0
        async with self._engine.begin() as conn:
            fresh = await self._inbox.claim_many(
                conn, self.name, [(i.envelope.event_id, i.record.topic) for i in items])
            todo = []
            for item in items:
                if item.envelope.event_id in fresh:  # else applied before: a redelivery
                    fresh.discard(item.envelope.event_id)  # the same event twice in a batch
                    todo.append(item)
            if self._batch_handler is not None and todo:
                await self._batch_handler(conn, [(i.envelope, i.payload) for i in todo])
            else:
                for item in todo:
                    with _correlated(item.envelope):
                        await self._handler(conn, item.envelope, item.payload)
        return len(todo)

    async def _apply_carefully(
        self, items: list[_Parsed]
    ) -> tuple[int, list[tuple[ConsumerRecord[bytes, bytes], str]]]:
        applied = 0
        rejected: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        async with self._engine.begin() as conn:
            for item in items:
                outcome = await self._apply_one(conn, item)
                if outcome is None:
                    applied += 1
                elif outcome:
                    rejected.append((item.record, outcome))
        return applied, rejected

    def _parse(self, records: list[ConsumerRecord[bytes, bytes]]) -> _Batch:
        batch = _Batch()
        for record in records:
            try:
                envelope, payload = parse(record.value, self._contracts)
            except UnprocessableMessage as exc:
                batch.dead.append((record, str(exc)))
                continue
            batch.parsed.append(_Parsed(record, envelope, payload))
        return batch

    async def _apply_one(self, conn: AsyncConnection, item: _Parsed) -> str | None:
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
                if not is_event_error(exc):
                    raise
                log.warning("%s: rejected event %s: %r", self.name, item.envelope.event_id, exc)
                return f"{type(exc).__name__}: {exc}"[:1000]

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        headers = [
            ("dlq-reason", reason.encode()[:2000]),
            ("dlq-source-topic", record.topic.encode()),
            ("dlq-source-partition", str(record.partition).encode()),
            ("dlq-source-offset", str(record.offset).encode()),
            ("dlq-consumer", self.name.encode()),
        ]
        value = record.value if record.value is not None else b""
        await self._publisher.send(dead_letter_topic(record.topic), record.key, value, headers)

    def _count(self, topic: str, outcomes: dict[str, int], dead: int) -> None:
        for outcome, n in (*outcomes.items(), ("dead_lettered", dead)):
            if n:
                metrics.EVENTS_CONSUMED.labels(self.name, topic, outcome).inc(n)

    def _record_lag(self, tp: TopicPartition, offset: int) -> None:
        end = self._consumer.highwater(tp)
        if end is not None:
            metrics.CONSUMER_LAG.labels(self.name, tp.topic).set(max(end - offset - 1, 0))






def _correlated(envelope: RawEnvelope) -> contextlib.AbstractContextManager[None]:
    return correlated(envelope.correlation_id or str(envelope.event_id))
