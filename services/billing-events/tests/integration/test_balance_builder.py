"""The balance-event builder reads and writes through asyncpg under SQLAlchemy's connection
(adapters/ledger.py `_driver`): all of it in the caller's transaction, even when publishing
is the transaction's first statement, and to the context's topic."""

from datetime import datetime

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_events.adapters import tables as t
from billing_events.domain import commands as c
from billing_events.service_layer import handlers as h
from billing_events.service_layer.context import BillingContext, publish
from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.billing import BALANCE_TOPIC, BalanceCause, BalanceChanged
from common.envelope import convert
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox

pytestmark = pytest.mark.integration


async def open_account(ctx: BillingContext, uid: str) -> str:
    await h.create_customer(ctx, c.CreateCustomer.model_validate({
        "customer_id": f"G{uid}", "name": "某集团", "tier": "low",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "会计", "phone": "13800000003"}]}))
    await h.open_account(ctx, c.OpenAccount(account_id=f"A{uid}", customer_id=f"G{uid}"))
    await h.add_product(ctx, c.AddProduct.model_validate({
        "product_id": f"P{uid}", "account_id": f"A{uid}", "cpno": f"CP{uid}",
        "name": "企信通", "family": "ADC"}))
    return f"A{uid}"


async def footprint(db: AsyncEngine, account: str) -> tuple[int, int]:
    async with db.connect() as conn:
        sequence = await conn.scalar(text(
            "SELECT sequence FROM billing.accounts WHERE account_id = :a"), {"a": account})
        events = await conn.scalar(text(
            "SELECT count(*) FROM billing.outbox WHERE key = :a"), {"a": account})
    return int(sequence), int(events or 0)


def context(db: AsyncEngine, topic: str) -> BillingContext:
    return BillingContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                          FixedClock(datetime(2026, 11, 3, 9, tzinfo=BUSINESS_TZ)),
                          balance_topic=topic)


async def test_publishing_first_in_a_transaction_is_rolled_back_with_it(
    db: AsyncEngine, uid: str,
) -> None:
    ctx = context(db, BALANCE_TOPIC)
    account = await open_account(ctx, uid)
    before = await footprint(db, account)
    async with db.connect() as conn:
        tx = await conn.begin()
        states = await publish(ctx, conn, [account], BalanceCause.MASTER_DATA, ctx.clock.now())
        assert states[account].sequence == before[0] + 1  # seen inside the transaction
        await tx.rollback()
    assert await footprint(db, account) == before  # no bump, no event: nothing escaped


async def test_events_go_to_the_contexts_topic_and_parse_as_the_contract(
    db: AsyncEngine, uid: str,
) -> None:
    account = await open_account(context(db, BALANCE_TOPIC), uid)
    topic = f"builder-test-{uid}"
    ctx = context(db, topic)
    async with db.connect() as conn:
        tx = await conn.begin()
        await publish(ctx, conn, [account], BalanceCause.MASTER_DATA, ctx.clock.now())
        rows = (await conn.execute(text(
            "SELECT topic, event_id, payload FROM billing.outbox WHERE key = :a ORDER BY id"),
            {"a": account})).all()
        await tx.rollback()  # no relay ever meets a topic that does not exist
    assert [r.topic for r in rows] == [BALANCE_TOPIC, topic]  # the product's, then this one
    envelope = orjson.loads(rows[-1].payload)
    assert envelope["event_id"] == str(rows[-1].event_id)
    event = convert(envelope["payload"], BalanceChanged)  # the contract reads it
    assert event.account_id == account and event.cause is BalanceCause.MASTER_DATA
    assert [p.product_id for p in event.products] == [f"P{uid}"]
    assert event.customer.contacts[0].name == "会计"
