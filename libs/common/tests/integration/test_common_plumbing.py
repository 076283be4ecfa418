"""The plumbing against real Kafka and PostgreSQL: the consumer applies each event once,
sets aside only the event that can't be applied, and the relay publishes the outbox in order."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, MetaData, Table, Text, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.envelope import (
    Contract,
    EventDecoder,
    RawEnvelope,
    UnprocessableMessage,
    to_bytes,
    wrap,
)
from common.inbox import Inbox
from common.kafka import ConsumerRunner, Publisher, dead_letter_topic, ensure_topics
from common.outbox import Outbox, OutboxRelay
from common.plumbing import inbox_table, outbox_table
from common.testing.polling import eventually
from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]


class Pinged(Contract):
    event_type: ClassVar[str] = "test.pinged"
    topic: ClassVar[str] = "test.pings.v1"
    n: int


class Tables:
    def __init__(self, schema: str) -> None:
        self.metadata = MetaData(schema=schema)
        self.inbox = inbox_table(self.metadata)
        self.outbox = outbox_table(self.metadata)
        self.effects = Table("effects", self.metadata, Column("event_id", Text),
                             Column("n", Text))


async def consume_until(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher, topic: str,
    handler: Any, effects: int, name: str | None = None, inbox: Inbox | None = None,
) -> list[str]:
    """Run a ConsumerRunner on `topic` until `effects` rows exist; returns their n values.
    `name`: the consumer's (its inbox's key); a new group each run, from the earliest."""
    runner = ConsumerRunner(
        name=name or f"plumbing-{uuid.uuid4().hex[:6]}", engine=db, bootstrap=stack.kafka_bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}", topics=[topic],
        decoder=EventDecoder(Pinged), handler=handler, inbox=inbox or Inbox(tables.inbox),
        publisher=publisher, batch_size=100, poll_ms=50)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    async def rows() -> list[str]:
        async with db.connect() as conn:
            return list((await conn.execute(select(tables.effects.c.n))).scalars())

    try:
        return await eventually(rows, lambda e: len(e) >= effects, timeout=60,
                                what=f"{effects} effects")
    finally:
        stop.set()
        await task


def ping(n: int, key: str) -> bytes:
    return to_bytes(wrap(Pinged(n=n), key=key, source="test", occurred_at=datetime.now(UTC)))


async def test_each_event_once_and_only_the_bad_one_dead_lettered(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher
) -> None:
    topic = f"test.pings.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=1)
    good = [ping(n, "k") for n in range(10)]
    # 3 is a duplicate delivery of event 2; 5 fails in its handler; one poison message.
    messages = [*good[:3], good[2], good[3], ping(666, "k"), b"not json", *good[4:]]
    await publisher.send_many([(topic, b"k", m) for m in messages])

    async def handler(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        if payload.n == 666:
            raise UnprocessableMessage("the handler cannot apply 666")
        await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                         n=str(payload.n)))

    applied = await consume_until(stack, db, tables, publisher, topic, handler, effects=10)
    assert sorted(applied, key=int) == [str(n) for n in range(10)]  # each once, none lost
    dead = await read_all(stack, dead_letter_topic(topic))
    reasons = sorted(dict(m.headers)["dlq-reason"].decode() for m in dead)
    assert len({dict(m.headers)["dlq-source-offset"] for m in dead}) == 2, reasons
    assert any("UnprocessableMessage: the handler cannot apply 666" in r for r in reasons)
    assert any("not an envelope" in r for r in reasons)


class CountingInbox(Inbox):
    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self.calls = {"claim_new": 0, "claim_many": 0, "claim": 0}

    async def claim_new(self, *args: Any) -> None:
        self.calls["claim_new"] += 1
        await super().claim_new(*args)

    async def claim_many(self, *args: Any) -> list[int] | None:
        self.calls["claim_many"] += 1
        return await super().claim_many(*args)

    async def claim(self, *args: Any) -> bool:
        self.calls["claim"] += 1
        return await super().claim(*args)


async def test_a_consumer_read_again_from_the_start_applies_only_what_is_new(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher
) -> None:
    """Offsets lost (a new group, a reset): every batch is a redelivery, in part or whole.
    The runner's claim of a batch as all new fails on the first event seen before; the
    batch is made again claiming event by event, so only the new ones are applied."""
    topic = f"test.pings.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=1)
    name = f"plumbing-{uuid.uuid4().hex[:6]}"

    async def handler(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                         n=str(payload.n)))

    await publisher.send_many([(topic, b"k", ping(n, "k")) for n in range(5)])
    await consume_until(stack, db, tables, publisher, topic, handler, effects=5, name=name)
    await publisher.send_many([(topic, b"k", ping(n, "k")) for n in range(5, 8)])
    inbox = CountingInbox(tables.inbox)
    applied = await consume_until(stack, db, tables, publisher, topic, handler, effects=8,
                                  name=name, inbox=inbox)
    assert sorted(applied, key=int) == [str(n) for n in range(8)]  # each once
    # The batch made again with the batch claim, not event by event under savepoints (the
    # path for a batch whose handler failed).
    assert inbox.calls["claim_many"] >= 1 and inbox.calls["claim"] == 0, inbox.calls
    await asyncio.sleep(0.5)  # a batch applied twice would show up now
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(tables.effects)) == 8


async def test_an_error_that_is_not_the_events_is_retried_not_dead_lettered(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher
) -> None:
    """A full disk, a failover or a bug must not cost events: the partition waits."""
    topic = f"test.pings.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=1)
    await publisher.send_many([(topic, b"k", ping(n, "k")) for n in range(5)])
    failures = {"left": 3}

    async def flaky(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        if payload.n == 2 and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("the database is read-only after a failover")
        await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                         n=str(payload.n)))

    applied = await consume_until(stack, db, tables, publisher, topic, flaky, effects=5)
    assert sorted(applied) == ["0", "1", "2", "3", "4"]
    assert failures["left"] == 0
    assert await read_all(stack, dead_letter_topic(topic)) == []


async def test_relay_publishes_the_outbox_in_order_and_marks_it(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher
) -> None:
    topic = f"test.out.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=3)
    outbox = Outbox(tables.outbox)
    async with db.begin() as conn:
        await outbox.add_many(conn, [
            (topic, wrap(Pinged(n=n), key=f"acct-{n % 2}", source="test",
                         occurred_at=datetime.now(UTC))) for n in range(20)])
    relay = OutboxRelay(db, outbox, publisher, batch_size=7)
    while await relay.publish_once():
        pass
    assert await relay.backlog() == 0
    got = await read_all(stack, topic)
    per_key: dict[bytes, list[int]] = {}
    for m in got:
        per_key.setdefault(m.key, []).append(int(orjson_payload(m.value)["n"]))
    assert per_key == {b"acct-0": list(range(0, 20, 2)), b"acct-1": list(range(1, 20, 2))}


def orjson_payload(value: bytes) -> dict[str, Any]:
    import orjson

    return dict(orjson.loads(value)["payload"])


async def read_all(stack: Stack, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap,
                                group_id=f"r-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[Any] = []
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return sorted(found, key=lambda m: (m.partition, m.offset))
            found += [m for ms in batch.values() for m in ms]
    finally:
        await consumer.stop()


async def test_housekeeping_prunes_only_what_is_old_enough(
    db: AsyncEngine, tables: Tables, publisher: Publisher, stack: Stack
) -> None:
    outbox = Outbox(tables.outbox)
    inbox = Inbox(tables.inbox)
    topic = f"test.prune.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=1)
    async with db.begin() as conn:
        await outbox.add_many(conn, [(topic, wrap(Pinged(n=n), key="k", source="test",
                                                  occurred_at=datetime.now(UTC)))
                                     for n in range(4)])
        for _ in range(4):
            await inbox.claim(conn, "c", uuid.uuid4(), topic)
    relay = OutboxRelay(db, outbox, publisher)
    await relay.publish_once()
    async with db.begin() as conn:  # age half of each: two written / applied 30 days ago
        s = tables.metadata.schema
        await conn.execute(text(
            f'UPDATE "{s}".outbox SET created_at = now() - interval \'30 days\' '
            f'WHERE id IN (SELECT id FROM "{s}".outbox ORDER BY id LIMIT 2)'))
        await conn.execute(text(
            f'UPDATE "{s}".inbox SET applied_at = now() - interval \'30 days\' '
            f'WHERE event_id IN (SELECT event_id FROM "{s}".inbox LIMIT 2)'))
    assert await relay.prune(older_than_days=7) == 2
    assert await inbox.prune(db, older_than_days=14) == 2
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(tables.outbox)) == 2
        assert await conn.scalar(select(func.count()).select_from(tables.inbox)) == 2


async def test_a_batch_spans_partitions_and_commits_each_partitions_offset(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher
) -> None:
    """One poll's records of several partitions go to the batch handler together (one
    transaction), each event decoded once and typed; then every partition's offset is
    committed, after the database commit, and a poison message in one of them is still
    dead-lettered with its reason."""
    topic = f"test.pings.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=3)
    keys = [f"key-{n}" for n in range(30)]
    await publisher.send_many([(topic, k.encode(), ping(n, k)) for n, k in enumerate(keys)])
    await publisher.send_many([(topic, b"key-0", b'{"type": "test.pinged"}')])
    batches: list[list[tuple[RawEnvelope, Contract]]] = []

    async def batch_handler(conn: AsyncConnection,
                            items: list[tuple[RawEnvelope, Contract]]) -> None:
        batches.append(items)
        for env, payload in items:
            assert isinstance(payload, Pinged) and env.payload is payload
            await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                             n=str(payload.n)))

    async def one(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        await batch_handler(conn, [(env, payload)])

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(
        name=f"plumbing-{uuid.uuid4().hex[:6]}", engine=db, bootstrap=stack.kafka_bootstrap,
        group_id=group, topics=[topic], decoder=EventDecoder(Pinged), handler=one,
        batch_handler=batch_handler, inbox=Inbox(tables.inbox), publisher=publisher,
        batch_size=500, poll_ms=500)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    async def rows() -> list[str]:
        async with db.connect() as conn:
            return list((await conn.execute(select(tables.effects.c.n))).scalars())

    try:
        applied = await eventually(rows, lambda e: len(e) >= 30, timeout=60, what="30 effects")
        dead = await eventually(lambda: read_all(stack, dead_letter_topic(topic)),
                                lambda d: len(d) == 1, timeout=30, what="the dead letter")
    finally:
        stop.set()
        await task
    assert sorted(applied, key=int) == [str(n) for n in range(30)]
    assert dict(dead[0].headers)["dlq-reason"].decode().startswith("not an envelope")
    # The records were all there before the consumer started (one broker: one fetch for
    # every partition), so a poll returned several partitions, handed over as one batch.
    partition_of = {m.key.decode(): m.partition for m in await read_all(stack, topic)}
    assert len(set(partition_of.values())) == 3
    assert max(len({partition_of[e.key] for e, _ in b}) for b in batches) > 1
    committed = await _committed(stack, group, topic)
    ends = await _ends(stack, topic)
    assert committed == ends  # every partition's offset committed, the poison one's included


async def _committed(stack: Stack, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def _ends(stack: Stack, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                        or await _partitions(consumer, topic))]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def test_a_partition_revoked_during_its_batch_is_left_to_its_new_owner(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher
) -> None:
    """A second process joins the group while the first is inside a batch of several
    partitions: the first commits the offsets of the partitions it still has and leaves the
    revoked ones to their new owner (no failed batch, no round of retries of the others), and
    every event is applied exactly once between the two."""
    from common import metrics

    topic = f"test.pings.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=4)
    await publisher.send_many([(topic, f"k{n}".encode(), ping(n, f"k{n}")) for n in range(40)])
    inside, let_go = asyncio.Event(), asyncio.Event()

    def handler_of(slow: bool) -> Any:
        async def handle(conn: AsyncConnection,
                         items: list[tuple[RawEnvelope, Contract]]) -> None:
            if slow and not let_go.is_set():
                inside.set()
                await let_go.wait()  # the first batch stays open while the group rebalances
            for env, payload in items:
                assert isinstance(payload, Pinged)
                await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                                 n=str(payload.n)))
        return handle

    group = f"g-{uuid.uuid4().hex[:8]}"

    def runner(slow: bool) -> ConsumerRunner:
        handle = handler_of(slow)

        async def one(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
            await handle(conn, [(env, payload)])

        return ConsumerRunner(
            # One name for both, as a service's processes have (the inbox's consumer key).
            name=group, engine=db, bootstrap=stack.kafka_bootstrap, group_id=group,
            topics=[topic], decoder=EventDecoder(Pinged), handler=one, batch_handler=handle,
            inbox=Inbox(tables.inbox), publisher=publisher, batch_size=500, poll_ms=200)

    first, second = runner(slow=True), runner(slow=False)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(first.run(stop))]
    try:
        await asyncio.wait_for(inside.wait(), 60)
        tasks.append(asyncio.create_task(second.run(stop)))
        assert first._consumer is not None
        held = first._consumer.assignment()
        await eventually(lambda: _assigned(first), lambda now: now < held, timeout=60,
                         what="the first process losing partitions to the second")
        let_go.set()

        async def rows() -> list[str]:
            async with db.connect() as conn:
                return list((await conn.execute(select(tables.effects.c.n))).scalars())

        applied = await eventually(rows, lambda e: len(e) >= 40, timeout=60, what="40 effects")
        await asyncio.sleep(1)  # a double application would show up by now
        applied = await rows()
    finally:
        let_go.set()
        stop.set()
        await asyncio.gather(*tasks)
    assert sorted(applied, key=int) == [str(n) for n in range(40)]  # each exactly once
    failures = sum(metrics.CONSUMER_BATCH_FAILURES.labels(group, topic, kind)._value.get()
                   for kind in ("infrastructure", "other"))
    assert failures == 0  # the commit did not fail over the revoked partitions


async def _assigned(runner: ConsumerRunner) -> set[Any]:
    return set(runner._consumer.assignment()) if runner._consumer is not None else set()
