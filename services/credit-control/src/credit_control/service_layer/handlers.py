"""credit-control's context and its event-driven use cases: provisioning results (the closed
loop). Balance events are decided set-wise per batch in `balance_events`.

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

from common.clock import Clock, carried_business_time
from common.contracts.credit_control import (
    CreditState,
    CreditStateChanged,
    NoticeContext,
)
from common.contracts.gateway import (
    ProvisioningAction,
    ProvisioningResult,
    StageOutcome,
)
from common.envelope import Contract, RawEnvelope, convert, wrap
from common.idempotency import IdempotencyKeys
from common.logging import correlation_id
from common.outbox import Outbox

from ..adapters import admin_repository as admin_repo
from ..adapters import repository as repo
from ..config import Settings
from ..domain.model import Action, can, next_state
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
    # Business time: the chain and staff report wall-clock time, while the decision may be
    # for another business moment (a back-dated run, a simulation); the confirmation lands
    # that long after the decision's own business time (common.clock). The wall time stays
    # on the event's envelope (occurred_at). Retention is counted from this moment.
    at = carried_business_time(at, decision.as_of, decision.created_at, ctx.clock.now())
    await repo.set_state(conn, product.product_id, before, after, at, cause=cause,
                         decision_id=decision.decision_id, pending_command_id=None,
                         pending_decision_id=None, retry_at=None, pending_work_order_id=None)
    await publish(ctx, conn, product.account_id, CreditStateChanged(
        account_id=product.account_id, product_id=product.product_id,
        decision_id=decision.decision_id, state_before=before, state_after=after, as_of=at,
        context=convert(decision.context, NoticeContext),
        # A restore decided while the suspension was still only requested overtook it: the
        # service never stopped, so the customer gets no "已可正常使用".
        service_was_suspended=(decision.state_before != CreditState.SUSPEND_REQUESTED.value
                               if action is ProvisioningAction.RESTORE else None)))
    if product.pending_work_order_id is not None:
        from .work_orders import cancel_if_open
        await cancel_if_open(ctx, conn, product.pending_work_order_id, at, cause)
    return True


async def publish(ctx: CreditContext, conn: AsyncConnection, key: str, event: Contract) -> None:
    await ctx.outbox.add(conn, event.topic, wrap(
        event, key=key, source=ctx.source, occurred_at=ctx.clock.now(),
        correlation_id=correlation_id.get()))
