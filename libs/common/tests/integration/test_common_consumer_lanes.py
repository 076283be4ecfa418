"""ConsumerRunner with two batches in flight (`lanes=2`) against real Kafka and PostgreSQL:
the batches really overlap, each partition's events are still applied once each and in
offset order, a partition held by a failure does not hold the other lane, and a stop while
batches are in flight loses nothing (the next consumer of the group applies the rest)."""

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.envelope import Contract, RawEnvelope
from common.kafka import ConsumerRunner, Publisher
from common.testing.polling import eventually
from common.testing.stack import Stack

from .test_common_consumer_stalls import _runner
from .test_common_plumbing import Pinged, Tables, ping

pytestmark = [pytest.mark.integration]

PER_KEY = 60


class _Probe:
    """A handler that records what it applied, in order, and how many batches overlapped."""

    def __init__(self, tables: Tables, fail: dict[int, BaseException] | None = None) -> None:
        self.tables, self.fail = tables, fail if fail is not None else {}
        self.running = 0
        self.most_at_once = 0
        self.order: list[int] = []  # the events handled, in the order they were handled

    async def handle(self, conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        if payload.n < 0:
            return  # the fixture's pings that found a key per partition
        if payload.n in self.fail:
            raise self.fail[payload.n]
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.order.append(payload.n)
        try:
            # A database round trip of some length: the other lane runs meanwhile.
            await conn.execute(insert(self.tables.effects).values(
                event_id=str(env.event_id), n=str(payload.n)))
            await asyncio.sleep(0.002)
        finally:
            self.running -= 1


async def _applied(db: AsyncEngine, tables: Tables) -> list[tuple[int, str]]:
    """(n, event id) of every effect written (committed)."""
    e = tables.effects
    async with db.connect() as conn:
        rows = (await conn.execute(select(e.c.n, e.c.event_id))).all()
    return [(int(n), event_id) for n, event_id in rows]


def _lane_runner(stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
                 topic: str, probe: _Probe, group: str | None = None,
                 **knobs: float) -> ConsumerRunner:
    runner = _runner(stack, db, tables, publisher, topic, probe.handle, lanes=2, **knobs)
    if group is not None:
        runner._group_id = group
    return runner


async def test_two_lanes_overlap_and_keep_each_partition_in_order_once(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
    runner_parts: tuple[str, dict[int, str]],
) -> None:
    topic, keys = runner_parts
    # Key k's events are n = k*1000 + i: in offset order within its partition.
    messages = [(topic, key.encode(), ping(p * 1000 + i, key))
                for i in range(PER_KEY) for p, key in keys.items()]
    await publisher.send_many(messages)
    probe = _Probe(tables)
    runner = _lane_runner(stack, db, tables, publisher, topic, probe)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _applied(db, tables),
                         lambda a: len(a) >= PER_KEY * len(keys), timeout=60,
                         what="every event applied")
    finally:
        stop.set()
        await task
    applied = await _applied(db, tables)
    ns = [n for n, _ in applied]
    assert sorted(ns) == sorted(p * 1000 + i for i in range(PER_KEY) for p in keys)  # once
    for p in keys:  # handled in offset order within each partition (no retry here)
        own = [n for n in probe.order if n // 1000 == p]
        assert own == sorted(own) and len(own) == PER_KEY
    assert probe.most_at_once >= 2  # two batches really were in flight at once


async def test_a_held_partition_does_not_hold_the_other_lane(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
    runner_parts: tuple[str, dict[int, str]],
) -> None:
    topic, keys = runner_parts
    stuck, others = keys[0], [keys[1], keys[2]]
    fail: dict[int, BaseException] = {100: ConnectionRefusedError(111, "Connect call failed")}
    probe = _Probe(tables, fail)
    runner = _lane_runner(stack, db, tables, publisher, topic, probe)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await publisher.send_many([(topic, stuck.encode(), ping(100, stuck)),
                                   (topic, stuck.encode(), ping(101, stuck))])
        await publisher.send_many([(topic, k.encode(), ping(200 + i, k))
                                   for i, k in enumerate(others)])
        await eventually(lambda: _applied(db, tables),
                         lambda a: {200, 201} <= {n for n, _ in a}, timeout=60,
                         what="the other partitions applied while one is held")
        assert not {100, 101} & {n for n, _ in await _applied(db, tables)}
        fail.clear()
        await eventually(lambda: _applied(db, tables),
                         lambda a: {100, 101} <= {n for n, _ in a}, timeout=60,
                         what="the held partition applied once it can be")
    finally:
        stop.set()
        await task
    ns = [n for n, _ in await _applied(db, tables)]
    assert sorted(ns) == [100, 101, 200, 201]
    handled = [n for n in probe.order if n in (100, 101)]
    assert handled[-2:] == [100, 101]  # the held partition's events, in order, once through


async def test_a_stop_with_batches_in_flight_loses_and_doubles_nothing(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
    runner_parts: tuple[str, dict[int, str]],
) -> None:
    topic, keys = runner_parts
    messages = [(topic, key.encode(), ping(p * 1000 + i, key))
                for i in range(PER_KEY) for p, key in keys.items()]
    await publisher.send_many(messages)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = _Probe(tables)
    runner = _lane_runner(stack, db, tables, publisher, topic, first, group=group)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await eventually(lambda: _applied(db, tables), lambda a: len(a) >= 10, timeout=60,
                     what="the first batches applied")
    stop.set()  # mid-stream: batches in flight finish or roll back, offsets follow commits
    await task
    second = _Probe(tables)
    runner = _lane_runner(stack, db, tables, publisher, topic, second, group=group)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _applied(db, tables),
                         lambda a: len(a) >= PER_KEY * len(keys), timeout=60,
                         what="the rest applied by the next consumer of the group")
        await asyncio.sleep(0.5)  # a redelivery, if any, would show up now
    finally:
        stop.set()
        await task
    ns = [n for n, _ in await _applied(db, tables)]
    assert sorted(ns) == sorted(p * 1000 + i for i in range(PER_KEY) for p in keys)
    assert TopicPartition(topic, 0) not in runner.stalled_partitions()
