"""common.pg_arrays against a real PostgreSQL: with asyncpg's element checks narrowed to
lists and tuples, every kind of array this project passes encodes exactly as with asyncpg's
own checks, and what changes (a set is refused) is refused."""

from collections.abc import Iterable, Iterator, Sized
from datetime import UTC, date, datetime
from uuid import UUID

import asyncpg
import asyncpg.protocol.protocol as protocol
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import driver
from common.pg_arrays import ARRAY_CONTAINERS, narrow_array_checks

pytestmark = [pytest.mark.integration]

CASES: list[tuple[str, object]] = [
    ("bigint[]", [1, -2, None, 2**62]),
    ("text[]", ["a", "尊敬的客户", None, ""]),
    ("text[]", ("a", "b")),
    ("bytea[]", [b'{"n":1}', "账户".encode(), None]),
    ("uuid[]", [UUID(int=7), None]),
    ("date[]", [date(2026, 11, 30)]),
    ("timestamptz[]", [datetime(2026, 11, 30, 12, tzinfo=UTC), None]),
    ("integer[]", []),
    ("integer[][]", [[1, 2], [3, 4]]),
    ("integer[][]", ([1, None], [3, 4])),  # a tuple of lists (a tuple inside: a record)
    ("boolean[]", [True, False, None]),
]


@pytest.fixture
def asyncpg_own_checks() -> Iterator[None]:
    """asyncpg's checks as shipped, for the length of a test."""
    protocol.IterableABC, protocol.SizedABC = Iterable, Sized
    yield
    assert narrow_array_checks()


def test_the_checks_are_narrowed_in_this_process() -> None:
    # The locked asyncpg is one it was checked against: if an upgrade moved the names, this
    # fails (and common.pg_arrays leaves asyncpg's checks alone until it is checked again).
    assert narrow_array_checks()
    assert protocol.IterableABC is ARRAY_CONTAINERS and protocol.SizedABC is ARRAY_CONTAINERS


async def round_trips(db: AsyncEngine) -> list[object]:
    async with db.connect() as conn:
        raw = await driver(conn)
        return [await raw.fetchval(f"SELECT $1::{kind}", value) for kind, value in CASES]


async def test_every_kind_of_array_encodes_as_with_asyncpg_own_checks(
    db: AsyncEngine, asyncpg_own_checks: None
) -> None:
    own = await round_trips(db)
    assert narrow_array_checks()
    assert await round_trips(db) == own
    assert own[0] == [1, -2, None, 2**62] and own[8] == [[1, 2], [3, 4]]


async def test_a_set_is_refused_as_an_array_and_a_list_of_it_is_not(db: AsyncEngine) -> None:
    assert narrow_array_checks()
    async with db.connect() as conn:
        raw = await driver(conn)
        with pytest.raises(asyncpg.DataError, match="sized iterable container expected"):
            await raw.fetchval("SELECT $1::bigint[]", {1, 2})
        assert sorted(await raw.fetchval("SELECT $1::bigint[]", list({1, 2}))) == [1, 2]
