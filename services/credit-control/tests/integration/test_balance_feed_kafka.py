"""The balance feed's progress from the real broker (credit/adapters/balance_feed.py): on a
topic and consumer group of the test's own, the feed is behind until the group commits past
the ends read when the wait began, and caught up then, even though more was published since;
a broker that cannot be reached is never taken for caught up."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from common.kafka import create_missing_topics
from common.testing.stack import Stack
from credit_control.credit.adapters.balance_feed import KafkaBalanceFeed
from credit_control.credit.service_layer.feed_wait import FeedBehind, wait_until_applied

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def topic(stack: Stack, uid: str) -> str:
    name = f"feed-test-{uid}"
    await create_missing_topics(stack.kafka_bootstrap, [
        NewTopic(name=name, num_partitions=2, replication_factor=1)])
    return name


@pytest.fixture
async def feed(stack: Stack, topic: str, uid: str) -> AsyncIterator[KafkaBalanceFeed]:
    made = KafkaBalanceFeed(stack.kafka_bootstrap, f"feed-test-group-{uid}", [topic])
    yield made
    await made.close()


async def _produce(stack: Stack, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        for partition, n in counts.items():
            for _ in range(n):
                await producer.send_and_wait(topic, b"{}", partition=partition)
    finally:
        await producer.stop()


async def _commit(stack: Stack, group: str, topic: str, offsets: dict[int, int]) -> None:
    """What credit-control's consumer does once a batch's transaction committed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = {p: TopicPartition(topic, p) for p in offsets}
        consumer.assign(list(tps.values()))
        await consumer.commit({tps[p]: offset for p, offset in offsets.items()})
    finally:
        await consumer.stop()


async def test_behind_until_the_group_commits_past_the_ends_read_at_the_start(
    stack: Stack, topic: str, feed: KafkaBalanceFeed,
) -> None:
    await _produce(stack, topic, {0: 3, 1: 2})
    assert await feed.ends() == {(topic, 0): 3, (topic, 1): 2}
    # The group never committed: everything still in the log is left to apply.
    assert await feed.applied([(topic, 0), (topic, 1)]) == {(topic, 0): 0, (topic, 1): 0}
    with pytest.raises(FeedBehind) as refused:
        await wait_until_applied(feed, 0.5, "S-kafka-1")
    assert refused.value.body()["behind"] == 5

    await _commit(stack, feed.group, topic, {0: 3})
    assert await feed.applied([(topic, 0), (topic, 1)]) == {(topic, 0): 3, (topic, 1): 0}
    with pytest.raises(FeedBehind) as refused:
        await wait_until_applied(feed, 0.5, "S-kafka-2")
    assert refused.value.body()["lag"] == [
        {"topic": topic, "partition": 1, "end": 2, "applied": 0, "behind": 2}]

    # A wait that begins now needs partition 1 applied up to 2, not what comes after.
    waiting = asyncio.create_task(wait_until_applied(feed, 30, "S-kafka-3"))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await _produce(stack, topic, {1: 4})
    await asyncio.sleep(0.5)
    assert not waiting.done()
    started = time.monotonic()
    await _commit(stack, feed.group, topic, {1: 2})
    await asyncio.wait_for(waiting, 10)
    assert time.monotonic() - started < 5
    assert await feed.ends() == {(topic, 0): 3, (topic, 1): 6}  # behind again, for a later sweep


async def test_a_broker_that_cannot_be_reached_refuses_the_sweep(topic: str, uid: str) -> None:
    away = KafkaBalanceFeed("127.0.0.1:9", f"feed-test-group-{uid}", [topic])
    started = time.monotonic()
    try:
        with pytest.raises(FeedBehind) as refused:
            await wait_until_applied(away, 1.0, "S-kafka-away")
    finally:
        await away.close()
    assert time.monotonic() - started < 5
    body = refused.value.body()
    assert body["behind"] is None and body["lag"] == []
    assert "Kafka did not answer" in body["message"]
