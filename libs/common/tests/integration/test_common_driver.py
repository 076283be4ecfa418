"""common.db.driver: a statement sent to asyncpg itself runs inside the caller's
SQLAlchemy transaction, begun without a statement of its own."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import DriverStatement, driver

pytestmark = [pytest.mark.integration]


class Boom(Exception):
    pass


async def test_driver_statements_share_the_transaction(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS driver_probe (n int)"))
        await conn.execute(text("TRUNCATE driver_probe"))
    insert = DriverStatement("INSERT INTO driver_probe VALUES (:n)")
    with pytest.raises(Boom):
        async with db.begin() as conn:
            await insert.execute(conn, {"n": 1})  # the transaction's first statement
            assert (await driver(conn)).is_in_transaction()
            raise Boom
    async with db.begin() as conn:
        await insert.execute(conn, {"n": 2})
        await conn.execute(text("INSERT INTO driver_probe VALUES (3)"))  # SQLAlchemy's too
    async with db.begin() as conn:
        rows = (await conn.execute(text("SELECT n FROM driver_probe ORDER BY n"))).all()
        await conn.execute(text("DROP TABLE driver_probe"))
    assert [r.n for r in rows] == [2, 3]  # the rolled-back insert is gone


async def test_the_transaction_begins_without_a_statement_of_its_own(db: AsyncEngine) -> None:
    """SQLAlchemy's asyncpg adapter begins its transaction on its first statement; `driver`
    begins it the same way, without sending a `SELECT 1` through SQLAlchemy first (a round
    trip per consumer batch). If a SQLAlchemy upgrade moves the adapter's method, this fails
    instead of the saving going quietly."""
    seen: list[str] = []
    through_sqlalchemy: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        through_sqlalchemy.append(statement)

    def sent(query: Any) -> None:
        seen.append(query.query.split()[0].rstrip(";"))

    async with db.connect() as conn:  # one pooled connection: the logger sees all it sends
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        raw.add_query_logger(sent)
        event.listen(db.sync_engine, "before_cursor_execute", note)
        try:
            async with conn.begin():
                assert await DriverStatement("SELECT :n::int").fetch(conn, {"n": 1}) == [(1,)]
        finally:
            event.remove(db.sync_engine, "before_cursor_execute", note)
            raw.remove_query_logger(sent)
    await asyncio.sleep(0)  # asyncpg calls its query loggers soon after, not at once
    assert through_sqlalchemy == []
    assert seen == ["BEGIN", "SELECT", "COMMIT"]
