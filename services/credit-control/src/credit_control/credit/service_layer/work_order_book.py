"""Opening and cancelling work orders (工单), the rows: the balance path, the closed loop and
the staff steps all go through here (it imports no use case, so none of them import each
other for it)."""

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningAction

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from ..domain.commands import Role, WorkOrderKind
from ..domain.product_credit import ProductCredit


def work_order_id(*parts: str) -> str:
    return "WO-" + hashlib.md5("|".join(parts).encode()).hexdigest()[:20]


def step(at: datetime, by: str, status: str, role: str, note: str,
         business_at: datetime | None = None) -> dict[str, Any]:
    entry = {"at": at.isoformat(), "by": by, "status": status, "role": role, "note": note}
    if business_at is not None:  # a staff step: wall time (at) and the run's business time
        entry["business_at"] = business_at.isoformat()
    return entry


async def open_work_order(
    ctx: CreditContext, conn: AsyncConnection, product: ProductCredit,
    action: ProvisioningAction, decision_id: str, reason: str, at: datetime, key: str = "",
    role: Role = Role.OPERATOR, kind: WorkOrderKind = WorkOrderKind.DECISION,
    sequence: int | None = None,
) -> str:
    """`kind`: what its done means (a decision's move made by hand, or reconciliation's
    repair left for a person; a repair's carries the product's `sequence` then)."""
    wo_id = work_order_id(decision_id, action.value, key)
    await admin_repo.insert_work_order(conn, {
        "kind": kind.value, "sequence": sequence,
        "work_order_id": wo_id, "product_id": product.product_id,
        "account_id": product.account_id, "customer_id": product.customer_id,
        "action": action.value, "decision_id": decision_id, "reason": reason,
        "status": "created", "role": role.value, "assignee": None,
        "due_at": at + timedelta(hours=ctx.settings.work_order_due_hours),
        "created_at": at, "updated_at": at,
        "steps": [step(at, ctx.source, "created", role.value, reason)],
    })
    await cancel_superseded(ctx, conn, product.product_id, action, at,
                            f"superseded by {wo_id} ({action.value})", wo_id)
    return wo_id


async def cancel_superseded(ctx: CreditContext, conn: AsyncConnection, product_id: str,
                            action: ProvisioningAction, at: datetime, why: str,
                            keep: str | None = None) -> None:
    """A suspension still open when a payment arrives is not to be carried out any more (nor
    a restore once a new suspension is decided): an operator must not act on it by hand."""
    for other in await admin_repo.open_work_orders_for(conn, product_id):
        if other.work_order_id != keep and other.action != action.value:
            await admin_repo.update_work_order(
                conn, other.work_order_id, status="cancelled", updated_at=at,
                steps=[*other.steps, step(at, ctx.source, "cancelled", other.role, why)])


async def cancel_if_open(ctx: CreditContext, conn: AsyncConnection, wo_id: str,
                         at: datetime, why: str) -> None:
    """The chain answered after all: an escalation still open is not to be done by hand (it
    would stay overdue for ever, and its `done` would change nothing)."""
    wo = await admin_repo.work_order_for_update(conn, wo_id)
    if wo is None or wo.status not in admin_repo.OPEN_STATUSES:
        return
    await admin_repo.update_work_order(
        conn, wo_id, status="cancelled", updated_at=at,
        steps=[*wo.steps, step(at, ctx.source, "cancelled", wo.role, why)])
