"""The pool pings a connection at checkout only after it sat idle (common.db.make_engine),
against the real PostgreSQL: a connection used a moment ago goes out unpinged, an idle one is
pinged, and one whose server process died while idle is replaced without the caller seeing
an error."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common import db as common_db
from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    made = common_db.make_engine(stack.database_url, pool_size=1)
    yield made
    await made.dispose()


@pytest.fixture
def pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    dialect = engine.sync_engine.dialect
    counted: list[int] = []
    real = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        counted.append(1)
        return bool(real(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counting)
    return counted


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_used_a_moment_ago_is_not_pinged(
    engine: AsyncEngine, pings: list[int],
) -> None:
    first = await _backend_pid(engine)  # a new connection: pinged once
    assert len(pings) == 1
    for _ in range(5):
        assert await _backend_pid(engine) == first  # the same one, straight back
    assert len(pings) == 1


async def test_an_idle_connection_is_pinged(
    engine: AsyncEngine, pings: list[int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common_db, "PING_AFTER_IDLE_S", 0.05)
    await _backend_pid(engine)
    await asyncio.sleep(0.1)
    await _backend_pid(engine)
    assert len(pings) == 2


async def test_a_connection_that_died_while_idle_is_replaced_unseen(
    engine: AsyncEngine, db: AsyncEngine, pings: list[int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common_db, "PING_AFTER_IDLE_S", 0.05)
    dead = await _backend_pid(engine)
    async with db.connect() as other:  # as a database restart would
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
    await asyncio.sleep(0.1)
    assert await _backend_pid(engine) != dead  # no error: the ping found it dead
    assert len(pings) >= 2


async def test_every_connection_writes_dates_as_iso(engine: AsyncEngine) -> None:
    """SQL that writes a date as its text (the sweep's decision ids: `(d)::text`) must get
    2026-11-30 on every connection, whatever DateStyle the server defaults to (the stack's is
    "ISO, MDY": YMD shows the engine's own setting took)."""
    async with engine.connect() as conn:
        style = (await conn.execute(text("SHOW DateStyle"))).scalar_one()
        day = (await conn.execute(text("SELECT DATE '2026-11-30'::text"))).scalar_one()
    assert (style, day) == ("ISO, YMD", "2026-11-30")


async def test_every_connection_runs_without_jit(engine: AsyncEngine) -> None:
    """The server's default is `jit = on` (the stack leaves it); the engine's connections
    turn it off, so a set-wise statement over tables without statistics is not compiled for
    longer than it runs."""
    async with engine.connect() as conn:
        jit = (await conn.execute(text("SHOW jit"))).scalar_one()
        default = (await conn.execute(text(
            "SELECT boot_val FROM pg_settings WHERE name = 'jit'"))).scalar_one()
    assert (jit, default) == ("off", "on")
