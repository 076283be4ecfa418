"""event_text: the texts the sweep splices in SQL are byte for byte msgspec's encoding of the
contract (field order, compact separators, escapes, numbers, nested structs and lists, NULLs
and defaults), whatever order and extra keys the stored jsonb has."""

import uuid
from datetime import UTC, date, datetime

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.credit_control import NoticeContext
from common.contracts.gateway import ProvisioningCommand
from common.contracts.snapshots import CustomerSnapshot, Person, ProductSnapshot
from common.envelope import SCHEMA_VERSION, to_builtins, to_bytes, wrap
from credit_control.credit.adapters.event_text import (
    date_json,
    enum_json,
    envelope_text,
    jsonb_struct_text,
    moment_json,
    object_text,
    struct_text,
    text_json,
)

pytestmark = pytest.mark.integration

AWKWARD = 'x"y\\z\ttab\x01 é 集团/V网 :null'


def _context(contacts: tuple[Person, ...], **more: object) -> NoticeContext:
    return NoticeContext(
        customer=CustomerSnapshot(customer_id="G1", name=AWKWARD, tier="low",
                                  account_manager=Person(name="王经理", phone="139"),
                                  contacts=contacts),
        product=ProductSnapshot(product_id="P1", cpno='CP"1', name="集团V网", family="MAS",
                                vendor="huawei"),
        amount_due_fen=12_345_678_901, as_of_date=date(2026, 11, 30), **more)  # type: ignore[arg-type]


@pytest.mark.parametrize("context", [
    _context((Person(name="李", phone="138"), Person(name=AWKWARD, phone="137"))),
    _context((), deadline=date(2026, 12, 5), bill_month="2026-10", suspension_exempt=True,
             account_amount_due_fen=-1),
])
async def test_a_stored_context_prints_as_msgspec_encodes_it(
    db: AsyncEngine, context: NoticeContext,
) -> None:
    stored = {**to_builtins(context), "not_in_the_contract": [1, 2]}
    async with db.connect() as conn:
        printed = await conn.scalar(text(
            f"SELECT {jsonb_struct_text('v.c', NoticeContext)} "
            "FROM (SELECT CAST(:c AS jsonb) AS c) v"), {"c": msgspec.json.encode(stored).decode()})
    assert printed == msgspec.json.encode(context).decode()


async def test_defaults_when_the_stored_jsonb_lacks_them(db: AsyncEngine) -> None:
    """An older row without the keys added since: decoding gives the defaults, so do we."""
    full = to_builtins(_context(()))
    for key in ("contacts",):
        del full["customer"][key]
    for key in ("deadline", "bill_month", "suspension_exempt", "account_amount_due_fen"):
        del full[key]
    async with db.connect() as conn:
        printed = await conn.scalar(text(
            f"SELECT {jsonb_struct_text('v.c', NoticeContext)} "
            "FROM (SELECT CAST(:c AS jsonb) AS c) v"), {"c": msgspec.json.encode(full).decode()})
    assert printed == msgspec.json.encode(msgspec.convert(full, NoticeContext)).decode()


async def test_a_struct_from_sql_values(db: AsyncEngine) -> None:
    at = datetime(2026, 11, 30, 12, 0, 0, 5, tzinfo=UTC)
    command = ProvisioningCommand(
        command_id="C1", decision_id=AWKWARD, product_id="P1", account_id="A1", cpno="CP1",
        family="MAS", vendor=None, action="suspend", sequence=12_345_678_901,  # type: ignore[arg-type]
        requested_at=at, customer_id="G1")
    sql = struct_text(ProvisioningCommand, {
        "command_id": "'C1'::text", "decision_id": "CAST(:awkward AS text)",
        "product_id": "'P1'::text", "account_id": "'A1'::text", "cpno": "'CP1'::text",
        "family": "'MAS'::text", "vendor": "NULL::text", "action": "'suspend'::text",
        "sequence": "12345678901::bigint", "requested_at": "CAST(:at AS text)",
        "customer_id": "'G1'::text"}, raw=("requested_at",))
    async with db.connect() as conn:
        printed = await conn.scalar(text(f"SELECT {sql}"),
                                    {"awkward": AWKWARD, "at": moment_json(at)})
    assert printed == msgspec.json.encode(command).decode()
    assert '"requested_at":"2026-11-30T12:00:00.000005Z"' in printed


@pytest.mark.parametrize(("exempt", "account_due"), [(True, -1), (False, None)])
async def test_integers_and_booleans_from_sql_values(
        db: AsyncEngine, exempt: bool, account_due: int | None) -> None:
    """Integer and boolean fields take PostgreSQL's text of the value (no `to_json`)."""
    context = _context((), suspension_exempt=exempt, account_amount_due_fen=account_due)
    sql = struct_text(NoticeContext, {
        "customer": "CAST(:customer AS text)", "product": "CAST(:product AS text)",
        "amount_due_fen": "12345678901::bigint", "as_of_date": "DATE '2026-11-30'",
        "deadline": "NULL::date", "bill_month": "NULL::text",
        "suspension_exempt": "CAST(:exempt AS boolean)",
        "account_amount_due_fen": "CAST(:due AS bigint)"}, raw=("customer", "product"))
    async with db.connect() as conn:
        printed = await conn.scalar(text(f"SELECT {sql}"), {
            "customer": msgspec.json.encode(context.customer).decode(),
            "product": msgspec.json.encode(context.product).decode(),
            "exempt": exempt, "due": account_due})
    assert printed == msgspec.json.encode(context).decode()


