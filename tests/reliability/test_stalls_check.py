"""The invariant checker's "0 stalled partitions": a running consumer group that has not
committed the log end is flagged (with the partition and how far behind), one that has is not,
and a group with no member is only noted."""

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from common.kafka import ensure_topics
from common.testing.stack import Stack
from tests.reliability.invariants.stalls import check_stalls

pytestmark = [pytest.mark.integration]


async def test_a_group_behind_the_log_end_is_flagged_until_it_commits(stack: Stack) -> None:
    topic, group = f"test.stalls.{uuid.uuid4().hex[:8]}", f"stall-probe-{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"m{n}".encode(), key=b"k")
    finally:
        await producer.stop()
    groups = {group: (topic,)}
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        read = 0
        while read < 3:  # a member of the group that reads but never commits: stuck
            read += sum(len(rs) for rs in (await consumer.getmany(timeout_ms=1000)).values())
        stuck = await check_stalls(stack.kafka_bootstrap, settle_s=2, groups=groups)
        assert (stuck.expected, stuck.found, stuck.lost) == (1, 0, 1)
        assert not stuck.ok
        assert stuck.examples == [f"lost: {group} {topic}[0]: 3 behind"]

        await consumer.commit({TopicPartition(topic, 0): 3})
        caught_up = await check_stalls(stack.kafka_bootstrap, settle_s=2, groups=groups)
        assert caught_up.ok and (caught_up.expected, caught_up.found) == (1, 1)
    finally:
        await consumer.stop()
    gone = await check_stalls(stack.kafka_bootstrap, settle_s=2, groups=groups)
    assert gone.ok and gone.notes["groups not running"] == 1
