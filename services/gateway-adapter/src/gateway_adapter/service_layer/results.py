"""Stage reports → ProvisioningResult events in the outbox (same transaction as the state)."""

import asyncio
from typing import Any
from uuid import uuid4

from common.contracts.gateway import ProvisioningResult
from common.envelope import Envelope
from common.logging import correlation_id

from ..domain.chain import Attempt, StageReport
from .context import GatewayContext

# `common.envelope.wrap` looks the parametrised class up on every call, which was half of the
# cost of a result (three per command); this is the very class it builds, looked up once.
_ENVELOPE: type[Envelope[Any]] = Envelope[Any]


def result_event(ctx: GatewayContext, a: Attempt, r: StageReport) -> tuple[str, Envelope[Any]]:
    """What `wrap` makes of the stage's ProvisioningResult."""
    result = ProvisioningResult(
        command_id=a.command_id, product_id=a.product_id, action=a.action, sequence=a.sequence,
        stage=r.stage, outcome=r.outcome, final=r.final, detail=r.detail, at=r.at,
        attempt=a.attempt, emos_order_id=a.emos_order_id)
    return ctx.results_topic, _ENVELOPE(
        event_id=uuid4(), type=result.event_type, source=ctx.source,
        occurred_at=ctx.clock.now(), correlation_id=correlation_id.get(), key=a.product_id,
        payload=result)


def wake_worker(ctx: GatewayContext) -> None:
    """After the accepting transaction had a chance to commit, as the outbox does."""
    asyncio.get_running_loop().call_later(0.001, ctx.worker_wake.set)
