"""Whole columns as JSON documents (common.db.json_column), against the real PostgreSQL: every
type the hot statements send comes back exactly as the binary arrays brought it, in order and
aligned with the other columns, NULLs as NULL, an empty list as an empty array; a json column's
elements keep their text byte for byte; a statement with both kinds of parameter still takes
plain ones as they are."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common import db as common_db
from common.contracts.snapshots import CustomerSnapshot, Person, Tier
from common.db import DriverStatement, json_column
from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    made = common_db.make_engine(stack.database_url, pool_size=1)
    yield made
    await made.dispose()


_ROUND_TRIP = DriverStatement(f"""
    SELECT u.n, u.t, u.b, u.i, u.ts, u.d, u.f, u.id, u.doc, u.raw::text, u.doc IS NULL,
           :plain AS plain
    FROM unnest({json_column("t", "text")}, {json_column("b", "bigint")},
                {json_column("i", "integer")}, {json_column("ts", "timestamptz")},
                {json_column("d", "date")}, {json_column("f", "boolean")},
                {json_column("id", "uuid")}, {json_column("doc", "jsonb")},
                {json_column("raw", "json")}) WITH ORDINALITY
         AS u(t, b, i, ts, d, f, id, doc, raw, n)
    ORDER BY u.n""")

_CUSTOMER = CustomerSnapshot(
    customer_id="c-1", name='东莞"某某"科技\\有限公司', tier=Tier.HIGH, star_level=4,
    account_manager=Person(name="经理", phone="13900000000"), contacts=())


async def test_every_type_comes_back_as_sent_in_order(engine: AsyncEngine) -> None:
    shanghai = timezone(timedelta(hours=8))
    texts = ['a "quoted" one', "back\\slash", "中文 与 emoji 🎉", "", None, "{a,b}", "NULL"]
    n = len(texts)
    ids = [uuid4() for _ in range(n)]
    times = [datetime(2026, 11, 30, 20, 0, 0, 123456, tzinfo=shanghai)
             + timedelta(hours=k) for k in range(n - 1)] + [None]
    raw = [b'{"b":  1, "a":"\\u4e2d"}', b"[1, 2]", b'"x"', b"null", b"3", b"{}", b"[]"]
    async with engine.begin() as conn:
        rows = await _ROUND_TRIP.fetch(conn, {
            "t": texts, "b": [10**15, -1, 0, None, 7, 2**40, -(10**15)],
            "i": [1, None, 3, 4, 5, 6, 2**31 - 1], "ts": times,
            "d": [date(2026, 10, 1), None, date(2000, 1, 1), date(8999, 12, 31),
                  date(2026, 2, 28), date(2024, 2, 29), date(2026, 12, 4)],
            "f": [True, False, None, True, False, True, False], "id": ids,
            "doc": [_CUSTOMER, None, {"k": [1, "二"]}, [], "s", 1, {"x": None}],
            "raw": [msgspec.Raw(r) for r in raw], "plain": "as it is"})
    assert [r[0] for r in rows] == list(range(1, n + 1))
    assert [r[1] for r in rows] == texts
    assert [r[2] for r in rows] == [10**15, -1, 0, None, 7, 2**40, -(10**15)]
    assert [r[3] for r in rows] == [1, None, 3, 4, 5, 6, 2**31 - 1]
    assert [r[4] for r in rows] == times
    assert rows[0][4] == datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert [r[5] for r in rows][:3] == [date(2026, 10, 1), None, date(2000, 1, 1)]
    assert [r[6] for r in rows] == [True, False, None, True, False, True, False]
    assert [UUID(str(r[7])) for r in rows] == ids
    assert msgspec.convert(rows[0][8], CustomerSnapshot) == _CUSTOMER
    assert [r[8] for r in rows][1:] == [None, {"k": [1, "二"]}, [], "s", 1, {"x": None}]
    assert [r[9].encode() if r[9] is not None else None for r in rows] == [
        *raw[:3], None, *raw[4:]]  # verbatim, spaces and escapes kept; JSON null is NULL
    assert [r[10] for r in rows] == [False, True, False, False, False, False, False]
    assert {r[11] for r in rows} == {"as it is"}


async def test_empty_columns_are_empty_arrays(engine: AsyncEngine) -> None:
    statement = DriverStatement(f"""
        SELECT cardinality({json_column("ids", "text")}),
               (SELECT count(*) FROM unnest({json_column("ids", "text")}))""")
    async with engine.begin() as conn:
        assert [tuple(r) for r in await statement.fetch(conn, {"ids": []})] == [(0, 0)]


def test_only_json_columns_are_encoded() -> None:
    statement = DriverStatement(f"SELECT :a, {json_column('b', 'bigint')}, :c")
    assert statement.names == ("a", "b", "c")
    assert statement._args({"a": [1], "b": [1, 2], "c": "x"}) == [[1], b"[1,2]", "x"]
