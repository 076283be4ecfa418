"""A balance batch of a backlog's size writes its outbox events 16 of a topic to a row
(`common.outbox.packed`), each message still its own in `outbox_messages`, each topic's in
the order decided; a small batch writes one row an event (`balance_store.PACK_FROM`)."""

import json
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.billing import BalanceChanged
from common.envelope import RawEnvelope
from common.idempotency import IdempotencyKeys
from common.outbox import MIXED_KEYS, Outbox
from credit_control.adapters import tables as t
from credit_control.credit.service_layer.balance_events import apply_balance_events
from credit_control.credit.service_layer.balance_store import PACK_FROM, SqlBalanceStore
from credit_control.service_layer.context import CreditContext

from .helpers import at, bill_run_event, new_uid

pytestmark = [pytest.mark.integration]


def _bill_run(uid: str, i: int) -> tuple[RawEnvelope, BalanceChanged]:
    return bill_run_event(f"A{uid}-{i:03d}", f"K{uid}", [f"P{uid}-{i:03d}"], 5_000 + i,
                          at(date(2033, 4, 2), 9), "2033-03")


async def _apply(db: AsyncEngine, n: int) -> tuple[str, list[tuple[str, str, str]]]:
    """n accounts' bill runs in one batch; their outbox rows (event_type, key, payload)."""
    uid = new_uid()
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(2033, 4, 2), 10)))
    async with db.begin() as conn:
        before = await conn.scalar(text("SELECT coalesce(max(id), 0) FROM credit.outbox"))
        await apply_balance_events(SqlBalanceStore(ctx, conn),
                                   [_bill_run(uid, i) for i in range(n)])
        rows = (await conn.execute(text(
            "SELECT event_type, key, payload FROM credit.outbox WHERE id > :b ORDER BY id"),
            {"b": before})).all()
    return uid, [(r.event_type, r.key, r.payload) for r in rows]


async def _messages(db: AsyncEngine, uid: str) -> list[tuple[str, str, dict[str, object]]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT event_type, key, payload FROM credit.outbox_messages WHERE key LIKE :k "
            "ORDER BY id, position"), {"k": f"A{uid}-%"})
        return [(r.event_type, r.key, json.loads(r.payload)) for r in rows]


async def test_a_backlogs_batch_packs_its_events_each_still_its_own(db: AsyncEngine) -> None:
    n = PACK_FROM + 6
    uid, rows = await _apply(db, n)
    # One bill notice an account: n messages of one topic, in rows of 16.
    assert len(rows) == -(-n // 16)
    assert all(key == MIXED_KEYS for _, key, _ in rows)
    messages = await _messages(db, uid)
    assert [(kind, key) for kind, key, _ in messages] == [
        ("credit.decision_made", f"A{uid}-{i:03d}") for i in range(n)]
    for i, (_, key, envelope) in enumerate(messages):
        payload = envelope["payload"]
        assert envelope["key"] == key
        assert (payload["decision"], payload["product_id"]) == ("bill_notice",
                                                                f"P{uid}-{i:03d}")
        assert payload["context"]["amount_due_fen"] == 5_000 + i


async def test_a_small_batch_writes_a_row_an_event(db: AsyncEngine) -> None:
    uid, rows = await _apply(db, 3)
    assert [(kind, key) for kind, key, _ in rows] == [
        ("credit.decision_made", f"A{uid}-{i:03d}") for i in range(3)]
    assert all(not payload.startswith("[") for _, _, payload in rows)
