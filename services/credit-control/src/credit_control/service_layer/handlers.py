"""credit-control's use cases. The Kafka consumer and the HTTP API both call these.

Deciding is pure (domain.rules, domain.model); this layer loads the facts, records the
decision, moves the state and writes the events, all in the caller's transaction.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock, business_date, ensure_aware
from common.contracts.billing import BalanceChanged
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
)
from common.contracts.gateway import (
    ProvisioningAction,
    ProvisioningCommand,
    ProvisioningResult,
    StageOutcome,
)
from common.contracts.snapshots import CustomerSnapshot, ProductFamily, ProductSnapshot
from common.db import retrying
from common.envelope import Contract, RawEnvelope, wrap
from common.errors import NotFound
from common.idempotency import IdempotencyKeys, StoredResponse
from common.logging import correlated, correlation_id
from common.outbox import Outbox

from ..adapters import repository as repo
from ..domain import rules
from ..domain.commands import RunSweep
from ..domain.model import Action, action_for, can, next_state

log = logging.getLogger(__name__)
DECISION_NS = uuid.UUID("6f1c2a52-8f0e-4b7e-9a43-3d2b8a1c0e11")


@dataclass
class CreditContext:
    engine: AsyncEngine
    outbox: Outbox
    keys: IdempotencyKeys
    clock: Clock
    source: str = "credit-control"


@dataclass
class ProductView:
    """A locked product_credit row, kept current in memory while a batch decides on it."""

    product_id: str
    account_id: str
    family: str
    product: dict[str, Any]
    state: str
    command_seq: int

    @classmethod
    def of(cls, row: Row[Any]) -> "ProductView":
        return cls(row.product_id, row.account_id, row.family, row.product, row.state,
                   int(row.command_seq))


async def apply_balance_events(
    ctx: CreditContext, conn: AsyncConnection, items: list[tuple[RawEnvelope, BalanceChanged]]
) -> None:
    """A batch of balance events of one partition, in order, with a few statements in all:
    lock the accounts' positions, upsert the products, decide in memory event by event
    (the rare decision writes its rows), then store each account's newest position."""
    applied = await repo.sequences_for_update(conn, sorted({e.account_id for _, e in items}))
    fresh: list[tuple[RawEnvelope, BalanceChanged]] = []
    for envelope, event in items:
        if event.sequence <= applied.get(event.account_id, 0):
            log.info("stale balance event for %s (seq %d)", event.account_id, event.sequence)
            continue
        applied[event.account_id] = event.sequence
        fresh.append((envelope, event))
    if not fresh:
        return
    snapshots = {p.product_id: (e.account_id, p, e.as_of) for _, e in fresh for p in e.products}
    views = {r.product_id: ProductView.of(r)
             for r in await repo.upsert_products_many(conn, list(snapshots.values()))}
    for envelope, event in fresh:
        with correlated(envelope.correlation_id or str(envelope.event_id)):
            await _decide_on_balance(ctx, conn, event, views)
    newest = {e.account_id: e for _, e in fresh}
    await repo.save_positions(conn, list(newest.values()))


async def _decide_on_balance(
    ctx: CreditContext, conn: AsyncConnection, event: BalanceChanged,
    views: dict[str, ProductView],
) -> None:
    facts = rules.AccountFacts(event.balance_fen, event.amount_due_fen, event.cause,
                               event.closed_bill_month)
    today = business_date(event.as_of)
    for snapshot in sorted(event.products, key=lambda p: p.product_id):
        view = views[snapshot.product_id]
        intent = rules.on_balance(facts, CreditState(view.state), today,
                                  event_key=f"seq:{event.sequence}")
        if intent is not None:
            view.account_id = event.account_id  # the event's account, even if it moved since
            await _decide(ctx, conn, view, event.customer, facts, intent, event.as_of)


