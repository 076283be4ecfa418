"""credit-control's event-driven use cases: balance events and provisioning results.

Deciding is pure (domain.rules, domain.model); this layer loads the facts, records the
decision, moves the state and writes the events, all in the caller's transaction.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock, business_date
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
from common.contracts.snapshots import CustomerSnapshot, ProductFamily, ProductSnapshot, Tier
from common.envelope import Contract, RawEnvelope, wrap
from common.idempotency import IdempotencyKeys
from common.logging import correlated, correlation_id
from common.outbox import Outbox

from ..adapters import admin_repository as admin_repo
from ..adapters import repository as repo
from ..config import Settings
from ..domain import rules
from ..domain.model import Action, action_for, can, next_state
from ..domain.profiles import CreditProfile
from ..domain.rule_table import RuleTable

log = logging.getLogger(__name__)
DECISION_NS = uuid.UUID("6f1c2a52-8f0e-4b7e-9a43-3d2b8a1c0e11")


class RuleCache:
    """The rule table in force; reloaded when a newer version was stored (by any process)."""

    def __init__(self) -> None:
        self.table: RuleTable | None = None

    async def current(self, conn: AsyncConnection) -> RuleTable:
        version = await admin_repo.rule_version(conn)
        if self.table is None or self.table.version != version:
            self.table, _ = await admin_repo.rule_table(conn)
        return self.table


@dataclass
class CreditContext:
    engine: AsyncEngine
    outbox: Outbox
    keys: IdempotencyKeys
    clock: Clock
    source: str = "credit-control"
    settings: Settings = field(default_factory=Settings)
    rules: RuleCache = field(default_factory=RuleCache)


@dataclass
class ProductView:
    """A locked product_credit row, kept current in memory while a batch decides on it."""

    product_id: str
    account_id: str
    family: str
    product: dict[str, Any]
    state: str
    command_seq: int
    warning_level: int = 0
    cycle: int = 0
    customer_id: str | None = None

    @classmethod
    def of(cls, row: Row[Any]) -> "ProductView":
        return cls(row.product_id, row.account_id, row.family, row.product, row.state,
                   int(row.command_seq), int(row.warning_level), int(row.cycle), row.customer_id)


@dataclass(frozen=True)
class Inputs:
    """What a decision was based on: shown by the explain endpoint."""

    facts: rules.AccountFacts
    tier: Tier
    star_level: int | None
    exemptions: list[dict[str, Any]]
    dues: list[dict[str, Any]]
    rule_version: int

    def as_json(self) -> dict[str, Any]:
        f = self.facts
        return {"balance_fen": f.balance_fen, "amount_due_fen": f.amount_due_fen,
                "dues": self.dues, "tier": self.tier.value, "star_level": self.star_level,
                "credit_limit_fen": f.credit_limit_fen, "exemptions": self.exemptions,
                "oldest_due_month": f.oldest_due_month.isoformat() if f.oldest_due_month
                else None, "cause": f.cause.value if f.cause else None,
                "rule_version": self.rule_version}


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
    snapshots = {p.product_id: (e, p) for _, e in fresh for p in e.products}
    views = {r.product_id: ProductView.of(r)
             for r in await repo.upsert_products_many(conn, list(snapshots.values()))}
    table = await ctx.rules.current(conn)
    profiles = await admin_repo.profiles_for(
        conn, sorted({e.customer.customer_id for _, e in fresh}))
    for envelope, event in fresh:
        with correlated(envelope.correlation_id or str(envelope.event_id)):
            await _decide_on_balance(ctx, conn, table, profiles[event.customer.customer_id],
                                     event, views)
    newest = {e.account_id: e for _, e in fresh}
    await repo.save_positions(conn, list(newest.values()))


def facts_of(event: BalanceChanged, profile: CreditProfile) -> rules.AccountFacts:
    oldest = repo.account_facts(event)["oldest_due_month"]
    return rules.AccountFacts(
        event.balance_fen, event.amount_due_fen, event.cause, event.closed_bill_month,
        oldest_due_month=oldest, credit_limit_fen=profile.limit_fen(event.customer.star_level))


def inputs_of(event: BalanceChanged, profile: CreditProfile, facts: rules.AccountFacts,
              table: RuleTable) -> Inputs:
    return Inputs(facts, event.customer.tier, profile.star(event.customer.star_level),
                  [{"kind": e.kind, "reason": e.reason, "approver": e.approver,
                    "until": e.until.isoformat() if e.until else None}
                   for e in profile.active_exemptions(event.as_of)],
                  [d.model_dump() for d in event.dues], table.version)


async def _decide_on_balance(
    ctx: CreditContext, conn: AsyncConnection, table: RuleTable, profile: CreditProfile,
    event: BalanceChanged, views: dict[str, ProductView],
) -> None:
    facts = facts_of(event, profile)
    today = business_date(event.as_of)
    for snapshot in sorted(event.products, key=lambda p: p.product_id):
        view = views[snapshot.product_id]
        product = rules.ProductFacts(
            ProductFamily(view.family), event.customer.tier, CreditState(view.state),
            view.warning_level, profile.star(event.customer.star_level),
            profile.suspension_exempt(event.as_of))
        intent = rules.on_balance(table, facts, product, today,
                                  event_key=f"seq:{event.sequence}")
        if intent is not None:
            view.account_id = event.account_id  # the event's account, even if it moved since
            await decide(ctx, conn, view, event.customer, inputs_of(event, profile, facts, table),
                         intent, event.as_of)


async def decide(
    ctx: CreditContext, conn: AsyncConnection, product: ProductView, customer: CustomerSnapshot,
    inputs: Inputs, intent: rules.Intent, as_of: datetime,
) -> bool:
    """Record one decision and act on it; False if it was already taken or no longer applies."""
    family = ProductFamily(product.family)
    action = action_for(intent.decision, family)
    before = CreditState(product.state)
    if not can(before, action):
        return False
    after = next_state(before, action)
    decision_id = rules.decision_id(product.product_id, intent.period, intent.decision,
                                    product.cycle)
    context = NoticeContext(
        customer=customer, product=ProductSnapshot.model_validate(product.product),
        amount_due_fen=inputs.facts.amount_due_fen, as_of_date=business_date(as_of),
        deadline=intent.deadline)
    if not await repo.insert_decision(conn, {
        "decision_id": decision_id, "product_id": product.product_id,
        "account_id": product.account_id, "decision": intent.decision.value,
        "rule_id": intent.rule_id, "reason": intent.reason, "state_before": before.value,
        "state_after": after.value, "as_of": as_of, "context": context.model_dump(mode="json"),
        "inputs": inputs.as_json(), "warning_level": intent.warning_level,
        "amount_fen": intent.amount_fen, "rule_version": inputs.rule_version,
    }):
        return False
    events: list[Contract] = [CreditDecisionMade(
        decision_id=decision_id, account_id=product.account_id, product_id=product.product_id,
        decision=intent.decision, rule_id=intent.rule_id, reason=intent.reason,
        state_before=before, state_after=after, as_of=as_of, context=context,
        warning_level=intent.warning_level, amount_fen=intent.amount_fen,
        rule_version=inputs.rule_version)]
    if action is not Action.DEDUCT:
        events += await _move(ctx, conn, product, customer, intent, decision_id, before, after,
                              action, context, as_of)
    for event in events:
        key = product.product_id if isinstance(event, ProvisioningCommand) else product.account_id
        await publish(ctx, conn, key, event)
    return True


async def _move(
    ctx: CreditContext, conn: AsyncConnection, product: ProductView, customer: CustomerSnapshot,
    intent: rules.Intent, decision_id: str, before: CreditState, after: CreditState,
    action: Action, context: NoticeContext, as_of: datetime,
) -> list[Contract]:
    family = ProductFamily(product.family)
    extra: dict[str, Any] = {}
    if intent.warning_level is not None:
        extra["warning_level"] = intent.warning_level
    events: list[Contract] = []
    command = _command_for(ctx, product, customer, intent.decision, decision_id, as_of)
    if command is not None:
        extra |= {"command_seq": command.sequence, "pending_command_id": command.command_id,
                  "pending_decision_id": decision_id, "command_action": command.action.value,
                  "command_at": as_of, "command_attempt": 1,
                  "command_sent_at": ctx.clock.now(), "retry_at": None,
                  "pending_work_order_id": None}
        events.append(command)
    elif family is ProductFamily.WORK_ORDER and action in (Action.REQUEST_SUSPEND,
                                                           Action.REQUEST_RESTORE):
        from .work_orders import open_work_order
        extra |= {"pending_decision_id": decision_id,
                  "pending_work_order_id": await open_work_order(
                      ctx, conn, product, ProvisioningAction(intent.decision.value), decision_id,
                      f"{intent.rule_id}: {intent.reason}", as_of)}
    elif action in (Action.SUSPEND_NOW, Action.RESTORE_NOW):
        events.append(CreditStateChanged(
            account_id=product.account_id, product_id=product.product_id,
            decision_id=decision_id, state_before=before, state_after=after, as_of=as_of,
            context=context))
    await repo.set_state(conn, product.product_id, before, after, as_of,
                         cause=f"{intent.rule_id}: {intent.reason}", decision_id=decision_id,
                         **extra)
    product.state = after.value  # later events of the same batch see the new state
    if after is CreditState.NORMAL:
        product.cycle += 1
        product.warning_level = 0
    if intent.warning_level is not None:
        product.warning_level = intent.warning_level
    if command is not None:
        product.command_seq = command.sequence
    return events


def _command_for(
    ctx: CreditContext, product: ProductView, customer: CustomerSnapshot,
    decision: DecisionType, decision_id: str, as_of: datetime,
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
        action=ProvisioningAction(decision.value), sequence=sequence, requested_at=as_of,
        attempt=1, customer_id=customer.customer_id)


# --- the closed loop ------------------------------------------------------------------------

async def apply_provisioning_result(
    ctx: CreditContext, conn: AsyncConnection, envelope: RawEnvelope, result: ProvisioningResult
) -> None:
    """Close the loop: applied confirms the state change; failed / timed_out schedules the
    next attempt (or, after the last one, a manual work order)."""
    if not result.final:
        return
    product = await repo.product_for_update(conn, result.product_id)
    if product is None or product.pending_command_id != result.command_id:
        log.info("result %s for a command no longer pending on %s", result.command_id,
                 result.product_id)
        return
    if result.outcome is StageOutcome.APPLIED:
        await confirm(ctx, conn, product, result.action, result.at,
                      f"chain confirmed {result.action.value} (attempt {result.attempt})")
        return
    if result.outcome is StageOutcome.SUPERSEDED or result.attempt != product.command_attempt:
        return  # a newer command or attempt is in flight
    if product.pending_work_order_id is not None:
        return  # already escalated
    await attempt_failed(ctx, conn, product, f"{result.outcome.value}: {result.detail}",
                         result.at)


async def attempt_failed(ctx: CreditContext, conn: AsyncConnection, product: Row[Any],
                         why: str, at: datetime) -> None:
    s = ctx.settings
    attempt = int(product.command_attempt)
    if attempt < s.loop_max_attempts:
        delay = timedelta(seconds=s.loop_backoff_s * 2 ** (attempt - 1))
        log.warning("chain attempt %d for %s failed (%s); retry in %s", attempt,
                    product.product_id, why, delay)
        await repo.set_loop(conn, product.product_id, retry_at=at + delay)
        return
    from .work_orders import escalate
    await escalate(ctx, conn, product, f"chain gave up after {attempt} attempts: {why}", at)


async def confirm(ctx: CreditContext, conn: AsyncConnection, product: Row[Any],
                  action: ProvisioningAction, at: datetime, cause: str) -> bool:
    """The suspension / restore really happened (gateway applied or work order done)."""
    move = (Action.CONFIRM_SUSPEND if action is ProvisioningAction.SUSPEND
            else Action.CONFIRM_RESTORE)
    before = CreditState(product.state)
    if not can(before, move):
        return False
    after = next_state(before, move)
    decision = await repo.decision(conn, product.pending_decision_id)
    assert decision is not None
    await repo.set_state(conn, product.product_id, before, after, at, cause=cause,
                         decision_id=decision.decision_id, pending_command_id=None,
                         pending_decision_id=None, retry_at=None, pending_work_order_id=None)
    await publish(ctx, conn, product.account_id, CreditStateChanged(
        account_id=product.account_id, product_id=product.product_id,
        decision_id=decision.decision_id, state_before=before, state_after=after, as_of=at,
        context=NoticeContext.model_validate(decision.context)))
    return True


async def publish(ctx: CreditContext, conn: AsyncConnection, key: str, event: Contract) -> None:
    await ctx.outbox.add(conn, event.topic, wrap(
        event, key=key, source=ctx.source, occurred_at=ctx.clock.now(),
        correlation_id=correlation_id.get()))
