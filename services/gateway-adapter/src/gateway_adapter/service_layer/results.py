"""Stage reports → ProvisioningResult events in the outbox (same transaction as the state)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningResult
from common.envelope import Envelope, wrap
from common.logging import correlation_id
from common.outbox import OutboxRow, envelope_row, packed, wake_after_commit

from ..domain.chain import Attempt, StageReport
from .context import GatewayContext


def result_event(ctx: GatewayContext, a: Attempt, r: StageReport,
                 correlation: str | None = None,
                 occurred_at: datetime | None = None) -> tuple[str, Envelope[Any]]:
    """The stage's ProvisioningResult, wrapped for the outbox (correlated with `correlation`,
    else the current correlation id), occurred at `occurred_at` (default: now)."""
    result = ProvisioningResult(
        command_id=a.command_id, product_id=a.product_id, action=a.action, sequence=a.sequence,
        stage=r.stage, outcome=r.outcome, final=r.final, detail=r.detail, at=r.at,
        attempt=a.attempt, emos_order_id=a.emos_order_id)
    return ctx.results_topic, wrap(result, key=a.product_id, source=ctx.source,
                                   occurred_at=occurred_at or ctx.clock.now(),
                                   correlation_id=correlation or correlation_id.get())


def result_rows(
    ctx: GatewayContext, reports: Iterable[tuple[Attempt, StageReport, str | None]],
) -> list[OutboxRow]:
    """The outbox rows of these stage reports, each with its correlation id; one moment for
    the lot (they are written by one transaction). The batch's results are 16 to a row, in
    the order reported (`common.outbox.packed`: each published with its product's key, each
    product's in order): with the chain's delays at 0 an attempt's three stages are reported
    together, and a row costs the outbox (written, queued, claimed) about as much as three
    results in one (docs/benchmarks.md, eighteenth and nineteenth sessions)."""
    now = ctx.clock.now()
    return packed([envelope_row(*result_event(ctx, a, r, correlation, now))
                   for a, r, correlation in reports])


def wake_worker(ctx: GatewayContext, conn: AsyncConnection) -> None:
    """Once the accepting transaction has committed (the worker would not see its attempts
    before)."""
    wake_after_commit(conn, ctx.worker_wake)