async def run_sweep(ctx: CreditContext, cmd: RunSweep) -> StoredResponse:
    """Calendar rules for every owing account, one short transaction per account.

    Per account, so a sweep never holds thousands of locks or deadlocks with the consumer
    (both lock the position first, then the products in id order), and it always judges the
    newest amount due. Re-running is harmless (state-based, deterministic decision ids), so
    an interrupted sweep is simply run again when its id is replayed.
    """
    async with ctx.engine.begin() as conn:
        earlier = await ctx.keys.replay_or_reserve(conn, "sweep", cmd.sweep_id, cmd)
    if earlier is not None and earlier.status_code:
        return earlier
    body = await _sweep(ctx, ensure_aware(cmd.as_of))
    async with ctx.engine.begin() as conn:
        await ctx.keys.store(conn, "sweep", cmd.sweep_id, 201, body)
        return await ctx.keys.stored(conn, "sweep", cmd.sweep_id)


async def _sweep(ctx: CreditContext, as_of: datetime) -> dict[str, Any]:
    today = business_date(as_of)
    counts: dict[str, int] = {}
    if rules.is_calendar_day(today):
        async with ctx.engine.connect() as conn:
            accounts = await repo.owing_accounts(conn)
        for account_id in accounts:
            for decision in await retrying(
                lambda a=account_id: _sweep_account(ctx, a, today, as_of)  # type: ignore[misc]
            ):
                counts[decision] = counts.get(decision, 0) + 1
    return {"as_of": as_of.isoformat(), "business_date": today.isoformat(), "decisions": counts}


async def _sweep_account(
    ctx: CreditContext, account_id: str, today: date, as_of: datetime
) -> list[str]:
    async with ctx.engine.begin() as conn:
        position = await repo.position_for_update(conn, account_id)
        if position is None or position.amount_due_fen <= 0:
            return []  # paid since the list was read
        facts = rules.AccountFacts(position.balance_fen, position.amount_due_fen)
        customer = CustomerSnapshot.model_validate(position.customer)
        taken = []
        for row in await repo.products_for_update(conn, account_id):
            product = ProductView.of(row)
            intent = rules.on_sweep(facts, CreditState(product.state), today)
            if intent is not None and await _decide(ctx, conn, product, customer, facts,
                                                    intent, as_of):
                taken.append(intent.decision.value)
        return taken


async def apply_provisioning_result(
    ctx: CreditContext, conn: AsyncConnection, envelope: RawEnvelope, result: ProvisioningResult
) -> None:
    """Close the loop: a suspension is done when the gateway confirms it."""
    if not result.final:
        return
    product = await repo.product_for_update(conn, result.product_id)
    if product is None or product.pending_command_id != result.command_id:
        log.info("result %s for a command no longer pending on %s", result.command_id,
                 result.product_id)
        return
    if result.outcome is not StageOutcome.APPLIED:
        # Retries and escalation to a manual work order come with the full credit-control issue.
        log.warning("chain %s for %s: %s", result.outcome, result.product_id, result.detail)
        return
    action = (Action.CONFIRM_SUSPEND if result.action is ProvisioningAction.SUSPEND
              else Action.CONFIRM_RESTORE)
    before = CreditState(product.state)
    after = next_state(before, action)
    decision = await repo.decision(conn, product.pending_decision_id)
    assert decision is not None
    await repo.set_state(conn, product.product_id, before, after, result.at,
                         cause=f"chain confirmed {result.action.value}",
                         decision_id=decision.decision_id,
                         pending_command_id=None, pending_decision_id=None)
    await _publish(ctx, conn, product.account_id, CreditStateChanged(
        account_id=product.account_id, product_id=product.product_id,
        decision_id=decision.decision_id, state_before=before, state_after=after, as_of=result.at,
        context=NoticeContext.model_validate(decision.context)))


