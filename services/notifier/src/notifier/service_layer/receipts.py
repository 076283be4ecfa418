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


async def run_receipts(ctx: NotifierContext, stop: asyncio.Event, poll_s: float) -> None:
    async def step() -> bool:
        return await deliver_smsc_receipts(ctx) > 0  # some taken: more may be due

    await PollLoop("sms receipts", step, idle_s=poll_s, backoff_min_s=poll_s,
                   backoff_max_s=max(poll_s, 5.0)).run(stop)
