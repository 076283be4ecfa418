"""credit-control's event-driven use cases: provisioning results (the closed loop). Balance
events are decided set-wise per batch in `balance_events`.

The product's credit (domain/product_credit.py) decides every move: this layer loads it,
asks it, saves it, and writes the history and the events, in the caller's transaction.
`CreditContext` lives in `context` (re-exported here for the callers that import it here).
"""

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import carried_business_time
from common.contracts.credit_control import CreditState, NoticeContext
from common.contracts.gateway import ProvisioningAction, ProvisioningResult, StageOutcome
from common.envelope import RawEnvelope, convert

from ...service_layer.context import CreditContext, RuleCache, publish
from ..adapters import balance_sql
from ..adapters import repository as repo
from ..adapters.product_credits import SqlProductCredits
from ..domain.product_credit import DECISION_NS, Change, DecisionFacts, Escalate, ProductCredit
from .work_order_book import cancel_if_open, open_work_order

__all__ = ["DECISION_NS", "CreditContext", "RuleCache", "apply_provisioning_result",
           "attempt_failed", "confirm", "publish"]
log = logging.getLogger(__name__)


async def apply_provisioning_result(
    ctx: CreditContext, conn: AsyncConnection, envelope: RawEnvelope, result: ProvisioningResult
) -> None:
    """Close the loop: applied confirms the state change; failed / timed_out schedules the
    next attempt (or, after the last one, a manual work order)."""
    if not result.final:
        return
    products = SqlProductCredits(conn)
    product = (await products.load([result.product_id])).get(result.product_id)
    if product is None or product.pending_command_id != result.command_id:
        log.info("result %s for a command no longer pending on %s", result.command_id,
                 result.product_id)
        return
    if result.outcome is StageOutcome.APPLIED:
        await confirm(ctx, conn, product, result.action, result.at,
                      f"chain confirmed {result.action.value} (attempt {result.attempt})")
        await products.save([product])
        return
    if result.outcome is StageOutcome.SUPERSEDED or result.attempt != product.command_attempt:
        return  # a newer command or attempt is in flight
    if product.pending_work_order_id is not None:
        return  # already escalated
    await attempt_failed(ctx, conn, product, f"{result.outcome.value}: {result.detail}",
                         result.at)
    await products.save([product])


async def attempt_failed(ctx: CreditContext, conn: AsyncConnection, product: ProductCredit,
                         why: str, at: datetime) -> None:
    """The aggregate says retry (its backoff) or escalate (a work order); the caller saves."""
    s = ctx.settings
    outcome = product.fail(at, why, s.loop_max_attempts, s.loop_backoff_s)
    if isinstance(outcome, Escalate):
        assert product.command_action is not None and product.pending_decision_id is not None
        work_order = await open_work_order(
            ctx, conn, product, product.command_action, product.pending_decision_id,
            outcome.reason, at, key=f"escalation:{product.pending_command_id}")
        product.escalated(work_order)
        return
    log.warning("chain attempt %d for %s failed (%s); retry at %s", product.command_attempt,
                product.product_id, why, outcome.at)


async def confirm(ctx: CreditContext, conn: AsyncConnection, product: ProductCredit,
                  action: ProvisioningAction, at: datetime, cause: str) -> bool:
    """The suspension / restore really happened (gateway applied or work order done). The
    caller saves the product."""
    if product.pending_decision_id is None:
        return False
    decision = await repo.decision(conn, product.pending_decision_id)
    assert decision is not None
    # Business time: the chain and staff report wall-clock time, while the decision may be
    # for another business moment (a back-dated run, a simulation); the confirmation lands
    # that long after the decision's own business time (common.clock). The wall time stays
    # on the event's envelope (occurred_at). Retention is counted from this moment.
    at = carried_business_time(at, decision.as_of, decision.created_at, ctx.clock.now())
    escalation = product.pending_work_order_id
    confirmed = product.confirm(action, at, cause, DecisionFacts(
        decision.decision_id, convert(decision.context, NoticeContext),
        CreditState(decision.state_before)))
    if confirmed is None:
        return False
    change, event = confirmed
    await balance_sql.insert_history(conn, history_rows(product.product_id, [change]))
    await publish(ctx, conn, product.account_id, event)
    if escalation is not None:
        await cancel_if_open(ctx, conn, escalation, at, cause)
    return True


def history_rows(product_id: str, changes: list[Change]) -> balance_sql.HistoryRows:
    rows = balance_sql.HistoryRows()
    for c in changes:
        rows.product_id.append(product_id)
        rows.state_before.append(c.before.value)
        rows.state_after.append(c.after.value)
        rows.cause.append(c.cause)
        rows.decision_id.append(c.decision_id)
        rows.at.append(c.at)
    return rows