async def product_credit(ctx: CreditContext, product_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        product = await repo.product(conn, product_id)
        if product is None:
            raise NotFound(f"unknown product {product_id!r}", id=product_id)
        return {
            "product_id": product_id, "account_id": product.account_id,
            "family": product.family, "state": product.state,
            "state_changed_at": product.state_changed_at,
            "pending_command_id": product.pending_command_id,
            **await repo.history(conn, product_id),
        }


async def _decide(
    ctx: CreditContext, conn: AsyncConnection, product: ProductView, customer: CustomerSnapshot,
    facts: rules.AccountFacts, intent: rules.Intent, as_of: datetime,
) -> bool:
    """Record one decision and act on it; False if it was already taken or no longer applies."""
    family = ProductFamily(product.family)
    action = action_for(intent.decision, family)
    before = CreditState(product.state)
    if not can(before, action):
        return False
    after = next_state(before, action)
    decision_id = str(uuid.uuid5(DECISION_NS, f"{product.product_id}|{intent.decision}|"
                                              f"{intent.period}"))
    context = NoticeContext(
        customer=customer, product=ProductSnapshot.model_validate(product.product),
        amount_due_fen=facts.amount_due_fen, as_of_date=business_date(as_of),
        deadline=intent.deadline)
    if not await repo.insert_decision(conn, {
        "decision_id": decision_id, "product_id": product.product_id,
        "account_id": product.account_id, "decision": intent.decision.value,
        "rule_id": intent.rule_id, "reason": intent.reason, "state_before": before.value,
        "state_after": after.value, "as_of": as_of, "context": context.model_dump(mode="json"),
    }):
        return False
    command = _command_for(product, intent.decision, decision_id, as_of)
    extra: dict[str, Any] = {}
    if command is not None:
        extra = {"command_seq": command.sequence, "pending_command_id": command.command_id,
                 "pending_decision_id": decision_id}
    await repo.set_state(conn, product.product_id, before, after, as_of,
                         cause=f"{intent.rule_id}: {intent.reason}", decision_id=decision_id,
                         **extra)
    product.state = after.value  # later events of the same batch see the new state
    if command is not None:
        product.command_seq = command.sequence
    events: list[Contract] = [CreditDecisionMade(
        decision_id=decision_id, account_id=product.account_id, product_id=product.product_id,
        decision=intent.decision, rule_id=intent.rule_id, reason=intent.reason,
        state_before=before, state_after=after, as_of=as_of, context=context)]
    if command is not None:
        events.append(command)
    elif action in (Action.SUSPEND_NOW, Action.RESTORE_NOW):
        events.append(CreditStateChanged(
            account_id=product.account_id, product_id=product.product_id,
            decision_id=decision_id, state_before=before, state_after=after, as_of=as_of,
            context=context))
    for event in events:
        key = product.product_id if isinstance(event, ProvisioningCommand) else product.account_id
        await _publish(ctx, conn, key, event)
    return True


def _command_for(
    product: ProductView, decision: DecisionType, decision_id: str, as_of: datetime
) -> ProvisioningCommand | None:
    family = ProductFamily(product.family)
    if not family.uses_chain or decision not in (DecisionType.SUSPEND, DecisionType.RESTORE):
        return None
    sequence = int(product.command_seq) + 1
    snapshot = ProductSnapshot.model_validate(product.product)
    return ProvisioningCommand(
        command_id=str(uuid.uuid5(DECISION_NS, f"{decision_id}|cmd|{sequence}")),
        decision_id=decision_id, product_id=product.product_id, account_id=product.account_id,
        cpno=snapshot.cpno, family=family, vendor=snapshot.vendor,
        action=ProvisioningAction(decision.value), sequence=sequence, requested_at=as_of)


async def _publish(ctx: CreditContext, conn: AsyncConnection, key: str, event: Contract) -> None:
    await ctx.outbox.add(conn, event.topic, wrap(
        event, key=key, source=ctx.source, occurred_at=ctx.clock.now(),
        correlation_id=correlation_id.get()))
