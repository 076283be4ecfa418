"""gateway-adapter's use cases: walk a command through the chain; answer submits."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock
from common.contracts.gateway import (
    ChainStage,
    ProvisioningCommand,
    ProvisioningResult,
    StageOutcome,
)
from common.envelope import RawEnvelope, wrap
from common.errors import ApiError, NotFound
from common.logging import correlation_id
from common.outbox import Outbox

from ..adapters import tables as t
from ..domain.chain import BossStatus, plan


@dataclass
class GatewayContext:
    engine: AsyncEngine
    outbox: Outbox
    clock: Clock
    source: str = "gateway-adapter"


class ProductBlocked(ApiError):
    status_code = 403
    code = "product_blocked"


async def apply_command(
    ctx: GatewayContext, conn: AsyncConnection, envelope: RawEnvelope, cmd: ProvisioningCommand
) -> None:
    now = ctx.clock.now()
    cp = t.chain_products
    # First sight of a product: it is active and open, with no command applied yet.
    await conn.execute(pg_insert(cp).values(
        product_id=cmd.product_id, cpno=cmd.cpno, family=cmd.family.value, vendor=cmd.vendor,
        last_sequence=0, boss_status=BossStatus.ACTIVE.value, boss_updated_at=now,
        gateway_blocked=False, gateway_updated_at=now,
    ).on_conflict_do_nothing())
    product = (await conn.execute(
        select(cp).where(cp.c.product_id == cmd.product_id).with_for_update())).one()
    chain = plan(cmd.action, cmd.sequence, product.last_sequence)
    recorded = await conn.execute(pg_insert(t.commands).values(
        command_id=cmd.command_id, product_id=cmd.product_id, action=cmd.action.value,
        sequence=cmd.sequence,
        outcome=StageOutcome.SUPERSEDED.value if chain.superseded else StageOutcome.APPLIED.value,
    ).on_conflict_do_nothing().returning(t.commands.c.command_id))
    if recorded.first() is None:
        return  # the same command again (a replay under a new event id): it acts once
    if chain.superseded:
        await _result(ctx, conn, cmd, ChainStage.GATEWAY, StageOutcome.SUPERSEDED,
                      f"sequence {cmd.sequence} <= applied {product.last_sequence}")
        return
    await conn.execute(cp.update().where(cp.c.product_id == cmd.product_id).values(
        last_sequence=cmd.sequence, boss_status=chain.boss_status.value, boss_updated_at=now,
        gateway_blocked=chain.gateway_blocked, gateway_updated_at=now))
    await conn.execute(insert(t.emos_orders).values(
        order_id=f"emos-{uuid.uuid4().hex[:16]}", command_id=cmd.command_id,
        product_id=cmd.product_id, action=cmd.action.value, status="closed", closed_at=now))
    for i, step in enumerate(chain.steps):
        await _result(ctx, conn, cmd, step.stage, StageOutcome.APPLIED, step.detail,
                      final=i == len(chain.steps) - 1)


async def _result(
    ctx: GatewayContext, conn: AsyncConnection, cmd: ProvisioningCommand, stage: ChainStage,
    outcome: StageOutcome, detail: str, final: bool = True,
) -> None:
    result = ProvisioningResult(
        command_id=cmd.command_id, product_id=cmd.product_id, action=cmd.action,
        sequence=cmd.sequence, stage=stage, outcome=outcome, final=final, detail=detail,
        at=ctx.clock.now())
    await ctx.outbox.add(conn, result.topic, wrap(
        result, key=cmd.product_id, source=ctx.source, occurred_at=ctx.clock.now(),
        correlation_id=correlation_id.get()))


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
    cp, eo, c = t.chain_products, t.emos_orders, t.commands
    async with ctx.engine.connect() as conn:
        product = (await conn.execute(select(cp).where(cp.c.product_id == product_id))).first()
        if product is None:
            raise NotFound(f"the chain has never seen product {product_id!r}", id=product_id)
        orders = await conn.execute(
            select(eo).where(eo.c.product_id == product_id).order_by(eo.c.created_at))
        commands = await conn.execute(
            select(c).where(c.c.product_id == product_id).order_by(c.c.received_at))
        p = product._mapping
        return {
            "product_id": product_id, "cpno": p["cpno"], "family": p["family"],
            "vendor": p["vendor"], "last_sequence": p["last_sequence"],
            "boss": {"status": p["boss_status"], "updated_at": p["boss_updated_at"]},
            "emos": {"orders": [dict(r._mapping) for r in orders]},
            "gateway": {"blocked": p["gateway_blocked"], "updated_at": p["gateway_updated_at"]},
            "commands": [dict(r._mapping) for r in commands],
        }
