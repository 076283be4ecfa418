"""A product off normal whose own amount changes with no decision publishes
`credit.product_amount_changed` from the real store (migration 0034: the products' upsert
returns what each product owed of its own before it, `previous_product_amount_due_fen`), so
the notifier can revise a notice it has not sent yet."""

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
from common.envelope import RawEnvelope, wrap
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.credit.service_layer.balance_events import apply_balance_events
from credit_control.credit.service_layer.balance_store import SqlBalanceStore
from credit_control.service_layer.context import CreditContext

from .helpers import at, new_uid

pytestmark = [pytest.mark.integration]


class _Account:
    def __init__(self, db: AsyncEngine) -> None:
        self.db, uid = db, new_uid()
        self.account_id, self.product_id = f"A{uid}", f"P{uid}"
        self.customer = CustomerSnapshot(
            customer_id=f"K{uid}", name="集团", tier=Tier.MID,
            account_manager=Person(name="王经理", phone="13900139000"),
            contacts=(Person(name="联系人", phone="13800138000"),))
        self.ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                                 FixedClock(at(date(2032, 4, 1))))

    def event(self, seq: int, cause: BalanceCause, due: int) -> tuple[RawEnvelope,
                                                                      BalanceChanged]:
        e = BalanceChanged(
            account_id=self.account_id, sequence=seq, cause=cause,
            as_of=at(date(2032, 4, seq)), balance_fen=-due, amount_due_fen=due,
            dues=(BillMonthDue(bill_month="2032-03", amount_due_fen=due),) if due else (),
            closed_bill_month="2032-03" if cause is BalanceCause.BILL_RUN else None,
            customer=self.customer,
            products=(ProductSnapshot(product_id=self.product_id, cpno="CP1", name="集团V网",
                                      family=ProductFamily.ADC),))
        return wrap(e, key=self.account_id, source="test", occurred_at=e.as_of), e

    async def apply(self, *items: tuple[RawEnvelope, BalanceChanged]) -> None:
        async with self.db.begin() as conn:
            await apply_balance_events(SqlBalanceStore(self.ctx, conn), list(items))

    async def published(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.db.connect() as conn:
            rows = await conn.execute(text(
                "SELECT event_type, payload FROM credit.outbox_messages WHERE key = :k "
                "ORDER BY id, position"), {"k": self.account_id})
            return [(r.event_type, json.loads(r.payload)["payload"]) for r in rows]


async def test_a_partial_payment_publishes_the_products_new_amount(db: AsyncEngine) -> None:
    account = _Account(db)
    await account.apply(account.event(1, BalanceCause.BILL_RUN, 12_345))
    await account.apply(account.event(2, BalanceCause.PAYMENT, 2_345))
    published = await account.published()
    assert [kind for kind, _ in published] == [
        "credit.decision_made", "credit.product_amount_changed"]
    change = published[-1][1]
    assert {k: change[k] for k in ("product_id", "previous_fen", "amount_due_fen",
                                   "account_amount_due_fen", "state", "sequence")} == {
        "product_id": account.product_id, "previous_fen": 12_345, "amount_due_fen": 2_345,
        "account_amount_due_fen": 2_345, "state": "warned", "sequence": 2}
    async with db.connect() as conn:
        stored = (await conn.execute(text(
            "SELECT previous_product_amount_due_fen, product_amount_due_fen "
            "FROM credit.product_credit WHERE product_id = :p"),
            {"p": account.product_id})).one()
    assert tuple(stored) == (12_345, 2_345)
    # The same amount again (a redelivered or a later event that moves nothing of its own):
    # nothing more.
    await account.apply(account.event(3, BalanceCause.CHARGE, 2_345))
    assert len(await account.published()) == 2
