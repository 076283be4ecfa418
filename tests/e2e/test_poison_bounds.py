"""Issue 14, defects 3 and 4, against the four services as processes: each valid-shaped poison
value (month 13, int64 overflows, 4 KB ids, a NUL) and a message just under the broker's size
limit, on every consumed topic, is dead-lettered by every consumer of that topic with its
reason, while the next good event on the same partition and on the others is applied; and
afterwards no consumer group is left behind the log end."""

import json
import time
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.kafka import dead_letter_topic
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack
from tests.reliability.bounded_poison import (
    CONSUMERS,
    NEAR_LIMIT,
    POISON,
    bounded_poison,
    envelope,
    good,
)
from tests.reliability.invariants.stalls import check_stalls

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@dataclass
class Sent:
    topic: str
    partition: int
    offset: int
    expect: str  # a word the dead letter's reason names


async def test_every_poison_value_is_dead_lettered_and_nothing_stalls(
    services: ServiceProcesses, stack: Stack, db: AsyncEngine, uid: str,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap,
                                max_request_size=2 * 1024 * 1024)
    await producer.start()
    started = time.monotonic()
    poison: list[Sent] = []
    good_ids: dict[str, list[tuple[str, int]]] = {}  # topic → (event id, partition)
    try:
        for topic in POISON:
            key = f"K{uid}"
            for word, message in bounded_poison(topic, key, uid):
                meta = await producer.send_and_wait(topic, message, key=key.encode())
                poison.append(Sent(topic, meta.partition, meta.offset, word))
            good_ids[topic] = await _send_good(producer, topic, uid, key, meta.partition)
    finally:
        await producer.stop()

    for topic, sent in good_ids.items():
        assert len({p for _, p in sent}) > 1, "good events on the poison's partition and others"
        for service, schema in CONSUMERS[topic].items():
            ids = [i for i, _ in sent]
            await eventually(lambda s=schema, c=service, i=ids: _applied(db, s, c, i),
                             lambda n, i=ids: n == len(i), timeout=120,
                             what=f"{service} applied the good events after the poison on {topic}")

    # The recovery figure docs/reliability.md quotes: first poison sent → last good applied.
    print(f"poison to last good event applied: {time.monotonic() - started:.1f} s")
    dead = await _dead_letters({s.topic for s in poison}, stack)
    for sent in poison:
        for service in CONSUMERS[sent.topic]:
            found = dead.get((service, sent.topic, sent.partition, sent.offset))
            assert found is not None, f"{service} did not dead-letter {sent}"
            reason = found["dlq-reason"].decode()
            assert sent.expect in reason, (sent, reason)
            if sent.expect == "not an envelope":
                assert found["dlq-truncated"] == str(len(NEAR_LIMIT)).encode()
                assert found["dlq-source-topic"] == sent.topic.encode()

    stalls = await check_stalls(stack.kafka_bootstrap, settle_s=60)
    assert stalls.ok and stalls.expected > 0, stalls


async def _send_good(producer: AIOKafkaProducer, topic: str, uid: str, key: str,
                     poisoned: int) -> list[tuple[str, int]]:
    """The next good event on the poison's partition, then good events until two other
    partitions have one too."""
    sent: list[tuple[str, int]] = []
    keys = [key, *(f"K{uid}-{n}" for n in range(50))]
    for k in keys:
        body = envelope(good(topic, k, uid), k)
        meta = await producer.send_and_wait(topic, body, key=k.encode())
        sent.append((json.loads(body)["event_id"], meta.partition))
        if len({p for _, p in sent} - {poisoned}) >= 2:
            break
    return sent


async def _applied(db: AsyncEngine, schema: str, consumer: str, ids: list[str]) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            f"SELECT count(*) FROM {schema}.inbox WHERE consumer = :c "
            "AND event_id = ANY(CAST(:ids AS uuid[]))"), {"c": consumer, "ids": ids}) or 0)


async def _dead_letters(
    topics: set[str], stack: Stack,
) -> dict[tuple[str, str, int, int], dict[str, bytes]]:
    """Every dead letter of `topics` by (consumer, source topic, partition, offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap,
                                enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(dead_letter_topic(t), p) for t in sorted(topics)
               for p in consumer.partitions_for_topic(dead_letter_topic(t)) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[tuple[str, str, int, int], dict[str, bytes]] = {}
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    _index(found, r)
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        return found
    finally:
        await consumer.stop()


def _index(found: dict[tuple[str, str, int, int], dict[str, bytes]],
           record: ConsumerRecord[bytes, bytes]) -> None:
    h = dict(record.headers)
    if {"dlq-consumer", "dlq-source-topic", "dlq-source-partition", "dlq-source-offset"} <= set(h):
        found[(h["dlq-consumer"].decode(), h["dlq-source-topic"].decode(),
               int(h["dlq-source-partition"]), int(h["dlq-source-offset"]))] = h
