"""The one outbox writer against a real PostgreSQL: INSERT and COPY write the same rows in the
caller's order, inside the caller's transaction, and the relay is woken after it ends."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.envelope import Contract, to_bytes, wrap
from common.outbox import Outbox, OutboxRow, add_rows, envelope_row

pytestmark = [pytest.mark.integration]


class Noted(Contract):
    event_type: ClassVar[str] = "test.noted"
    topic: ClassVar[str] = "test.notes.v1"
    n: int


def rows(n: int, topic: str) -> list[OutboxRow]:
    return [envelope_row(topic, wrap(Noted(n=i), key=f"k{i % 3}", source="test",
                                     occurred_at=datetime.now(UTC))) for i in range(n)]


async def read_back(db: AsyncEngine, schema: str, topic: str) -> list[tuple[object, ...]]:
    async with db.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(
            f'SELECT event_id, topic, key, event_type, payload FROM "{schema}".outbox '
            "WHERE topic = :t ORDER BY id"), {"t": topic})]


@pytest.mark.parametrize("n", [1, 7, 1_200])  # below and above COPY_FROM
async def test_rows_go_in_as_given_and_in_order(db: AsyncEngine, outbox: Outbox, n: int) -> None:
    written = rows(n, "a")
    async with db.begin() as conn:
        await outbox.add_rows(conn, written)
    assert await read_back(db, outbox.schema, "a") == [as_stored(r) for r in written]


def as_stored(row: OutboxRow) -> tuple[object, ...]:
    payload = row.payload.decode() if isinstance(row.payload, bytes) else row.payload
    return (*row[:4], payload)


async def test_bytes_payloads_and_the_envelope_wrappers_write_the_same(
    db: AsyncEngine, outbox: Outbox
) -> None:
    envs = [wrap(Noted(n=i), key="k", source="test", occurred_at=datetime.now(UTC))
            for i in range(5)]
    async with db.begin() as conn:
        await add_rows(conn, [OutboxRow(e.event_id, "b", e.key, e.type, to_bytes(e))
                              for e in envs[:2]], schema=outbox.schema)
        await outbox.add(conn, "b", envs[2])
        await outbox.add_many(conn, [("b", envs[3])])
        # a payload given as text goes in the same (the INSERT takes bytes)
        await add_rows(conn, [(envs[4].event_id, "b", "k", envs[4].type,
                               to_bytes(envs[4]).decode())], schema=outbox.schema)
    assert await read_back(db, outbox.schema, "b") == [
        (e.event_id, "b", "k", "test.noted", to_bytes(e).decode()) for e in envs]


@pytest.mark.parametrize("n", [2, 1_200])
async def test_a_rolled_back_transaction_leaves_no_row(
    db: AsyncEngine, outbox: Outbox, n: int
) -> None:
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await outbox.add_rows(conn, rows(n, "d"))
            raise RuntimeError("the use case failed after writing its events")
    assert await read_back(db, outbox.schema, "d") == []


async def test_the_relay_is_woken_after_the_commit_not_before(
    db: AsyncEngine, outbox: Outbox
) -> None:
    outbox.wake.clear()
    seen: list[int] = []

    async def relay_look() -> None:
        await outbox.wake.wait()
        async with db.connect() as conn:
            seen.append(int(await conn.scalar(text(
                f'SELECT count(*) FROM "{outbox.schema}".outbox')) or 0))

    looking = asyncio.create_task(relay_look())
    async with db.begin() as conn:
        await outbox.add_rows(conn, rows(3, "e"))
        await asyncio.sleep(0.05)  # the relay would run here if it had been woken already
        assert not outbox.wake.is_set()
    await asyncio.wait_for(looking, timeout=5)
    assert seen == [3]  # it found the committed rows on its first look


class Said(Contract):
    event_type: ClassVar[str] = "test.said"
    topic: ClassVar[str] = "test.said.v1"
    text: str


async def test_a_generator_is_streamed_by_copy_in_order_over_many_chunks(
    db: AsyncEngine, outbox: Outbox
) -> None:
    # ~2 KB of Chinese text per row: 600 rows span several of the writer's COPY chunks, and
    # the payload's bytes go in as they are (multi-byte UTF-8 kept whole).
    envs = [wrap(Said(text=f"尊敬的客户{i}：" + "欠费提醒" * 170), key=f"账户{i % 5}",
                 source="test", occurred_at=datetime.now(UTC)) for i in range(600)]
    built: list[int] = []

    def build() -> Iterator[OutboxRow]:
        for i, e in enumerate(envs):
            built.append(i)
            yield OutboxRow(e.event_id, "f", e.key, e.type, to_bytes(e))

    async with db.begin() as conn:
        await outbox.add_rows(conn, build())
    assert built == list(range(600))
    assert await read_back(db, outbox.schema, "f") == [
        (e.event_id, "f", e.key, "test.said", to_bytes(e).decode()) for e in envs]


async def test_a_generator_that_fails_midway_writes_nothing(
    db: AsyncEngine, outbox: Outbox
) -> None:
    def build() -> Iterator[OutboxRow]:
        # ~1.5 MB first: several chunks have reached PostgreSQL when the build fails.
        for e in envs:
            yield OutboxRow(e.event_id, "g", e.key, e.type, to_bytes(e))
        raise ValueError("an account's event could not be built")

    envs = [wrap(Said(text="欠费" * 400), key=f"k{i}", source="test",
                  occurred_at=datetime.now(UTC)) for i in range(600)]

    with pytest.raises(ValueError, match="could not be built"):
        async with db.begin() as conn:
            await outbox.add_rows(conn, build())
    assert await read_back(db, outbox.schema, "g") == []
    async with db.begin() as conn:  # the pool's connections are still good
        await outbox.add_rows(conn, rows(2, "g"))
    assert len(await read_back(db, outbox.schema, "g")) == 2


async def test_a_few_rows_keep_multi_byte_text_and_bad_utf8_writes_nothing(
    db: AsyncEngine, outbox: Outbox
) -> None:
    # Below COPY_FROM the payloads go as bytea and PostgreSQL converts them to text.
    envs = [wrap(Said(text=f"尊敬的客户{i}：您的账户已欠费"), key=f"账户{i}", source="test",
                 occurred_at=datetime.now(UTC)) for i in range(3)]
    async with db.begin() as conn:
        await outbox.add_many(conn, [("h", e) for e in envs])
    assert await read_back(db, outbox.schema, "h") == [
        (e.event_id, "h", e.key, "test.said", to_bytes(e).decode()) for e in envs]

    bad = OutboxRow(uuid4(), "i", "k", "test.said", b'{"text":"\xe6\xac"}')
    with pytest.raises(asyncpg.DataError, match="invalid byte sequence"):
        async with db.begin() as conn:
            await outbox.add_rows(conn, [bad])
    assert await read_back(db, outbox.schema, "i") == []
