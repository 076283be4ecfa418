"""sweep_sql.json_text: the outbox envelopes and payloads the sweep splices as text are byte
for byte what `jsonb_build_object(…)::text` printed before (key order, escapes, numbers,
nested jsonb, NULLs), so the relay publishes the same bytes."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from credit_control.credit.adapters.sweep_sql import json_text

pytestmark = pytest.mark.integration

PAIRS = [("decision_id", "v.a"), ("account_id", "v.b"), ("context", "v.c"),
         ("warning_level", "v.n"), ("as_of", "v.d"), ("reason", "v.e"), ("rule_id", "v.f"),
         ("amount_fen", "v.g"), ("vendor", "v.c->'vendor'"), ("ok", "v.n > 2")]
ROWS = """(VALUES
  ('x"y\\z', '集团V网', '{"customer": {"name": "集团\\n1", "b": [1, 2.50, null]},
    "product": {"cpno": "CP\\"1"}, "vendor": "huawei"}'::jsonb, 3, '2026-11-30'::date,
    NULL::text, 'r1', 12345678901::bigint),
  (NULL, '', 'null'::jsonb, NULL, NULL, E'tab\\there \\u00e9', 'r2', NULL),
  ('a', 'b', '{}'::jsonb, 0, '2026-01-01'::date, '', '', -1)) v(a, b, c, n, d, e, f, g)"""


async def test_json_text_is_byte_for_byte_jsonb_build_objects_text(db: AsyncEngine) -> None:
    built = "jsonb_build_object(" + ", ".join(f"'{k}', {v}" for k, v in PAIRS) + ")::text"
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT {json_text(PAIRS)} AS spliced, {built} AS built FROM {ROWS}"))).all()
    assert len(rows) == 3
    for row in rows:
        assert row.spliced == row.built


async def test_a_raw_member_is_spliced_as_it_is(db: AsyncEngine) -> None:
    inner = json_text([("b", "2"), ("a", "'x'::text")])
    outer = json_text([("payload", inner), ("key", "'k'::text")], raw=("payload",))
    async with db.connect() as conn:
        spliced, built = (await conn.execute(text(
            f"SELECT {outer}, jsonb_build_object('payload', jsonb_build_object('b', 2, 'a', "
            "'x'::text), 'key', 'k'::text)::text"))).one()
    assert spliced == built == '{"key": "k", "payload": {"a": "x", "b": 2}}'
