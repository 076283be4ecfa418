"""Work orders (工单) and the closed loop's retries.

WORK_ORDER products are suspended and restored by people: a work order from the start, the
state changes when it is done. Chain products get one when the chain gave up.
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import carried_business_time
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import ProductFamily, ProductSnapshot
from common.envelope import convert
from common.errors import Conflict, NotFound

from ..adapters import admin_repository as admin_repo
from ..adapters import repository as repo
from ..domain.commands import Role
from .handlers import CreditContext, ProductView, attempt_failed, confirm, publish


def _id(*parts: str) -> str:
    return "WO-" + hashlib.md5("|".join(parts).encode()).hexdigest()[:20]


def _step(at: datetime, by: str, status: str, role: str, note: str,
          business_at: datetime | None = None) -> dict[str, Any]:
    step = {"at": at.isoformat(), "by": by, "status": status, "role": role, "note": note}
    if business_at is not None:  # a staff step: wall time (at) and the run's business time
        step["business_at"] = business_at.isoformat()
    return step


async def _business_at(ctx: CreditContext, conn: AsyncConnection, decision_id: str,
                       at: datetime) -> datetime:
    """A staff step's business time: its decision's, plus the wall time since (a back-dated
    run's work order is done in that run's month)."""
    decision = await repo.decision(conn, decision_id)
    if decision is None:
        return at
    return carried_business_time(at, decision.as_of, decision.created_at, ctx.clock.now())


async def open_work_order(
    ctx: CreditContext, conn: AsyncConnection, product: ProductView, action: ProvisioningAction,
    decision_id: str, reason: str, at: datetime, key: str = "", role: Role = Role.OPERATOR,
) -> str:
    work_order_id = _id(decision_id, action.value, key)
    await admin_repo.insert_work_order(conn, {
        "work_order_id": work_order_id, "product_id": product.product_id,
        "account_id": product.account_id, "customer_id": product.customer_id,
        "action": action.value, "decision_id": decision_id, "reason": reason,
        "status": "created", "role": role.value, "assignee": None,
        "due_at": at + timedelta(hours=ctx.settings.work_order_due_hours),
        "created_at": at, "updated_at": at,
        "steps": [_step(at, ctx.source, "created", role.value, reason)],
    })
    await cancel_superseded(ctx, conn, product.product_id, action, at,
                            f"superseded by {work_order_id} ({action.value})", work_order_id)
    return work_order_id


async def cancel_superseded(ctx: CreditContext, conn: AsyncConnection, product_id: str,
                            action: ProvisioningAction, at: datetime, why: str,
                            keep: str | None = None) -> None:
    """A suspension still open when a payment arrives is not to be carried out any more (nor
    a restore once a new suspension is decided): an operator must not act on it by hand."""
    for other in await admin_repo.open_work_orders_for(conn, product_id):
        if other.work_order_id != keep and other.action != action.value:
            await admin_repo.update_work_order(
                conn, other.work_order_id, status="cancelled", updated_at=at,
                steps=[*other.steps, _step(at, ctx.source, "cancelled", other.role, why)])


async def escalate(ctx: CreditContext, conn: AsyncConnection, product: Row[Any], why: str,
                   at: datetime) -> None:
    view = ProductView.of(product)
    work_order_id = await open_work_order(
        ctx, conn, view, ProvisioningAction(product.command_action), product.pending_decision_id,
        why, at, key=f"escalation:{product.pending_command_id}")
    await repo.set_loop(conn, product.product_id, pending_work_order_id=work_order_id,
                        retry_at=None)


async def cancel_if_open(ctx: CreditContext, conn: AsyncConnection, work_order_id: str,
                         at: datetime, why: str) -> None:
    """The chain answered after all: an escalation still open is not to be done by hand (it
    would stay overdue for ever, and its `done` would change nothing)."""
    wo = await admin_repo.work_order_for_update(conn, work_order_id)
    if wo is None or wo.status not in admin_repo.OPEN_STATUSES:
        return
    await admin_repo.update_work_order(
        conn, work_order_id, status="cancelled", updated_at=at,
        steps=[*wo.steps, _step(at, ctx.source, "cancelled", wo.role, why)])


async def run_loop(ctx: CreditContext, at: datetime, limit: int = 500) -> dict[str, int]:
    """Resend attempts whose backoff ran out; count an attempt with no final result in time
    as failed. Safe to run from several processes (rows are skipped when locked)."""
    counts = {"retried": 0, "timed_out": 0}
    async with ctx.engine.begin() as conn:
        for product in await repo.loop_due(conn, at, ctx.settings.loop_timeout_s, limit):
            if product.retry_at is not None:
                await _resend(ctx, conn, product, at)
                counts["retried"] += 1
            else:
                await attempt_failed(ctx, conn, product, "no final result in time", at)
                counts["timed_out"] += 1
    return counts


async def _resend(ctx: CreditContext, conn: AsyncConnection, product: Row[Any],
                  at: datetime) -> None:
    snapshot = convert(product.product, ProductSnapshot)
    attempt = int(product.command_attempt) + 1
    await publish(ctx, conn, product.product_id, ProvisioningCommand(
        command_id=product.pending_command_id, decision_id=product.pending_decision_id,
        product_id=product.product_id, account_id=product.account_id, cpno=snapshot.cpno,
        family=ProductFamily(product.family), vendor=snapshot.vendor,
        action=ProvisioningAction(product.command_action), sequence=int(product.command_seq),
        requested_at=product.command_at, attempt=attempt, customer_id=product.customer_id))
    await repo.set_loop(conn, product.product_id, command_attempt=attempt,
                        command_sent_at=ctx.clock.now(), retry_at=None)


# --- staff steps ----------------------------------------------------------------------------

async def assign(ctx: CreditContext, work_order_id: str, by: str, assignee: str, role: Role,
                 note: str, at: datetime) -> dict[str, Any]:
    async with ctx.engine.begin() as conn:
        wo = await _open(conn, work_order_id)
        business = await _business_at(ctx, conn, wo.decision_id, at)
        await admin_repo.update_work_order(
            conn, work_order_id, status="assigned", assignee=assignee, role=role.value,
            updated_at=at, steps=[*wo.steps, _step(at, by, "assigned", role.value,
                                                   f"to {assignee}. {note}".strip(), business)])
    return await get(ctx, work_order_id)


async def finish(ctx: CreditContext, work_order_id: str, by: str, done: bool, note: str,
                 at: datetime) -> dict[str, Any]:
    """Done: the product's state changes now. Failed: recorded, and a follow-up work order
    goes to the group billing manager, so no suspension is dropped."""
    async with ctx.engine.begin() as conn:
        wo = await _open(conn, work_order_id)
        status = "done" if done else "failed"
        business = await _business_at(ctx, conn, wo.decision_id, at)
        await admin_repo.update_work_order(
            conn, work_order_id, status=status, updated_at=at,
            steps=[*wo.steps, _step(at, by, status, wo.role, note, business)])
        product = await repo.product_for_update(conn, wo.product_id)
        assert product is not None
        if product.pending_work_order_id != work_order_id:
            return await _get(conn, work_order_id)
        if done:
            await confirm(ctx, conn, product, ProvisioningAction(wo.action), at,
                          f"work order {work_order_id} done by {by}: {note}")
        else:
            follow_up = await open_work_order(
                ctx, conn, ProductView.of(product), ProvisioningAction(wo.action),
                wo.decision_id, f"follow-up of failed {work_order_id}: {note}", at,
                key=f"follow-up:{work_order_id}", role=Role.GROUP_BILLING_MANAGER)
            await repo.set_loop(conn, product.product_id, pending_work_order_id=follow_up)
        return await _get(conn, work_order_id)


async def _open(conn: AsyncConnection, work_order_id: str) -> Row[Any]:
    wo = await admin_repo.work_order_for_update(conn, work_order_id)
    if wo is None:
        raise NotFound(f"unknown work order {work_order_id!r}", id=work_order_id)
    if wo.status not in admin_repo.OPEN_STATUSES:
        raise Conflict(f"work order {work_order_id} is already {wo.status}", id=work_order_id,
                       status=wo.status)
    return wo


async def get(ctx: CreditContext, work_order_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await _get(conn, work_order_id)


async def _get(conn: AsyncConnection, work_order_id: str) -> dict[str, Any]:
    rows = await admin_repo.work_orders(conn, {"work_order_id": work_order_id}, None, 1)
    if not rows:
        raise NotFound(f"unknown work order {work_order_id!r}", id=work_order_id)
    return rows[0]
