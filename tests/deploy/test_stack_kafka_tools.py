"""`deploy/local/stack.sh topics|consume|groups` (issue 20, point 5) against the test stack's
real broker: Kafka's own console tools (the kafka-tools jar, resolved from Maven on first
use) list and describe a topic, print its messages with partition, offset, key and headers,
and show a consumer group's committed offsets and lag."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from common.kafka import ensure_topics
from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def stack_sh(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_PORT": stack.kafka_bootstrap.rsplit(":", 1)[1]}
    env.setdefault("STACK", "test")
    return subprocess.run(["bash", "deploy/local/stack.sh", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
async def topic_with_a_group(stack: Stack) -> tuple[str, str]:
    """A 2-partition topic with 3 messages on partition 0, and a group that committed 1."""
    topic, group = f"test.tools.{uuid.uuid4().hex[:8]}", f"g-tools-{uuid.uuid4().hex[:6]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, value=f'{{"n": {n}}}'.encode(),
                                         key=f"key-{n}".encode(), partition=0,
                                         headers=[("origin", b"tools-test")])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 1})
    finally:
        await consumer.stop()
    return topic, group


def test_topics_lists_and_describes(stack: Stack, topic_with_a_group: tuple[str, str]) -> None:
    topic, _ = topic_with_a_group
    listed = stack_sh(stack, "topics")
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert topic in names and f"{topic}.dlq" in names
    assert "__consumer_offsets" not in names
    described = stack_sh(stack, "topics", topic)
    assert described.returncode == 0, described.stderr
    assert "PartitionCount: 2" in described.stdout
    assert described.stdout.count(f"Topic: {topic}\tPartition:") == 2


def test_consume_prints_messages_with_partition_offset_key_and_headers(
    stack: Stack, topic_with_a_group: tuple[str, str],
) -> None:
    topic, _ = topic_with_a_group
    result = stack_sh(stack, "consume", topic, "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    for n, line in enumerate(lines):
        assert f"Partition:0\tOffset:{n}\t" in line
        assert "origin:tools-test" in line and f"key-{n}" in line and f'{{"n": {n}}}' in line
    again = stack_sh(stack, "consume", topic)  # never committed: from the beginning again
    assert len(again.stdout.strip().splitlines()) == 3
    assert "ERROR" not in again.stderr
    missing = stack_sh(stack, "consume", "no.such.topic")
    assert missing.returncode != 0 and "no topic 'no.such.topic'" in missing.stderr


def test_groups_lists_and_shows_the_lag(
    stack: Stack, topic_with_a_group: tuple[str, str],
) -> None:
    topic, group = topic_with_a_group
    listed = stack_sh(stack, "groups")
    assert listed.returncode == 0, listed.stderr
    assert group in listed.stdout.split()
    described = stack_sh(stack, "groups", group)
    assert described.returncode == 0, described.stderr
    [row] = [line.split() for line in described.stdout.splitlines() if topic in line]
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    assert row[:6] == [group, topic, "0", "1", "3", "2"]
