"""Stage reports → ProvisioningResult events in the outbox (same transaction as the state)."""

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningResult
from common.envelope import Envelope, wrap
from common.logging import correlation_id

from ..adapters import chain_writes
from ..domain.chain import Attempt, StageReport
from .context import GatewayContext


def result_event(ctx: GatewayContext, a: Attempt, r: StageReport) -> tuple[str, Envelope[Any]]:
    result = ProvisioningResult(
        command_id=a.command_id, product_id=a.product_id, action=a.action, sequence=a.sequence,
        stage=r.stage, outcome=r.outcome, final=r.final, detail=r.detail, at=r.at,
        attempt=a.attempt, emos_order_id=a.emos_order_id)
    return ctx.results_topic, wrap(result, key=a.product_id, source=ctx.source,
                              occurred_at=ctx.clock.now(), correlation_id=correlation_id.get())


async def publish(
    ctx: GatewayContext, conn: AsyncConnection, reports: Sequence[tuple[Attempt, StageReport]]
) -> None:
    await publish_events(ctx, conn, [result_event(ctx, a, r) for a, r in reports])


async def publish_events(
    ctx: GatewayContext, conn: AsyncConnection, events: Sequence[tuple[str, Envelope[Any]]]
) -> None:
    """A batch's results: one outbox statement."""
    await chain_writes.add_results(conn, ctx.outbox, events)


def wake_worker(ctx: GatewayContext) -> None:
    """After the accepting transaction had a chance to commit, as the outbox does."""
    asyncio.get_running_loop().call_later(0.001, ctx.worker_wake.set)
