"""Stage reports → ProvisioningResult events in the outbox (same transaction as the state)."""

import asyncio
from typing import Any

from common.contracts.gateway import ProvisioningResult
from common.envelope import Envelope, wrap
from common.logging import correlation_id

from ..domain.chain import Attempt, StageReport
from .context import GatewayContext


def result_event(ctx: GatewayContext, a: Attempt, r: StageReport) -> tuple[str, Envelope[Any]]:
    """The stage's ProvisioningResult, wrapped for the outbox."""
    result = ProvisioningResult(
        command_id=a.command_id, product_id=a.product_id, action=a.action, sequence=a.sequence,
        stage=r.stage, outcome=r.outcome, final=r.final, detail=r.detail, at=r.at,
        attempt=a.attempt, emos_order_id=a.emos_order_id)
    return ctx.results_topic, wrap(result, key=a.product_id, source=ctx.source,
                                   occurred_at=ctx.clock.now(),
                                   correlation_id=correlation_id.get())


def wake_worker(ctx: GatewayContext) -> None:
    """After the accepting transaction had a chance to commit, as the outbox does."""
    asyncio.get_running_loop().call_later(0.001, ctx.worker_wake.set)
