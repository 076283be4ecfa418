"""Fixtures the plumbing's integration tests share: an outbox in a schema of its own, a
started producer, the test tables (inbox, outbox, effects) in a schema of their own, and a
fresh 3-partition topic with one key per partition for the consumer runner's tests."""

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.kafka import Publisher, ensure_topics
from common.outbox import Outbox
from common.plumbing import outbox_table
from common.testing.stack import Stack

from .test_common_plumbing import Tables, ping


@pytest.fixture
async def outbox(db: AsyncEngine) -> AsyncIterator[Outbox]:
    """An outbox table in a fresh schema, dropped afterwards."""
    schema = f"o_{uuid.uuid4().hex[:10]}"
    metadata = MetaData(schema=schema)
    table = outbox_table(metadata)
    async with db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield Outbox(table)
    async with db.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
async def publisher(stack: Stack) -> AsyncIterator[Publisher]:
    p = Publisher(stack.kafka_bootstrap, "plumbing-test")
    await p.start()
    yield p
    await p.stop()

RUNNER_PARTITIONS = 3  # the runner tests' topics: one key per partition


@pytest.fixture
async def tables(db: AsyncEngine) -> AsyncIterator[Tables]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    made = Tables(schema)
    async with db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(made.metadata.create_all)
    yield made
    async with db.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
async def runner_parts(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
) -> AsyncIterator[tuple[str, dict[int, str]]]:
    """A fresh 3-partition topic and one key per partition."""
    topic = f"test.stalls.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=RUNNER_PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    keys: dict[int, str] = {}
    try:
        for n in range(200):
            if len(keys) == RUNNER_PARTITIONS:
                break
            key = f"key-{n}"
            meta = await producer.send_and_wait(topic, value=ping(-1, key), key=key.encode())
            keys.setdefault(meta.partition, key)
    finally:
        await producer.stop()
    assert len(keys) == RUNNER_PARTITIONS
    yield topic, keys
