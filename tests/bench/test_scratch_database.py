"""The benches' own databases (bench/_scratch.py): a bench's rows never land in the suite's
database. Created, migrated with the service's migrations, and dropped afterwards, even when
the bench fails."""

import sys
from pathlib import Path

import asyncpg
import pytest

import gateway_adapter
from common.testing.stack import Stack

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from _scratch import asyncpg_dsn, scratch_database  # noqa: E402

pytestmark = [pytest.mark.integration]

MIGRATIONS = Path(gateway_adapter.__file__).parent / "adapters" / "migrations"


async def _databases(url: str, prefix: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {r[0] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{prefix}%")}
    finally:
        await conn.close()


async def test_a_scratch_database_is_migrated_and_dropped(stack: Stack) -> None:
    before = await _databases(stack.database_url, "scratchtest_")
    async with scratch_database(stack.database_url, "scratchtest", MIGRATIONS,
                                "gateway") as url:
        assert url != stack.database_url
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            tables = {r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'gateway'")}
        finally:
            await conn.close()
        assert {"chain_products", "attempts", "outbox", "inbox"} <= tables
        assert len(await _databases(stack.database_url, "scratchtest_") - before) == 1
    assert await _databases(stack.database_url, "scratchtest_") == before
    with pytest.raises(RuntimeError, match="the bench failed"):
        async with scratch_database(stack.database_url, "scratchtest", None, "gateway"):
            raise RuntimeError("the bench failed")
    assert await _databases(stack.database_url, "scratchtest_") == before
