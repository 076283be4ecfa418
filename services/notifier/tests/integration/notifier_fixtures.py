"""Builders shared by notifier's integration tests: credit events, a context on a fixed clock
in a year no other test uses (so a running notifier's wall-clock sender never takes these
messages), and helpers to drain the queue and read a product's log."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    DeductionCollected,
    NoticeContext,
    ProductAmountChanged,
)
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import RawEnvelope, to_bytes, wrap
from notifier.adapters.smsc import SimulatedSmsc
from notifier.entrypoints.consumer import CONTRACTS
from notifier.service_layer.context import NotifierContext
from notifier.service_layer.receiving import NotifierEvent, apply_credit_events
from notifier.service_layer.sending import send_pending


def local(year: int, text: str) -> datetime:
    """'11-25 07:30' in `year`, Asia/Shanghai."""
    return datetime.fromisoformat(f"{year}-{text}").replace(tzinfo=BUSINESS_TZ)


def context_for(
    uid: str, year: int, product_id: str | None = None,
    contacts: tuple[str, ...] = ("13800000001",),
    manager: str = "13900000001", amount_fen: int = 12_345, exempt: bool = False,
) -> NoticeContext:
    return NoticeContext(
        customer=CustomerSnapshot(
            customer_id=f"C{uid}", name=f"某某科技有限公司{uid}", tier=Tier.MID,
            account_manager=Person(name="张经理", phone=manager),
            contacts=tuple(Person(name=f"联系人{i}", phone=p) for i, p in enumerate(contacts))),
        product=ProductSnapshot(product_id=product_id or f"P{uid}", cpno=f"CP{uid}",
                                name="企信通", family=ProductFamily.ADC),
        amount_due_fen=amount_fen, as_of_date=date(year, 11, 2), deadline=date(year, 11, 25),
        suspension_exempt=exempt)


def _day_start(ctx: NoticeContext) -> datetime:
    return datetime.combine(ctx.as_of_date, datetime.min.time(), tzinfo=BUSINESS_TZ)


def decision(
    ctx: NoticeContext, kind: DecisionType = DecisionType.BILL_NOTICE,
    decision_id: str | None = None, at: datetime | None = None,
    before: CreditState = CreditState.NORMAL, after: CreditState = CreditState.WARNED,
    **extra: Any,
) -> CreditDecisionMade:
    """`at`: the decision's business time (quiet hours follow it); default the context's day
    at 00:00."""
    return CreditDecisionMade(
        decision_id=decision_id or str(uuid.uuid4()), account_id=f"A{ctx.product.product_id}",
        product_id=ctx.product.product_id, decision=kind, rule_id="r", reason="why",
        state_before=before, state_after=after, as_of=at or _day_start(ctx), context=ctx,
        **extra)


def state_change(
    ctx: NoticeContext, before: CreditState, after: CreditState,
    decision_id: str | None = None, at: datetime | None = None,
) -> CreditStateChanged:
    return CreditStateChanged(
        account_id=f"A{ctx.product.product_id}", product_id=ctx.product.product_id,
        decision_id=decision_id or str(uuid.uuid4()), state_before=before, state_after=after,
        as_of=at or _day_start(ctx), context=ctx)


def suspended(ctx: NoticeContext, decision_id: str | None = None,
              at: datetime | None = None) -> CreditStateChanged:
    return state_change(ctx, CreditState.SUSPEND_REQUESTED, CreditState.SUSPENDED,
                        decision_id, at)


def restored(ctx: NoticeContext, decision_id: str | None = None,
             at: datetime | None = None) -> CreditStateChanged:
    return state_change(ctx, CreditState.SUSPENDED, CreditState.NORMAL, decision_id, at)


def amount_changed(
    ctx: NoticeContext, amount_fen: int, at: datetime, account_fen: int | None = None,
    state: CreditState = CreditState.WARNED, sequence: int = 2,
) -> ProductAmountChanged:
    """credit-control's word that the product now owes `amount_fen` of its own."""
    return ProductAmountChanged(
        account_id=f"A{ctx.product.product_id}", product_id=ctx.product.product_id, as_of=at,
        sequence=sequence, state=state, amount_due_fen=amount_fen,
        previous_fen=ctx.amount_due_fen,
        account_amount_due_fen=amount_fen if account_fen is None else account_fen)


def collected(
    ctx: NoticeContext, collected_fen: int, at: datetime, deduction_id: str | None = None,
    sequence: int = 2,
) -> DeductionCollected:
    """credit-control's word that billing's deduction `deduction_id` (a decision's id) paid
    `collected_fen` of the product's arrears from the deposit at `at` (business time)."""
    return DeductionCollected(
        account_id=f"A{ctx.product.product_id}", product_id=ctx.product.product_id,
        deduction_id=deduction_id or str(uuid.uuid4()), as_of=at, sequence=sequence,
        collected_fen=collected_fen, context=ctx)


def envelope(event: NotifierEvent, occurred_at: datetime) -> RawEnvelope:
    env = wrap(event, key=event.account_id, source="credit-control", occurred_at=occurred_at)
    return CONTRACTS.decode(to_bytes(env))  # as the consumer receives it


def make_ctx(db: AsyncEngine, clock: FixedClock, **kw: Any) -> NotifierContext:
    smsc = SimulatedSmsc(db, clock)
    return NotifierContext(db, smsc, clock, smsc=smsc, send_backoff_base_s=10.0, **kw)


async def receive(ctx: NotifierContext, *events: NotifierEvent,
                  decided_at: datetime | None = None) -> int:
    at = decided_at or ctx.clock.now()
    async with ctx.engine.begin() as conn:
        # As the consumer hands them over: decoded from the wire (enums typed, bounds checked).
        received = [envelope(e, at) for e in events]
        return await apply_credit_events(ctx, conn, [(env, env.payload) for env in received])


async def drain(ctx: NotifierContext, as_of: datetime | None = None) -> None:
    """Send until nothing is due (other tests' rows may share the queue)."""
    for _ in range(100):
        if await send_pending(ctx, as_of) == 0:
            return


async def log_of(db: AsyncEngine, product_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT * FROM notifier.messages WHERE product_id = :p ORDER BY created_at, "
            "template, recipient"), {"p": product_id})
        return [dict(r._mapping) for r in rows]


async def smsc_rows(db: AsyncEngine, message_ids: list[str]) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT * FROM notifier.smsc_received WHERE client_ref = ANY(:ids)"),
            {"ids": message_ids})
        return [dict(r._mapping) for r in rows]