async def test_ids_the_statement_made_go_in_quotes_and_the_envelope_around_them(
        db: AsyncEngine) -> None:
    """`bare` fields (uuid text the statement made) and the envelope's event id skip
    `to_json`; the bytes are msgspec's all the same."""
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    command_id = "9f1c2d3e-0000-4000-8000-00000000000a"
    decision_id = "0b6e5c4d-aaaa-bbbb-cccc-0123456789ab"
    command = ProvisioningCommand(
        command_id=command_id, decision_id=decision_id, product_id=AWKWARD, account_id="A1",
        cpno="CP1", family="MAS", vendor="huawei", action="suspend", sequence=1,  # type: ignore[arg-type]
        requested_at=at, customer_id="G1")
    sql = struct_text(ProvisioningCommand, {
        "command_id": "CAST(:c AS uuid)::text", "decision_id": "CAST(:d AS uuid)::text",
        "product_id": "CAST(:awkward AS text)", "account_id": "'A1'::text",
        "cpno": "'CP1'::text", "family": "'MAS'::text", "vendor": "'huawei'::text",
        "action": "'\"suspend\"'", "sequence": "1", "requested_at": "CAST(:at AS text)",
        "customer_id": "'G1'::text"}, raw=("requested_at", "action"),
        bare=("command_id", "decision_id"))
    event_id = "01936f3a-0000-7000-8000-000000000001"
    envelope = envelope_text("CAST(:type AS text)", "CAST(:e AS uuid)::text",
                             "CAST(:source AS text)", "CAST(:at AS text)", "'null'",
                             str(SCHEMA_VERSION), "'A1'::text", sql)
    params = {"c": command_id, "d": decision_id, "awkward": AWKWARD, "at": moment_json(at),
              "type": msgspec.json.encode(ProvisioningCommand.event_type).decode(),
              "e": event_id, "source": '"credit-control"'}
    async with db.connect() as conn:
        printed = await conn.scalar(text(f"SELECT {sql}"), params)
        wrapped = await conn.scalar(text(f"SELECT {envelope}"), params)
    assert printed == msgspec.json.encode(command).decode()
    assert wrapped is not None
    expected = to_bytes(wrap(command, source="credit-control", key="A1", occurred_at=at,
                             event_id=uuid.UUID(event_id)))
    assert wrapped.encode() == expected


async def test_an_object_from_sql_values_keeps_its_keys_order_and_every_kind(
        db: AsyncEngine) -> None:
    """object_text (a decision's inputs): keys in the order given, NULL as null, integers and
    booleans as their text, strings escaped, dates ISO, raw JSON spliced as it is; PostgreSQL
    takes the text as json."""
    members = [("n", "CAST(:n AS bigint)", "plain"), ("b", "CAST(:b AS boolean)", "plain"),
               ("none", "NULL::bigint", "plain"), ("s", "CAST(:s AS text)", "json"),
               ("d", "DATE '2026-11-30'", "json"), ("gone", "NULL::date", "json"),
               ("raw", "CAST(:raw AS text)", "raw"), ("c", "'\"sweep\"'", "raw")]
    async with db.connect() as conn:
        printed = await conn.scalar(text(f"SELECT ({object_text(members)})::json::text"), {
            "n": -12_345_678_901, "b": False, "s": AWKWARD, "raw": '[{"m": "2026-10"}]'})
        empty = await conn.scalar(text(f"SELECT ({object_text([])})::json::text"))
    assert printed is not None
    assert list(msgspec.json.decode(printed)) == [k for k, _, _ in members]
    assert msgspec.json.decode(printed) == {
        "n": -12_345_678_901, "b": False, "none": None, "s": AWKWARD, "d": "2026-11-30",
        "gone": None, "raw": [{"m": "2026-10"}], "c": "sweep"}
    assert empty == "{}"


@pytest.mark.parametrize("value", ["suspended", "normal", AWKWARD, "", None])
async def test_an_enum_value_prints_as_to_json_would(db: AsyncEngine, value: str | None) -> None:
    """enum_json: a member's JSON is a constant, anything else (an older version's value, a
    quote, NULL) goes through to_json: the text is msgspec's either way."""
    async with db.connect() as conn:
        printed = await conn.scalar(text(
            f"SELECT {enum_json('v.s', ['normal', 'suspended'])} "
            "FROM (SELECT CAST(:s AS text) AS s) v"), {"s": value})
    assert printed == msgspec.json.encode(value).decode()


@pytest.mark.parametrize("day", [date(2026, 11, 30), date(999, 1, 2), None])
async def test_a_date_prints_as_msgspec_encodes_it(db: AsyncEngine, day: date | None) -> None:
    """date_json and text_json (a date's text, its month): under the engine's DateStyle."""
    async with db.connect() as conn:
        printed, month = (await conn.execute(text(
            f"SELECT {date_json('v.d')}, {text_json('left(v.d::text, 7)')} "
            "FROM (SELECT CAST(:d AS date) AS d) v"), {"d": day})).one()
    assert printed == msgspec.json.encode(day).decode()
    assert month == msgspec.json.encode(day.isoformat()[:7] if day else None).decode()
