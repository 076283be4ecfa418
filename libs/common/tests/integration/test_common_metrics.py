"""Business counters move only for committed work (common.metrics.on_commit)."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common import metrics

pytestmark = [pytest.mark.integration]


class Boom(Exception):
    pass


async def test_on_commit_fires_for_a_commit_and_never_for_a_rollback(db: AsyncEngine) -> None:
    seen: list[str] = []
    async with db.begin() as conn:
        await conn.execute(text("SELECT 1"))
        metrics.on_commit(conn, lambda: seen.append("kept"))
        assert seen == []  # not before the commit
    with pytest.raises(Boom):
        async with db.begin() as conn:
            metrics.on_commit(conn, lambda: seen.append("rolled back"))
            raise Boom
    async with db.begin() as conn:  # a later transaction does not inherit the hook
        await conn.execute(text("SELECT 1"))
    assert seen == ["kept"]


async def test_a_rollback_on_the_same_connection_drops_its_hooks(db: AsyncEngine) -> None:
    """A consumer retries a failed batch on the connection it has: the failed try's counts
    must not ride along with the retry's commit."""
    seen: list[str] = []
    async with db.connect() as conn:
        await conn.begin()
        metrics.on_commit(conn, lambda: seen.append("rolled back"))
        await conn.rollback()
        await conn.begin()
        metrics.on_commit(conn, lambda: seen.append("kept"))
        metrics.on_commit(conn, lambda: seen.append("kept too"))
        await conn.commit()
        await conn.begin()
        await conn.commit()  # nothing left to fire
    assert seen == ["kept", "kept too"]
