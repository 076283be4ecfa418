"""Delivery receipts in: from the simulated SMSC's receipt loop, or a provider's webhook."""

import asyncio
import logging
from collections.abc import Sequence

from common.poll_loop import PollLoop

from ..adapters import repository as repo
from ..adapters.providers import Receipt
from .context import NotifierContext
from .outcomes import publish_outcomes

log = logging.getLogger(__name__)


async def apply_receipts(ctx: NotifierContext, receipts: Sequence[Receipt]) -> int:
    touched: list[tuple[str, str]] = []
    async with ctx.engine.begin() as conn:
        applied = await repo.apply_receipts(conn, receipts, touched)
        await publish_outcomes(ctx, conn, touched)
    return applied


async def deliver_smsc_receipts(ctx: NotifierContext, limit: int = 1000) -> int:
    """The simulated SMSC's due receipts, taken and applied in one transaction."""
    if ctx.smsc is None:
        return 0
    async with ctx.engine.begin() as conn:
        receipts = await ctx.smsc.take_receipts(conn, limit)
        touched: list[tuple[str, str]] = []
        await repo.apply_receipts(conn, receipts, touched)
        await publish_outcomes(ctx, conn, touched)
    return len(receipts)


async def time_out_receipts(ctx: NotifierContext, limit: int = 1000) -> int:
    """Publish `failed` for the notices accepted by the SMSC whose delivery receipt is overdue
    (`receipt_timeout`, business time: domain/outcomes.py `receipt_overdue`); returns how
    many. Once each, across restarts: the outcome is claimed in `notifier.notice_outcomes` in
    the transaction that puts it in the outbox."""
    if ctx.receipt_timeout is None or ctx.outbox is None:
        return 0
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        touched = await repo.awaiting_receipt(conn, now - ctx.receipt_timeout,
                                              sorted(ctx.outcome_templates), limit)
        return await publish_outcomes(ctx, conn, touched)


async def run_receipt_timeouts(ctx: NotifierContext, stop: asyncio.Event,
                               poll_s: float) -> None:
    async def step() -> bool:
        await time_out_receipts(ctx)
        return False  # at most one pass per poll: overdue is measured in hours

    await PollLoop("receipt timeouts", step, idle_s=poll_s, backoff_min_s=poll_s,
                   backoff_max_s=max(poll_s, 60.0)).run(stop)


async def run_receipts(ctx: NotifierContext, stop: asyncio.Event, poll_s: float) -> None:
    async def step() -> bool:
        return await deliver_smsc_receipts(ctx) > 0  # some taken: more may be due

    await PollLoop("sms receipts", step, idle_s=poll_s, backoff_min_s=poll_s,
                   backoff_max_s=max(poll_s, 5.0)).run(stop)
