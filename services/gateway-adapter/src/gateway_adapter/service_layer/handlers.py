"""gateway-adapter's use cases: accept a command into the chain; answer submits; show a
product's chain; set the fault knobs. The stage worker (`worker.py`) moves accepted attempts on."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningCommand, StageOutcome
from common.envelope import RawEnvelope
from common.errors import ApiError, NotFound

from ..adapters import repository as repo
from ..adapters import tables as t
from ..domain.chain import (
    STAGE_OF,
    Attempt,
    CommandRecord,
    StageReport,
    Verdict,
    judge,
    schedule,
    supersede,
)
from ..domain.faults import Faults, Step
from .context import GatewayContext
from .results import publish, wake_worker


class ProductBlocked(ApiError):
    status_code = 403
    code = "product_blocked"


async def accept_command(
    ctx: GatewayContext, conn: AsyncConnection, envelope: RawEnvelope, cmd: ProvisioningCommand
) -> None:
    """Persist the attempt and schedule its first step; the same attempt twice acts once."""
    now = ctx.clock.now()
    await repo.ensure_product(conn, cmd, now)
    product = await repo.lock_product(conn, cmd.product_id)
    if await repo.attempt_seen(conn, cmd.command_id, cmd.attempt):
        return  # redelivered, or replayed under a new event id: nothing new to say
    record = await repo.command_record(conn, cmd.command_id)
    a = Attempt(command_id=cmd.command_id, attempt=cmd.attempt, product_id=cmd.product_id,
                customer_id=cmd.customer_id, cpno=cmd.cpno, family=cmd.family.value,
                vendor=cmd.vendor, action=cmd.action, sequence=cmd.sequence, received_at=now)
    verdict = judge(cmd.command_id, cmd.sequence, cmd.attempt, product.last_sequence, record)
    await repo.note_command(conn, cmd, now)
    if verdict is not Verdict.RUN:
        await _answer_at_once(ctx, conn, a, verdict, product.last_sequence, record, now)
        return
    reports = await _supersede_in_flight(ctx, conn, cmd, now)
    product.last_sequence = max(product.last_sequence, cmd.sequence)
    await repo.save_products(conn, [product])
    schedule(a, Step.BOSS, await repo.load_faults(conn, ctx.default_faults), now)
    await repo.insert_attempt(conn, a)
    await publish(ctx, conn, reports)
    wake_worker(ctx)


async def _answer_at_once(
    ctx: GatewayContext, conn: AsyncConnection, a: Attempt, verdict: Verdict,
    last_sequence: int, record: CommandRecord | None, now: datetime,
) -> None:
    a.step, a.finished_at = Step.GATEWAY, now
    if verdict is Verdict.ALREADY_APPLIED and record is not None:
        a.outcome, a.emos_order_id = StageOutcome.APPLIED, record.emos_order_id
        a.detail = f"already applied at the gateway by attempt {record.applied_attempt}"
    else:
        a.outcome = StageOutcome.SUPERSEDED
        a.detail = (f"sequence {a.sequence} is not newer than {last_sequence}"
                    if record is None or a.sequence < last_sequence
                    else f"attempt {a.attempt} overtaken by attempt {record.latest_attempt}")
    await repo.insert_attempt(conn, a)
    await repo.note_finished(conn, [a])
    await publish(ctx, conn, [(a, StageReport(STAGE_OF[a.step], a.outcome, True, a.detail, now))])


async def _supersede_in_flight(
    ctx: GatewayContext, conn: AsyncConnection, cmd: ProvisioningCommand, now: datetime
) -> list[tuple[Attempt, StageReport]]:
    """A newer command (or a newer attempt of the same one) takes over the product at once:
    what is still in the chain for it stops, and its EMOS order is cancelled."""
    older = await repo.in_flight(conn, cmd.product_id)
    if not older:
        return []
    orders = await repo.orders_of(conn, [o.emos_order_id for o in older if o.emos_order_id])
    why = f"superseded by {cmd.command_id} attempt {cmd.attempt} (sequence {cmd.sequence})"
    reports = [(o, supersede(o, orders.get(o.emos_order_id or ""), now, why)) for o in older]
    await repo.save_attempts(conn, older)
    await repo.save_orders(conn, orders.values())
    await repo.note_finished(conn, older)
    return reports


async def submit(ctx: GatewayContext, product_id: str) -> dict[str, Any]:
    """What a MAS server or SMS-direct client does to send: refused while blocked."""
    cp = t.chain_products
    async with ctx.engine.connect() as conn:
        blocked = await conn.scalar(
            select(cp.c.gateway_blocked).where(cp.c.product_id == product_id))
    if blocked:
        raise ProductBlocked(f"product {product_id} is blocked at the industry gateway "
                             "for arrears", product_id=product_id)
    return {"accepted": True, "product_id": product_id,
            "message_id": f"gw-{uuid.uuid4().hex[:16]}"}


async def chain_view(ctx: GatewayContext, product_id: str) -> dict[str, Any]:
    cp, eo, c, at = t.chain_products, t.emos_orders, t.commands, t.attempts
    async with ctx.engine.connect() as conn:
        product = (await conn.execute(select(cp).where(cp.c.product_id == product_id))).first()
        if product is None:
            raise NotFound(f"the chain has never seen product {product_id!r}", id=product_id)
        orders = await conn.execute(select(eo).where(eo.c.product_id == product_id)
                                    .order_by(eo.c.created_at, eo.c.order_id))
        commands = await conn.execute(select(c).where(c.c.product_id == product_id)
                                      .order_by(c.c.received_at, c.c.command_id))
        attempts = await conn.execute(select(at).where(at.c.product_id == product_id)
                                      .order_by(at.c.received_at, at.c.sequence, at.c.attempt))
        p = product._mapping
        return {
            "product_id": product_id, "cpno": p["cpno"], "family": p["family"],
            "vendor": p["vendor"], "customer_id": p["customer_id"],
            "last_sequence": p["last_sequence"],
            "boss": {"status": p["boss_status"], "sequence": p["boss_sequence"],
                     "updated_at": p["boss_updated_at"]},
            "emos": {"orders": [dict(r._mapping) for r in orders]},
            "gateway": {"blocked": p["gateway_blocked"], "sequence": p["gateway_sequence"],
                        "updated_at": p["gateway_updated_at"]},
            "commands": [dict(r._mapping) for r in commands],
            "attempts": [dict(r._mapping) for r in attempts],
        }


async def get_faults(ctx: GatewayContext) -> Faults:
    async with ctx.engine.connect() as conn:
        return await repo.load_faults(conn, ctx.default_faults)


async def put_faults(ctx: GatewayContext, faults: Faults) -> Faults:
    async with ctx.engine.begin() as conn:
        await repo.save_faults(conn, faults, ctx.clock.now())
    return faults


async def reset_faults(ctx: GatewayContext) -> Faults:
    async with ctx.engine.begin() as conn:
        await repo.clear_faults(conn)
    return ctx.default_faults
