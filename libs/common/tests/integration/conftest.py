"""Fixtures the plumbing's integration tests share: an outbox in a schema of its own, and a
started producer."""

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.kafka import Publisher
from common.outbox import Outbox
from common.plumbing import outbox_table
from common.testing.stack import Stack


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
