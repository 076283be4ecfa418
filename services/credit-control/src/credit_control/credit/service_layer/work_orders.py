"""Work orders (工单) and the closed loop's retries.

WORK_ORDER products are suspended and restored by people: a work order from the start, the
state changes when it is done. Chain products get one when the chain gave up.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import carried_business_time
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.errors import Conflict, NotFound

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext, publish
from ..adapters import repository as repo
from ..adapters.product_credits import SqlProductCredits, from_row
from ..domain.commands import Role, WorkOrderKind
from ..domain.product_credit import ProductCredit
from .handlers import attempt_failed, confirm
from .work_order_book import cancel_if_open, cancel_superseded, open_work_order, step

__all__ = ["assign", "cancel_if_open", "cancel_superseded", "finish", "get", "open_work_order",
           "run_loop"]
_step = step


async def _business_at(ctx: CreditContext, conn: AsyncConnection, decision_id: str,
                       at: datetime) -> datetime:
    """A staff step's business time: its decision's, plus the wall time since (a back-dated
    run's work order is done in that run's month)."""
    decision = await repo.decision(conn, decision_id)
    if decision is None:
        return at
    return carried_business_time(at, decision.as_of, decision.created_at, ctx.clock.now())


async def run_loop(ctx: CreditContext, at: datetime, limit: int = 500) -> dict[str, int]:
    """Resend attempts whose backoff ran out; count an attempt with no final result in time
    as failed. Safe to run from several processes (rows are skipped when locked)."""
    counts = {"retried": 0, "timed_out": 0}
    async with ctx.engine.begin() as conn:
        due = await repo.loop_due(conn, at, ctx.settings.loop_timeout_s, limit)
        products = [from_row(row) for row in due]
        for product in products:
            if product.retry_at is not None:
                await publish(ctx, conn, product.product_id, product.resend(ctx.clock.now()))
                counts["retried"] += 1
            else:
                await attempt_failed(ctx, conn, product, "no final result in time", at)
                counts["timed_out"] += 1
        await SqlProductCredits(conn).save(products)
    return counts


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
    goes to the group billing manager, so no suspension is dropped. A repair work order
    (reconciliation gave up, `kind=repair`) done moves nothing and sends nothing: the person
    made the gateway hold the settled state by hand (a command would start the repairs
    again); repairs may start again after it. Its steps are audited."""
    async with ctx.engine.begin() as conn:
        wo = await _open(conn, work_order_id)
        status = "done" if done else "failed"
        business = await _business_at(ctx, conn, wo.decision_id, at)
        await admin_repo.update_work_order(
            conn, work_order_id, status=status, updated_at=at,
            steps=[*wo.steps, _step(at, by, status, wo.role, note, business)])
        products = SqlProductCredits(conn)
        product = (await products.load([wo.product_id]))[wo.product_id]
        repair = wo.kind == WorkOrderKind.REPAIR.value
        current = product.pending_work_order_id == work_order_id
        follow_up = None
        if current and done and repair:
            product.repaired_by_hand(work_order_id)
        elif current and done:
            sync = _sync_command(product, ctx.clock.now())
            await confirm(ctx, conn, product, ProvisioningAction(wo.action), at,
                          f"work order {work_order_id} done by {by}: {note}")
            if sync is not None:
                await publish(ctx, conn, product.product_id, sync)
        elif current:
            follow_up = await open_work_order(
                ctx, conn, product, ProvisioningAction(wo.action),
                wo.decision_id, f"follow-up of failed {work_order_id}: {note}", at,
                key=f"follow-up:{work_order_id}", role=Role.GROUP_BILLING_MANAGER,
                kind=WorkOrderKind(wo.kind), sequence=wo.sequence)
            product.pending_work_order_id, product.dirty = follow_up, True
        if repair:
            await admin_repo.audit(conn, at, by, "work_order", work_order_id, status,
                                   {"status": wo.status}, {
                                       "kind": wo.kind, "product_id": wo.product_id,
                                       "action": wo.action, "sequence": wo.sequence,
                                       "note": note, "current": current,
                                       "follow_up": follow_up})
        if current:
            await products.save([product])
        return await _get(conn, work_order_id)


def _sync_command(product: ProductCredit, now: datetime) -> ProvisioningCommand | None:
    """A chain product's command the chain gave up on, sent once more when its work order is
    done (QA pass 32): the person's word moves the state now, and this brings the industry
    gateway to the same state once the chain can reach it (a restore done by hand left the
    gateway blocking a customer told 已可正常使用). Its result is not waited for: the product
    no longer has it pending, so a failure opens no new work order. None: nothing in flight
    (a WORK_ORDER product's own work order). The same path as reconciliation's repair
    (`ProductCredit.sync_command`, service_layer/chain_repairs.py)."""
    if product.pending_command_id is None:
        return None
    return product.sync_command(now)


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
