"""A refused request changes nothing, its idempotency key included (issue 14): work done
after a committed reservation (a sweep) releases the key when it refuses the request, and
keeps it on any other failure, so the same request resumes under its id."""

import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.errors import Conflict, Unavailable, Unprocessable
from common.idempotency import IdempotencyKeys
from common.plumbing import idempotency_table

pytestmark = [pytest.mark.integration]


class Run(BaseModel):
    as_of: str


@pytest.fixture
async def keys(db: AsyncEngine) -> AsyncIterator[IdempotencyKeys]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    metadata = MetaData(schema=schema)
    table = idempotency_table(metadata)
    async with db.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield IdempotencyKeys(table)
    async with db.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


async def _reserve(db: AsyncEngine, keys: IdempotencyKeys, request: Run) -> None:
    async with db.begin() as conn:
        assert await keys.replay_or_reserve(conn, "sweep", "S1", request) is None


async def _count(db: AsyncEngine, keys: IdempotencyKeys) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(keys.table)) or 0)


async def test_a_refusal_releases_the_key_for_the_corrected_request(
    db: AsyncEngine, keys: IdempotencyKeys,
) -> None:
    await _reserve(db, keys, Run(as_of="wrong"))
    with pytest.raises(Unprocessable):
        async with keys.released_on_refusal(db, "sweep", "S1"):
            raise Unprocessable("as_of is not a business day", field="as_of")
    assert await _count(db, keys) == 0
    corrected = Run(as_of="2026-11-30")
    await _reserve(db, keys, corrected)  # same id, other body: no 409
    async with db.begin() as conn:
        await keys.store(conn, "sweep", "S1", 201, {"ok": True})
        again = await keys.replay_or_reserve(conn, "sweep", "S1", corrected)
    assert again is not None and (again.status_code, again.body) == (201, {"ok": True})


async def test_an_unavailable_refusal_releases_the_key_for_the_same_request_later(
    db: AsyncEngine, keys: IdempotencyKeys,
) -> None:
    """503 Unavailable is raised before anything is written (a sweep whose balance feed is
    behind): the same request, sent again later, takes the id afresh."""
    request = Run(as_of="2026-11-30")
    await _reserve(db, keys, request)
    with pytest.raises(Unavailable):
        async with keys.released_on_refusal(db, "sweep", "S1"):
            raise Unavailable("the feed is behind", retry_after_s=10)
    assert await _count(db, keys) == 0
    async with db.begin() as conn:
        assert await keys.replay_or_reserve(conn, "sweep", "S1", request) is None


async def test_a_server_failure_keeps_the_key_for_the_same_request(
    db: AsyncEngine, keys: IdempotencyKeys,
) -> None:
    request = Run(as_of="2026-11-30")
    await _reserve(db, keys, request)
    with pytest.raises(ConnectionError):
        async with keys.released_on_refusal(db, "sweep", "S1"):
            raise ConnectionError("the database went away mid-sweep")
    assert await _count(db, keys) == 1  # the same request resumes under its id ...
    async with db.begin() as conn:
        earlier = await keys.replay_or_reserve(conn, "sweep", "S1", request)
        assert earlier is not None and earlier.status_code == 0  # ... unanswered yet
        with pytest.raises(Conflict):  # ... and another body still may not take it
            await keys.replay_or_reserve(conn, "sweep", "S1", Run(as_of="2026-12-31"))


async def test_an_answered_key_is_never_released(db: AsyncEngine,
                                                 keys: IdempotencyKeys) -> None:
    request = Run(as_of="2026-11-30")
    await _reserve(db, keys, request)
    async with db.begin() as conn:
        await keys.store(conn, "sweep", "S1", 201, {"ok": True})
        await keys.release(conn, "sweep", "S1")
    assert await _count(db, keys) == 1
