"""The balance path moves each account's position to the batch's newest event in one
statement that also says where the position was (migration 0032,
balance_sql.advance_positions): the stale events are the ones at or below it, what the
account owed before is the rating's, and a position already at or past the batch's newest
event is neither written nor moved back."""

import json
from datetime import date
from typing import Any

import msgspec
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
from common.envelope import RawEnvelope, encode, wrap
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.credit.service_layer.balance_events import Applied, apply_balance_events
from credit_control.credit.service_layer.balance_store import SqlBalanceStore
from credit_control.service_layer.context import CreditContext

from .helpers import at, new_uid

pytestmark = [pytest.mark.integration]


def _customer(uid: str, phone: str) -> CustomerSnapshot:
    return CustomerSnapshot(customer_id=f"K{uid}", name="集团", tier=Tier.MID,
                            account_manager=Person(name="王经理", phone="13900139000"),
                            contacts=(Person(name="联系人", phone=phone),))


class _Accounts:
    def __init__(self, db: AsyncEngine) -> None:
        self.db, self.uid = db, new_uid()
        self.ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                                 FixedClock(at(date(2031, 4, 1))))

    def event(self, account: str, seq: int, due: int,
              customer: CustomerSnapshot | None = None) -> tuple[RawEnvelope, BalanceChanged]:
        account_id = f"A{self.uid}-{account}"
        e = BalanceChanged(
            account_id=account_id, sequence=seq, cause=BalanceCause.CHARGE,
            as_of=at(date(2031, 4, seq)), balance_fen=-due, amount_due_fen=due,
            dues=(BillMonthDue(bill_month="2031-03", amount_due_fen=due),),
            customer=customer or _customer(self.uid, "13800138000"),
            products=(ProductSnapshot(product_id=f"P{self.uid}-{account}",
                                      cpno=f"CP{self.uid}{account}", name="集团V网",
                                      family=ProductFamily.ADC),))
        return wrap(e, key=account_id, source="test", occurred_at=e.as_of), e

    async def apply(self, *items: tuple[RawEnvelope, BalanceChanged]) -> Applied:
        async with self.db.begin() as conn:
            return await apply_balance_events(SqlBalanceStore(self.ctx, conn), list(items))

    async def position(self, account: str) -> tuple[Any, ...]:
        async with self.db.connect() as conn:
            return tuple((await conn.execute(text(
                "SELECT sequence, amount_due_fen, previous_sequence, previous_amount_due_fen, "
                "customer FROM credit.account_positions WHERE account_id = :a"),
                {"a": f"A{self.uid}-{account}"})).one())


async def test_a_batch_moves_each_position_to_its_newest_event_and_knows_the_one_before(
        db: AsyncEngine) -> None:
    accounts = _Accounts(db)
    first = await accounts.apply(accounts.event("a", 1, 100))
    assert await accounts.position("a") == (1, 100, None, None, _json(accounts.uid))
    assert first.due_before == {}  # no position before: nothing owed before

    # Offset order 3, 2, 4: 2 is stale behind 3; the position moves to 4, from 1.
    moved = _customer(accounts.uid, "13700137000")
    applied = await accounts.apply(accounts.event("a", 3, 300), accounts.event("a", 2, 200),
                                   accounts.event("a", 4, 400, moved))
    assert [e.sequence for e in applied.current] == [4]
    assert applied.due_before == {f"A{accounts.uid}-a": 100}
    assert applied.peak_due == {f"A{accounts.uid}-a": 400}
    assert await accounts.position("a") == (4, 400, 1, 100, json.loads(encode(moved)))


async def test_a_position_at_or_past_the_batch_stays_and_its_events_are_stale(
        db: AsyncEngine) -> None:
    accounts = _Accounts(db)
    await accounts.apply(accounts.event("a", 5, 500), accounts.event("b", 1, 100))

    # a's events are all at or below 5: nothing of a moves; b's fresh one does.
    applied = await accounts.apply(accounts.event("a", 5, 1), accounts.event("a", 3, 2),
                                   accounts.event("b", 2, 200))
    assert [e.account_id for e in applied.current] == [f"A{accounts.uid}-b"]
    assert applied.due_before == {f"A{accounts.uid}-b": 100}
    assert await accounts.position("a") == (5, 500, None, None, _json(accounts.uid))
    assert (await accounts.position("b"))[:4] == (2, 200, 1, 100)

    # A batch of stale events only applies nothing at all, and leaves the position as it was.
    assert await accounts.apply(accounts.event("a", 4, 9)) == Applied()
    assert await accounts.position("a") == (5, 500, None, None, _json(accounts.uid))


def _json(uid: str) -> Any:
    return json.loads(encode(_customer(uid, "13800138000")))


async def test_a_new_product_starts_at_its_earliest_event_of_the_batch(db: AsyncEngine) -> None:
    """A product's opening (April) and a charge posted today reach credit control in one batch;
    October's bill run, as of 11-02, in the next. The product starts normal as of its opening
    (the stored state_changed_at), so the bill run's notice is dated 11-02: started as of the
    newest event, it was dated today (`make run`'s demo, when both events shared a batch)."""
    accounts = _Accounts(db)

    def event(seq: int, cause: BalanceCause, day: date,
              due: int = 0) -> tuple[RawEnvelope, BalanceChanged]:
        _, e = accounts.event("a", seq, due)
        e = msgspec.structs.replace(e, cause=cause, as_of=at(day), dues=e.dues if due else (),
                                    closed_bill_month="2031-03" if due else None)
        return wrap(e, key=e.account_id, source="test", occurred_at=e.as_of), e

    async def read(sql: str) -> list[tuple[Any, ...]]:
        async with db.connect() as conn:
            found = await conn.execute(text(sql), {"p": f"P{accounts.uid}-a"})
            return [tuple(r) for r in found]

    await accounts.apply(event(1, BalanceCause.MASTER_DATA, date(2030, 10, 1)),
                         event(2, BalanceCause.CHARGE, date(2031, 5, 7)))
    assert await read("SELECT state, state_changed_at FROM credit.product_credit "
                      "WHERE product_id = :p") == [("normal", at(date(2030, 10, 1)))]
    await accounts.apply(event(3, BalanceCause.BILL_RUN, date(2031, 4, 2), due=9_900))
    assert await read("SELECT decision, as_of FROM credit.decisions WHERE product_id = :p"
                      ) == [("bill_notice", at(date(2031, 4, 2)))]
