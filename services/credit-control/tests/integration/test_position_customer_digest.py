"""The balance path sends an account's customer snapshot to PostgreSQL only when it differs
from the stored one (migration 0028, balance_sql.save_positions): the stored digest decides,
so a changed snapshot (a new contact, the one SMS go to) is always written, and an unchanged
one is left as it is instead of being parsed into jsonb again."""

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.credit.adapters.balance_sql import customer_digest
from credit_control.credit.entrypoints.consumer import batch_dispatcher
from credit_control.service_layer.context import CreditContext

from .helpers import at, new_uid

pytestmark = [pytest.mark.integration]


def _customer(uid: str, phone: str) -> CustomerSnapshot:
    return CustomerSnapshot(customer_id=f"K{uid}", name="集团", tier=Tier.MID,
                            account_manager=Person(name="王经理", phone="13900139000"),
                            contacts=(Person(name="联系人", phone=phone),))


async def test_the_customer_snapshot_is_written_when_it_changes_and_only_then(
        db: AsyncEngine) -> None:
    uid = new_uid()
    account = f"A{uid}"
    product = ProductSnapshot(product_id=f"P{uid}", cpno=f"CP{uid}", name="集团V网",
                              family=ProductFamily.ADC)
    handle = batch_dispatcher(CreditContext(
        db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
        FixedClock(at(date(2031, 4, 1)))))
    first, moved = _customer(uid, "13800138000"), _customer(uid, "13700137000")

    async def apply(seq: int, customer: CustomerSnapshot) -> None:
        e = BalanceChanged(account_id=account, sequence=seq, cause=BalanceCause.CHARGE,
                           as_of=at(date(2031, 4, seq)), balance_fen=-100, amount_due_fen=100,
                           dues=(BillMonthDue(bill_month="2031-03", amount_due_fen=100),),
                           customer=customer, products=(product,))
        async with db.begin() as conn:
            await handle(conn, [(wrap(e, key=account, source="test", occurred_at=e.as_of), e)])

    async def position() -> tuple[Any, bytes | None]:
        async with db.connect() as conn:
            row = (await conn.execute(text(
                "SELECT customer, customer_digest FROM credit.account_positions "
                "WHERE account_id = :a"), {"a": account})).one()
        return row[0], row[1]

    async def stored(value: str, digest: bytes | None) -> None:
        async with db.begin() as conn:
            await conn.execute(text(
                "UPDATE credit.account_positions SET customer = CAST(:c AS jsonb), "
                "customer_digest = :d WHERE account_id = :a"),
                {"c": value, "d": digest, "a": account})

    await apply(1, first)  # a new account: its snapshot and digest
    assert await position() == (_json(first), customer_digest(encode(first)))

    # The same snapshot again is not sent: a stored value the digest vouches for stays (here
    # a marker put in its place, so the test can tell).
    await stored('{"marker": 1}', customer_digest(encode(first)))
    await apply(2, first)
    assert (await position())[0] == {"marker": 1}

    # A changed one is written, with its digest.
    await apply(3, moved)
    assert await position() == (_json(moved), customer_digest(encode(moved)))

    # A position from before the digest (NULL) gets the snapshot and the digest.
    await stored('{"marker": 2}', None)
    await apply(4, moved)
    assert await position() == (_json(moved), customer_digest(encode(moved)))

    # A stale event (an older sequence) changes nothing, its snapshot neither.
    await apply(3, first)
    assert await position() == (_json(moved), customer_digest(encode(moved)))


def _json(customer: CustomerSnapshot) -> Any:
    return json.loads(encode(customer))
