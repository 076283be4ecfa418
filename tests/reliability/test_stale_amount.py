"""The invariant "no SMS left quoting an amount the product no longer owed of its own"
(invariants/stale_amount.py) on real PostgreSQL: a bill notice that left before the notifier
heard of the partial payment is fine, one that left after it quoting the old amount is
caught; and through the notifier's own receiving, the check is green when the held notice is
revised and red when the revision is skipped. Rows are written in a transaction that is
rolled back, so no other test (nor a running relay or sender) sees them."""

import uuid
from datetime import datetime, timedelta

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    DecisionType,
    ProductAmountChanged,
)
from common.envelope import to_bytes, wrap
from notifier.adapters.smsc import SimulatedSmsc
from notifier.domain.notices import notices_for
from notifier.domain.revision import fields_json
from notifier.entrypoints.consumer import CONTRACTS
from notifier.service_layer import receiving
from notifier.service_layer.context import NotifierContext
from tests.reliability.invariants.stale_amount import NAME, check_stale_amounts
from tests.reliability.test_stale_sms import T0, _decision, _publish

pytestmark = [pytest.mark.integration]
# Business time far ahead of the wall clock: the quiet hours hold the notice (a night already
# past on the wall clock would let it go at once).
NIGHT = datetime(2299, 11, 2, 22, 30, tzinfo=BUSINESS_TZ)


def _paid(prefix: str, amount_fen: int) -> ProductAmountChanged:
    return ProductAmountChanged(
        account_id=f"{prefix}A", product_id=f"{prefix}P", as_of=T0, sequence=2,
        state=CreditState.WARNED, amount_due_fen=amount_fen, previous_fen=12_345,
        account_amount_due_fen=amount_fen)


async def _left(conn: AsyncConnection, event: CreditDecisionMade, left_at: datetime,
                amount_fen: int) -> None:
    """The bill notice left at `left_at`, rendered with `amount_fen`."""
    for n in notices_for(event):
        fields = fields_json(n.fields).replace('"amount_fen":12345', f'"amount_fen":{amount_fen}')
        await conn.execute(text(
            "INSERT INTO notifier.messages (message_id, source_id, product_id, account_id, "
            "template, role, recipient_name, recipient, text, segments, status, claimed_at, "
            "submitted_at, attempts, fields) VALUES (:id, :src, :p, :a, :t, :role, :name, :r, "
            "'x', 1, 'submitted', :at, :at, 1, CAST(:f AS jsonb))"),
            {"id": n.message_id, "src": n.source_id, "p": event.product_id,
             "a": event.account_id, "t": n.template.value, "role": n.role.value,
             "name": n.recipient_name, "r": n.recipient_phone, "at": left_at, "f": fields})


@pytest.mark.parametrize(("left_after_change_s", "quoted_fen", "wrong"), [
    (-60, 12_345, 0),  # left a minute before the notifier heard of the payment: fine
    (2, 12_345, 0),  # left just after: within the grace, the claim may not have seen it
    (3600, 2_345, 0),  # left an hour after, revised: fine
    (3600, 12_345, 1),  # left an hour after quoting the old amount (planted violation)
])
async def test_a_notice_that_left_quoting_the_old_amount_is_caught(
    db: AsyncEngine, left_after_change_s: int, quoted_fen: int, wrong: int,
) -> None:
    prefix = f"amount{uuid.uuid4().hex[:8]}-"
    notice = _decision(prefix, DecisionType.BILL_NOTICE, CreditState.NORMAL, CreditState.WARNED)
    paid_at = T0 + timedelta(hours=1)
    async with db.connect() as conn, conn.begin() as trans:
        await _publish(conn, notice, T0)
        await _publish(conn, _paid(prefix, 2_345), paid_at)
        await _left(conn, notice, paid_at + timedelta(seconds=left_after_change_s), quoted_fen)
        found = await check_stale_amounts(conn, prefix)
        await trans.rollback()
    assert (found.name, found.expected, found.wrong) == (NAME, 1, wrong), found
    if wrong:
        assert "quoting 123.45 yuan, but the product owed 23.45 of its own" in found.examples[0]


@pytest.mark.parametrize(("revised", "wrong"), [(True, 0), (False, 1)])
async def test_the_check_fails_when_the_notifier_skips_the_revision(
    db: AsyncEngine, monkeypatch: pytest.MonkeyPatch, revised: bool, wrong: int,
) -> None:
    """The notifier's own receiving: a bill notice held at 22:30, the partial payment's amount
    change at 23:10, the notice leaves at 08:00. Green as the notifier is; red (one wrong)
    with its revision taken out."""
    if not revised:
        async def skipped(*_: object) -> None:
            return None
        monkeypatch.setattr(receiving, "_revise_amounts", skipped)
    prefix = f"amount{uuid.uuid4().hex[:8]}-"
    clock = FixedClock(NIGHT)
    ctx = NotifierContext(db, SimulatedSmsc(db, clock), clock)
    notice = _decision(prefix, DecisionType.BILL_NOTICE, CreditState.NORMAL, CreditState.WARNED)
    notice = msgspec.structs.replace(notice, as_of=NIGHT)
    change = _paid(prefix, 2_345)
    morning = NIGHT + timedelta(hours=9, minutes=30)
    async with db.connect() as conn, conn.begin() as trans:
        for event, at in ((notice, NIGHT), (change, NIGHT + timedelta(minutes=40))):
            clock.set(at)
            await _publish(conn, event, at)
            env = CONTRACTS.decode(to_bytes(wrap(event, key=event.account_id,
                                                 source="credit-control", occurred_at=at)))
            await receiving.apply_credit_events(ctx, conn, [(env, env.payload)])
        await conn.execute(text(
            "UPDATE notifier.messages SET status = 'submitted', attempts = 1, claimed_at = :at, "
            "submitted_at = :at WHERE product_id = :p AND status = 'held'"),
            {"at": morning, "p": notice.product_id})
        found = await check_stale_amounts(conn, prefix)
        await trans.rollback()
    assert (found.expected, found.wrong) == (1, wrong), found
