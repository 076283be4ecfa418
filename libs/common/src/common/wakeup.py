"""How a polling loop (outbox relay, gateway stage worker, SMS sender) idles between batches."""

import asyncio
import contextlib


async def idle_until_woken(wake: asyncio.Event, timeout: float) -> None:
    """Sleep until `wake` is set (new work committed in this process) or `timeout` passes
    (work committed by another process, which cannot wake us)."""
    wake.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=timeout)
