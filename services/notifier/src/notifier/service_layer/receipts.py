"""Delivery receipts in: from the simulated SMSC's receipt loop, or a provider's webhook."""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

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
    while not stop.is_set():
        try:
            taken = await deliver_smsc_receipts(ctx)
        except Exception:
            log.exception("receipts failed; retrying")
            taken = 0
        if taken == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
