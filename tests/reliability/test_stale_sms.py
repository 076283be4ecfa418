"""The invariant "no SMS was sent whose reason no longer held when it left" (invariants/
stale_sms.py) on real PostgreSQL: green when the reminder left before the payment reached the
notifier, and it catches a planted violation (the same reminder leaving after). Rows are
written in a transaction that is rolled back, so no other test sees them."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
    ProductAmountChanged,
    SuspensionDeferred,
)
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import to_bytes, wrap
from notifier.domain.notices import notices_for
from tests.reliability.invariants.stale_sms import check_stale_sms

pytestmark = [pytest.mark.integration]
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def _ctx(prefix: str) -> NoticeContext:
    return NoticeContext(
        customer=CustomerSnapshot(
            customer_id=f"{prefix}C", name="某某科技有限公司", tier=Tier.MID,
            account_manager=Person(name="张经理", phone="13900000001"),
            contacts=(Person(name="联系人", phone="13800000001"),)),
        product=ProductSnapshot(product_id=f"{prefix}P", cpno="CP1", name="企信通",
                                family=ProductFamily.ADC),
        amount_due_fen=12_345, as_of_date=date(2026, 11, 25), deadline=date(2026, 11, 30))


async def _publish(conn: AsyncConnection,
                   event: CreditDecisionMade | CreditStateChanged | ProductAmountChanged
                   | SuspensionDeferred,
                   applied_at: datetime | None) -> None:
    """In credit-control's outbox and, with `applied_at`, applied by the notifier then."""
    env = wrap(event, key=event.account_id, source="credit-control", occurred_at=T0)
    await conn.execute(text(
        "INSERT INTO credit.outbox (event_id, topic, key, event_type, payload) "
        "VALUES (:id, 'credit.decisions.v1', :k, :t, :p)"),
        {"id": env.event_id, "k": event.account_id, "t": event.event_type,
         "p": to_bytes(env).decode()})
    if applied_at is None:
        return
    await conn.execute(text(
        "INSERT INTO notifier.inbox (consumer, event_id, topic, applied_at) "
        "VALUES ('notifier', :id, 'credit.decisions.v1', :at)"),
        {"id": env.event_id, "at": applied_at})


async def _sent(conn: AsyncConnection, event: CreditDecisionMade | CreditStateChanged,
                left_at: datetime) -> None:
    for n in notices_for(event):
        await conn.execute(text(
            "INSERT INTO notifier.messages (message_id, source_id, product_id, account_id, "
            "template, role, recipient_name, recipient, text, segments, status, claimed_at, "
            "submitted_at, attempts) VALUES (:id, :src, :p, :a, :t, :role, :name, :r, 'x', 1, "
            "'submitted', :at, :at, 1)"),
            {"id": n.message_id, "src": n.source_id, "p": event.product_id,
             "a": event.account_id, "t": n.template.value, "role": n.role.value,
             "name": n.recipient_name, "r": n.recipient_phone, "at": left_at})


def _decision(prefix: str, kind: DecisionType, before: CreditState,
              after: CreditState) -> CreditDecisionMade:
    return CreditDecisionMade(
        decision_id=str(uuid.uuid4()), account_id=f"{prefix}A", product_id=f"{prefix}P",
        decision=kind, rule_id="r", reason="why", state_before=before, state_after=after,
        as_of=T0, context=_ctx(prefix))


@pytest.mark.parametrize(("left_after_payment_s", "wrong"), [
    (-60, 0),  # left a minute before the notifier heard of the payment: fine
    (2, 0),  # left just after: within the grace, the claim may not have seen it
    (3600, 1),  # left an hour after: its reason had gone (planted violation)
])
async def test_a_reminder_that_left_after_the_payment_is_caught(
    db: AsyncEngine, left_after_payment_s: int, wrong: int
) -> None:
    prefix = f"stale{uuid.uuid4().hex[:8]}-"
    warning = _decision(prefix, DecisionType.SUSPENSION_WARNING, CreditState.WARNED,
                        CreditState.SUSPENSION_WARNED)
    cleared = _decision(prefix, DecisionType.ARREARS_CLEARED, CreditState.SUSPENSION_WARNED,
                        CreditState.NORMAL)
    paid_at = T0 + timedelta(hours=1)
    async with db.connect() as conn, conn.begin() as trans:
        await _publish(conn, warning, T0)
        await _publish(conn, cleared, paid_at)
        await _sent(conn, warning, paid_at + timedelta(seconds=left_after_payment_s))
        found = await check_stale_sms(conn, prefix)
        await trans.rollback()
    assert (found.expected, found.wrong) == (1, wrong), found
    if wrong:
        assert "arrears cleared since the decision" in found.examples[0]


async def test_a_restore_notice_that_left_after_a_new_suspension_is_caught(
    db: AsyncEngine,
) -> None:
    prefix = f"stale{uuid.uuid4().hex[:8]}-"
    ctx = _ctx(prefix)

    def change(before: CreditState, after: CreditState) -> CreditStateChanged:
        return CreditStateChanged(account_id=f"{prefix}A", product_id=f"{prefix}P",
                                  decision_id=str(uuid.uuid4()), state_before=before,
                                  state_after=after, as_of=T0, context=ctx)

    restore = change(CreditState.SUSPENDED, CreditState.NORMAL)
    again = change(CreditState.SUSPEND_REQUESTED, CreditState.SUSPENDED)
    async with db.connect() as conn, conn.begin() as trans:
        await _publish(conn, restore, T0)
        await _publish(conn, again, T0 + timedelta(minutes=5))
        await _sent(conn, restore, T0 + timedelta(hours=10))  # held overnight, then sent
        found = await check_stale_sms(conn, prefix)
        await trans.rollback()
    assert found.wrong == 1, found
    assert "suspended again since the restore" in found.examples[0]


@pytest.mark.parametrize(("left_after_promise_s", "wrong"), [(-60, 0), (3600, 1)])
async def test_a_suspension_warning_that_left_after_a_promise_deferred_it_is_caught(
    db: AsyncEngine, left_after_promise_s: int, wrong: int,
) -> None:
    """A promise to pay deferred the suspension (credit.suspension_deferred): a suspension
    warning made before it that left an hour after the notifier heard of it named a date no
    suspension followed on; one that left before is fine."""
    prefix = f"stale{uuid.uuid4().hex[:8]}-"
    warning = _decision(prefix, DecisionType.SUSPENSION_WARNING, CreditState.WARNED,
                        CreditState.SUSPENSION_WARNED)
    deferral = SuspensionDeferred(account_id=f"{prefix}A", product_id=f"{prefix}P",
                                  promise_id=f"{prefix}PR", as_of=T0,
                                  promised_date=date(2026, 12, 5))
    promised_at = T0 + timedelta(minutes=10)
    async with db.connect() as conn, conn.begin() as trans:
        await _publish(conn, warning, T0)
        await _publish(conn, deferral, promised_at)
        await _sent(conn, warning, promised_at + timedelta(seconds=left_after_promise_s))
        found = await check_stale_sms(conn, prefix)
        await trans.rollback()
    assert (found.expected, found.wrong) == (1, wrong), found
    if wrong:
        assert "a promise to pay deferred the suspension" in found.examples[0]
