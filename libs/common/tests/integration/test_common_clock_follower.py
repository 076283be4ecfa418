"""The simulation clock's follower against a real broker: at start-up it catches up with the
clock topic (compacted, one partition, made if missing), then a published move reaches a
running follower and moves its clock (docs/simulation-clock.md)."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from common.clock import BUSINESS_TZ, FixedClock, SimulatedClock
from common.contracts.clock import CLOCK_KEY, CLOCK_TOPIC, SimulatedClockMoved
from common.envelope import to_bytes, wrap
from common.kafka import Publisher
from common.simulation import ClockFollower
from common.testing.polling import eventually
from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]

WALL = datetime(2026, 11, 3, 9, 0, tzinfo=BUSINESS_TZ)


async def test_a_follower_catches_up_then_follows_a_published_move(
    stack: Stack, publisher: Publisher,
) -> None:
    clock = SimulatedClock(FixedClock(WALL))
    follower = ClockFollower(stack.kafka_bootstrap, clock, "test")
    await follower.catch_up()  # whatever earlier runs left on the topic: the largest offset
    assert await _compacted(stack.kafka_bootstrap)
    stop = asyncio.Event()
    running = asyncio.create_task(follower.run(stop))
    try:
        # A minute past what the topic holds: no other follower on this broker jumps far.
        offset = clock.offset + timedelta(minutes=1)
        move = SimulatedClockMoved(
            move_id=f"it-{uuid.uuid4().hex[:8]}", seq=follower.seq + 1,
            offset_s=offset.total_seconds(), previous_offset_s=clock.offset.total_seconds(),
            simulated_at=WALL + offset, wall_at=WALL, moved_by="zhang.wei", reason="test")
        await publisher.send(CLOCK_TOPIC, CLOCK_KEY.encode(), to_bytes(wrap(
            move, key=CLOCK_KEY, source="test", occurred_at=datetime.now(UTC))))
        await eventually(lambda: _now(clock), lambda at: at == WALL + offset, timeout=20,
                         what="the follower applied the move")
    finally:
        stop.set()
        await running


async def _now(clock: SimulatedClock) -> datetime:
    return clock.now()


async def _compacted(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, CLOCK_TOPIC)])
        entries = {name: value for _, _, _, _, entries in
                   (r.resources[0] for r in described) for name, value, *_ in entries}
        partitions = await admin.describe_topics([CLOCK_TOPIC])
        return entries.get("cleanup.policy") == "compact" and len(
            partitions[0]["partitions"]) == 1
    finally:
        await admin.close()
