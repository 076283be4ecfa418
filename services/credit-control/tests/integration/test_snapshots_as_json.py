"""Snapshots and a decision's notice context are `json` columns holding the text msgspec wrote
(migration 0029): the balance path stores the snapshots byte for byte, and the migration
rewrites the snapshots stored before it (jsonb's printing) as msgspec writes their structs,
so the sweep can splice them into its events as they are."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import msgspec
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import credit_control
from common.clock import FixedClock
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import encode, wrap
from common.idempotency import IdempotencyKeys
from common.migrations import alembic_config
from common.outbox import Outbox
from common.testing.stack import Stack
from credit_control.adapters import tables as t
from credit_control.credit.entrypoints.consumer import batch_dispatcher
from credit_control.service_layer.context import CreditContext

from .helpers import at, new_uid

pytestmark = [pytest.mark.integration]

MIGRATIONS = Path(credit_control.__file__).parent / "adapters" / "migrations"

CUSTOMER = CustomerSnapshot(
    customer_id="K1", name='集团 "一号"\\', tier=Tier.MID, star_level=3,
    account_manager=Person(name="王经理", phone="13900139000"),
    # four contacts: more than event_text.UNROLLED, so the subquery's branch is taken too
    contacts=tuple(Person(name=f"联系人{i}", phone=f"1380013800{i}") for i in range(4)),
    opened_on=date(2020, 1, 31), region="海淀")
PRODUCT = ProductSnapshot(product_id="P1", cpno="CP1", name="集团V网", family=ProductFamily.MAS,
                          vendor="huawei")


@pytest.fixture
async def at_0028(stack: Stack) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """A database of the test's own, migrated up to 0028 (the snapshots as jsonb)."""
    dsn = stack.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"json_0029_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{stack.database_url.rpartition('/')[0]}/{name}"
    try:
        await asyncio.to_thread(command.upgrade,
                                alembic_config(MIGRATIONS, url, "credit"), "0028")
        conn = await asyncpg.connect(f"{dsn.rpartition('/')[0]}/{name}")
        try:
            yield conn, url
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


async def test_migration_0029_rewrites_stored_snapshots_as_msgspec_writes_them(
        at_0028: tuple[asyncpg.Connection, str]) -> None:
    conn, url = at_0028
    # As 0028 stored them: jsonb (keys re-ordered, spaces added); an older producer's
    # snapshot without the fields added since (their defaults come back).
    older = {"customer_id": "K2", "name": "旧", "tier": "low",
             "account_manager": {"name": "经理", "phone": "139"}}
    await conn.execute(
        "INSERT INTO credit.account_positions (account_id, sequence, balance_fen, "
        "amount_due_fen, dues, customer, cause, as_of) VALUES "
        "('A1', 1, 0, 0, '[]', $1::jsonb, 'charge', now()), "
        "('A2', 1, 0, 0, '[]', $2::jsonb, 'charge', now())",
        msgspec.json.encode(CUSTOMER).decode(), msgspec.json.encode(older).decode())
    await conn.execute(
        "INSERT INTO credit.product_credit (product_id, account_id, family, product, state, "
        "state_changed_at, customer_id, tier) VALUES ('P1', 'A1', 'MAS', $1::jsonb, 'normal', "
        "now(), 'K1', 'mid')", msgspec.json.encode(PRODUCT).decode())
    context = {"customer": msgspec.to_builtins(CUSTOMER), "amount_due_fen": 500}
    await conn.execute(
        "INSERT INTO credit.decisions (decision_id, product_id, account_id, decision, rule_id, "
        "reason, state_before, state_after, as_of, context) VALUES ('D1', 'P1', 'A1', "
        "'warning', 'r', 'why', 'normal', 'warned', now(), $1::jsonb)",
        msgspec.json.encode(context).decode())
    assert await conn.fetchval(
        "SELECT customer::text FROM credit.account_positions WHERE account_id = 'A1'"
    ) != msgspec.json.encode(CUSTOMER).decode()  # jsonb's printing, before

    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS, url, "credit"), "0029")

    types = dict(await conn.fetch(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'credit' AND column_name IN ('customer', 'product', 'context') "
        "AND table_name IN ('account_positions', 'product_credit', 'decisions')"))
    assert types == {"account_positions.customer": "json", "product_credit.product": "json",
                     "decisions.context": "json"}
    customers = dict(await conn.fetch(
        "SELECT account_id, customer::text FROM credit.account_positions"))
    assert customers == {
        "A1": msgspec.json.encode(CUSTOMER).decode(),
        "A2": msgspec.json.encode(msgspec.convert(older, CustomerSnapshot)).decode()}
    assert await conn.fetchval("SELECT product::text FROM credit.product_credit") == (
        msgspec.json.encode(PRODUCT).decode())
    # A decision is history: the same value, as jsonb printed it.
    assert msgspec.json.decode(await conn.fetchval(
        "SELECT context::text FROM credit.decisions")) == msgspec.json.decode(
            msgspec.json.encode(context))


async def test_migration_0030_keeps_a_decisions_inputs_as_json(
        at_0028: tuple[asyncpg.Connection, str]) -> None:
    conn, url = at_0028
    inputs = {"balance_fen": -500, "dues": [{"bill_month": "2026-10", "amount_due_fen": 500}],
              "tier": "mid", "late": None, "notice_exception": False, "name": '集团 "一号"\\'}
    await conn.execute(
        "INSERT INTO credit.decisions (decision_id, product_id, account_id, decision, rule_id, "
        "reason, state_before, state_after, as_of, context, inputs) VALUES ('D1', 'P1', 'A1', "
        "'warning', 'r', 'why', 'normal', 'warned', now(), '{}', $1::jsonb)",
        msgspec.json.encode(inputs).decode())

    await asyncio.to_thread(command.upgrade, alembic_config(MIGRATIONS, url, "credit"), "0030")

    assert await conn.fetchval(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'credit' "
        "AND table_name = 'decisions' AND column_name = 'inputs'") == "json"
    assert msgspec.json.decode(await conn.fetchval(
        "SELECT inputs::text FROM credit.decisions")) == inputs


async def test_the_balance_path_stores_the_snapshots_as_msgspec_wrote_them(
        db: AsyncEngine) -> None:
    uid = new_uid()
    account = f"A{uid}"
    customer = msgspec.structs.replace(CUSTOMER, customer_id=f"K{uid}")
    product = msgspec.structs.replace(PRODUCT, product_id=f"P{uid}")
    handle = batch_dispatcher(CreditContext(
        db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
        FixedClock(at(date(2031, 4, 1)))))
    e = BalanceChanged(account_id=account, sequence=1, cause=BalanceCause.CHARGE,
                       as_of=at(date(2031, 4, 1)), balance_fen=-100, amount_due_fen=100,
                       dues=(BillMonthDue(bill_month="2031-03", amount_due_fen=100),),
                       customer=customer, products=(product,))
    async with db.begin() as conn:
        await handle(conn, [(wrap(e, key=account, source="test", occurred_at=e.as_of), e)])
    async with db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT ap.customer::text, pc.product::text FROM credit.account_positions ap "
            "JOIN credit.product_credit pc USING (account_id) WHERE ap.account_id = :a"),
            {"a": account})).one()
    assert tuple(row) == (encode(customer).decode(), encode(product).decode())
