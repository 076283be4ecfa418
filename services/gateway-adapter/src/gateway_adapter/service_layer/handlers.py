"""gateway-adapter's use cases: accept a command into the chain; answer submits; show a
product's chain; set the fault knobs. The stage worker (`worker.py`) moves accepted attempts on."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningCommand
from common.envelope import RawEnvelope
from common.errors import ApiError, NotFound
from common.ids import new_hex

from ..adapters import repository as repo
from ..adapters import submits
from ..adapters import tables as t
from ..domain.cmpp import CmppAccount
from ..domain.faults import Faults
from .accept import accept_commands
from .context import GatewayContext


class ProductBlocked(ApiError):
    status_code = 403
    code = "product_blocked"


async def accept_command(
    ctx: GatewayContext, conn: AsyncConnection, envelope: RawEnvelope, cmd: ProvisioningCommand
) -> None:
    """One command on its own (the consumer's careful path): a batch of one."""
    await accept_commands(ctx, conn, [(envelope, cmd)])


async def submit(ctx: GatewayContext, product_id: str) -> dict[str, Any]:
    """What a MAS server or SMS-direct client does to send over HTTP: refused while blocked."""
    message_id = f"gw-{new_hex(16)}"
    if not await judge_submit(ctx, product_id, message_id, channel="http"):
        raise ProductBlocked(f"product {product_id} is blocked at the industry gateway "
                             "for arrears", product_id=product_id)
    return {"accepted": True, "product_id": product_id, "message_id": message_id}


async def judge_submit(ctx: GatewayContext, product_id: str, message_id: str, *,
                       channel: str, source_addr: str | None = None, recipients: int = 1
                       ) -> bool:
    """Every submit, HTTP or CMPP: checked against the gateway's block and recorded (one
    statement, shared with the submits that arrive at the same moment); True if the gateway
    lets it through."""
    return await ctx.submit_judge.judge(submits.SubmitRequest(
        message_id, product_id, channel, source_addr, recipients))


async def submit_log(ctx: GatewayContext, product_id: str, limit: int) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await submits.recent_submits(conn, product_id, limit)


async def load_cmpp_account(ctx: GatewayContext, source_addr: str) -> CmppAccount | None:
    async with ctx.engine.connect() as conn:
        return await submits.load_account(conn, source_addr)


async def save_cmpp_account(ctx: GatewayContext, account: CmppAccount) -> None:
    async with ctx.engine.begin() as conn:
        await submits.save_account(conn, account, ctx.clock.now())


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
