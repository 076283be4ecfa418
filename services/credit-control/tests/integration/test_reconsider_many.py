"""A profile change reconsiders its customers' products set-wise, `reconsider.CHUNK` products
a batch (a rating run may change thousands of customers): each product decides what a batch
of its own decided, across chunks, several products of an account, several customers, and
each as of its own moment (never before its last change)."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.billing import BalanceChanged
from common.envelope import RawEnvelope
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.credit.service_layer import reconsider
from credit_control.credit.service_layer.balance_events import apply_balance_events
from credit_control.credit.service_layer.balance_store import SqlBalanceStore
from credit_control.service_layer.context import CreditContext

from .helpers import at, bill_run_event, new_uid

pytestmark = [pytest.mark.integration]

BILLED = at(date(2034, 5, 2), 9)


def _bill_run(uid: str, customer: int, account: int, products: int,
              as_of: datetime = BILLED) -> tuple[RawEnvelope, BalanceChanged]:
    return bill_run_event(
        f"A{uid}-{customer}-{account}", f"K{uid}-{customer}",
        [f"P{uid}-{customer}-{account}-{p}" for p in range(products)], 8_000, as_of,
        "2034-04", star_level=3)


async def test_a_raised_limit_clears_every_product_of_every_customer_across_chunks(
    db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconsider, "CHUNK", 3)
    uid = new_uid()
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(2034, 5, 3), 10)))
    # Two customers: three accounts of one product, and one account of two products (3★:
    # a limit of 50.00 yuan, 80.00 owed, so each is billed over its limit), one billed later.
    late = at(date(2034, 5, 4), 9)
    events = [_bill_run(uid, 0, a, 1) for a in range(3)] + [_bill_run(uid, 1, 0, 2, late)]
    async with db.begin() as conn:
        await apply_balance_events(SqlBalanceStore(ctx, conn), events)
    products = [f"P{uid}-0-{a}-0" for a in range(3)] + [f"P{uid}-1-0-{p}" for p in range(2)]
    customers = [f"K{uid}-0", f"K{uid}-1"]
    changed = at(date(2034, 5, 3), 12)
    async with db.begin() as conn:
        for c in customers:
            await conn.execute(text(
                "INSERT INTO credit.credit_profiles (customer_id, star_level, credit_limit_fen,"
                " updated_by, updated_at) VALUES (:c, 3, 10000, 'test', :at)"),
                {"c": c, "at": changed})
        moved = await reconsider.reconsider_customers(
            ctx, conn, customers, changed, trigger="credit profile", correlation=f"p:{uid}")
    assert moved == 5
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT product_id, decision, as_of, inputs::jsonb ->> 'cause' AS cause "
            "FROM credit.decisions WHERE product_id = ANY(:p) ORDER BY product_id, created_at"),
            {"p": products})).all()
        states = dict((await conn.execute(text(
            "SELECT product_id, state FROM credit.product_credit WHERE product_id = ANY(:p)"),
            {"p": products})).all())
    by_product: dict[str, list[tuple[str, datetime, str | None]]] = {}
    for r in rows:
        by_product.setdefault(r.product_id, []).append((r.decision, r.as_of, r.cause))
    assert states == dict.fromkeys(products, "normal")
    for p in products:
        notice, cleared = by_product[p]
        assert notice[0] == "bill_notice"
        # Each as of the change, or of its own last change when that came after it.
        assert cleared == ("arrears_cleared", max(changed, notice[1]), "credit profile")
    assert by_product[products[-1]][1][1] == late  # billed after the change: as of its bill
    async with db.begin() as conn:  # nothing more to do
        assert await reconsider.reconsider_customers(
            ctx, conn, customers, changed + timedelta(hours=1), trigger="credit profile",
            correlation=f"p:{uid}") == 0
