"""ConsumerRunner against real Kafka and PostgreSQL (issue 14): a bug meeting one event costs
that event a few attempts and then a dead letter, never the partition; an infrastructure error
holds only its own partition, retried without limit, while the others go on; a partition held
too long is reported stalled (what /readyz and the gauge show)."""

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import metrics
from common.envelope import Contract, EventDecoder, RawEnvelope
from common.inbox import Inbox
from common.kafka import ConsumerRunner, Publisher, dead_letter_topic
from common.testing.polling import eventually
from common.testing.stack import Stack

from .test_common_plumbing import Pinged, Tables, ping, read_all

pytestmark = [pytest.mark.integration]

def _runner(stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher, topic: str,
            handler: object, **knobs: float) -> ConsumerRunner:
    return ConsumerRunner(
        name=f"stalls-{uuid.uuid4().hex[:6]}", engine=db, bootstrap=stack.kafka_bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}", topics=[topic],
        decoder=EventDecoder(Pinged), handler=handler,  # type: ignore[arg-type]
        inbox=Inbox(tables.inbox), publisher=publisher, batch_size=50, poll_ms=50,
        **knobs)  # type: ignore[arg-type]


async def _effects(db: AsyncEngine, tables: Tables) -> list[int]:
    async with db.connect() as conn:
        return sorted(int(n) for n in (await conn.execute(select(tables.effects.c.n))).scalars())


def _recorder(tables: Tables, fail: "dict[int, BaseException]"):  # type: ignore[no-untyped-def]
    async def handle(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        if payload.n in fail:
            raise fail[payload.n]
        await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                         n=str(payload.n)))
    return handle


async def test_a_bug_meeting_one_event_dead_letters_it_after_the_attempts(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
    runner_parts: tuple[str, dict[int, str]],
) -> None:
    topic, keys = runner_parts
    key = keys[0]
    await publisher.send_many([(topic, key.encode(), ping(n, key)) for n in range(1, 6)])
    calls = {"n": 0}

    class Unlucky(ValueError):
        def __init__(self) -> None:
            calls["n"] += 1
            super().__init__("month must be in 1..12")

    async def handler(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        if payload.n == 3:
            raise Unlucky()
        if payload.n >= 0:
            await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                             n=str(payload.n)))

    runner = _runner(stack, db, tables, publisher, topic, handler, max_attempts=3)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        applied = await eventually(lambda: _effects(db, tables), lambda e: len(e) >= 4,
                                   timeout=60, what="the events around the bad one")
    finally:
        stop.set()
        await task
    assert applied == [1, 2, 4, 5]  # the rest of the partition went on, in effect once each
    assert calls["n"] >= 3  # tried (fast path and per event) until the attempts ran out
    dead = [m for m in await read_all(stack, dead_letter_topic(topic))]
    reasons = {dict(m.headers)["dlq-reason"].decode() for m in dead}
    assert reasons == {"failed 3 times: Unlucky: month must be in 1..12"}
    assert runner.stalled_partitions() == []


async def test_an_infrastructure_error_holds_only_its_partition_and_is_reported_stalled(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
    runner_parts: tuple[str, dict[int, str]],
) -> None:
    topic, keys = runner_parts
    stuck_key, other_keys = keys[0], [keys[1], keys[2]]
    fail: dict[int, BaseException] = {100: ConnectionRefusedError(111, "Connect call failed")}
    runner = _runner(stack, db, tables, publisher, topic, _recorder(tables, fail),
                     max_attempts=2, stall_after_s=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await publisher.send_many([(topic, stuck_key.encode(), ping(100, stuck_key)),
                                   (topic, stuck_key.encode(), ping(101, stuck_key))])
        await publisher.send_many([(topic, k.encode(), ping(200 + i, k))
                                   for i, k in enumerate(other_keys)])
        # The other partitions are applied while the first one keeps failing.
        await eventually(lambda: _effects(db, tables), lambda e: {200, 201} <= set(e),
                         timeout=60, what="the other partitions applied")
        stuck = TopicPartition(topic, 0)
        await eventually(_async(runner.stalled_partitions), lambda s: s == [stuck],
                         timeout=30, interval=0.2, what="the held partition reported stalled")
        assert metrics.CONSUMER_STALLED.labels(runner.name)._value.get() == 1
        assert 100 not in await _effects(db, tables) and 101 not in await _effects(db, tables)
        fail.clear()  # the database is back
        await eventually(lambda: _effects(db, tables), lambda e: {100, 101} <= set(e),
                         timeout=60, what="the held partition applied once it can be")
        await eventually(_async(runner.stalled_partitions), lambda s: s == [], timeout=30,
                         what="no partition stalled any more")
    finally:
        stop.set()
        await task
    # Retried without limit, never dead-lettered, although max_attempts is 2.
    assert await read_all(stack, dead_letter_topic(topic)) == []
    assert (await _effects(db, tables)).count(100) == 1


def _async(fn):  # type: ignore[no-untyped-def]
    async def call():  # type: ignore[no-untyped-def]
        return fn()
    return call


def _lag_series(runner: ConsumerRunner) -> dict[tuple[str, str], float]:
    """The runner's creditctl_consumer_lag samples, by (topic, partition)."""
    return {(s.labels["topic"], s.labels["partition"]): s.value
            for family in metrics.CONSUMER_LAG.collect() for s in family.samples
            if s.labels["consumer"] == runner.name}


async def test_a_held_partitions_lag_grows_per_partition_from_the_brokers_end_offsets(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
    runner_parts: tuple[str, dict[int, str]],
) -> None:
    """Issue 20: the lag gauge is one series per partition, and a held (paused, fetching
    nothing) partition's lag keeps growing as events arrive instead of freezing."""
    topic, keys = runner_parts
    stuck_key, other_key = keys[0], keys[1]
    fail: dict[int, BaseException] = {100: ConnectionRefusedError(111, "Connect call failed")}
    runner = _runner(stack, db, tables, publisher, topic, _recorder(tables, fail),
                     stall_after_s=60.0)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    stuck, other = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        await publisher.send_many([(topic, stuck_key.encode(), ping(100, stuck_key)),
                                   (topic, other_key.encode(), ping(200, other_key))])
        await eventually(lambda: _effects(db, tables), lambda e: 200 in e, timeout=60,
                         what="the other partition applied")
        # Behind by the failing event at least (and the fixture's pings batched with it).
        lags = await eventually(runner.refresh_lag, lambda got: got.get(stuck, 0) >= 1,
                                timeout=30, interval=0.2, what="the held partition behind")
        held = lags[stuck]
        assert lags[other] == 0
        # More events for the held partition: fetched by nobody, yet counted.
        await publisher.send_many([(topic, stuck_key.encode(), ping(100 + n, stuck_key))
                                   for n in range(1, 4)])
        await eventually(runner.refresh_lag, lambda got: got.get(stuck) == held + 3,
                         timeout=30, interval=0.2, what="the held partition's lag growing")
        series = _lag_series(runner)
        assert series[(topic, "0")] == held + 3 and series[(topic, "1")] == 0
        fail.clear()
        await eventually(runner.refresh_lag, lambda got: got.get(stuck) == 0, timeout=60,
                         interval=0.2, what="the held partition caught up")
    finally:
        stop.set()
        await task
    # Stopped: no partition is ours any more, so no series of this runner is left behind.
    assert await runner.refresh_lag() == {}
    assert _lag_series(runner) == {}
