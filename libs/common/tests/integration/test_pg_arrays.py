"""common.pg_arrays against a real PostgreSQL: with asyncpg's element checks narrowed to
lists and tuples, every kind of array this project passes encodes exactly as with asyncpg's
own checks, and what changes (a set is refused) is refused."""

import random
from collections.abc import Iterable, Iterator, Sized
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import asyncpg
import asyncpg.protocol.protocol as protocol
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import DriverStatement, driver
from common.pg_arrays import ARRAY_CONTAINERS, array_text, narrow_array_checks

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


# --- arrays sent as their text form (DriverStatement, pg_arrays.array_text) ----------------

_AWKWARD = ["", "NULL", "null", " padded ", '"quoted"', "back\\slash", "\\", '\\"', "{a,b}",
            "a,b", "new\nline", "tab\t", "\x01\x1f\x7f", "尊敬的客户", "😀", "[1]", "'"]
_RANDOM = random.Random(20261205)
# Every character class a customer's name or a reason can hold, NUL aside (PostgreSQL's text
# cannot hold it, whichever way it is sent).
_ALPHABET = [chr(c) for c in range(1, 128)] + list("账户欠费停机，。「」€") + ["😀", "\u3000"]
TEXT_CASES = _AWKWARD + ["".join(_RANDOM.choices(_ALPHABET, k=_RANDOM.randint(0, 12)))
                         for _ in range(300)]
SHANGHAI = timezone(timedelta(hours=8))
SCALAR_CASES: list[tuple[str, list[object]]] = [
    ("text", [*TEXT_CASES, None]),
    ("text", ["plain", "ids", None]),  # no backslash: msgspec's text as it is
    ("bigint", [0, 1, -1, 2**63 - 1, -(2**63), None]),
    ("integer", [0, 2**31 - 1, -(2**31), None]),
    ("int", [7]),
    ("boolean", [True, False, None]),
    ("date", [date(2026, 11, 30), date(1, 1, 1), None]),
    ("timestamptz", [datetime(2026, 11, 30, 20, tzinfo=SHANGHAI),
                     datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC), None]),
    ("uuid", [UUID(int=7), uuid4(), None]),
    ("text", []),
]


@pytest.mark.parametrize(("element", "values"), SCALAR_CASES,
                         ids=[f"{e}-{i}" for i, (e, _) in enumerate(SCALAR_CASES)])
async def test_an_array_sent_as_text_reads_back_as_asyncpg_sends_it(
    db: AsyncEngine, element: str, values: list[object]
) -> None:
    statement = DriverStatement(f"SELECT CAST(:v AS {element}[])")
    assert "CAST(CAST($1 AS text)" in statement.sql  # sent as text, not asyncpg's array
    async with db.connect() as conn:
        raw = await driver(conn)
        as_text = (await statement.fetch(conn, {"v": values}))[0][0]
        binary = await raw.fetchval(f"SELECT $1::{element}[]", values)
    assert as_text == binary == values


async def test_a_tuple_goes_as_a_list_and_none_as_null(db: AsyncEngine) -> None:
    statement = DriverStatement("SELECT CAST(:v AS text[]) IS NULL, CAST(:w AS bigint[])")
    async with db.connect() as conn:
        assert await statement.fetch(conn, {"v": None, "w": (1, 2)}) == [(True, [1, 2])]


def test_what_the_text_form_refuses() -> None:
    with pytest.raises(TypeError, match="list or a tuple"):
        array_text({1, 2}, "bigint")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="aware datetimes"):
        array_text([datetime(2026, 11, 30, 20)], "timestamptz")
    with pytest.raises(ValueError, match="use it only as"):
        DriverStatement("SELECT CAST(:v AS text[]), :v")
    with pytest.raises(ValueError, match="two array types"):
        DriverStatement("SELECT CAST(:v AS text[]), CAST(:v AS bigint[])")
    # bytea arrays keep asyncpg's binary encoding
    assert "CAST($1 AS bytea[])" in DriverStatement("SELECT CAST(:b AS bytea[])").sql
