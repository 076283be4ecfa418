"""The one polling loop of every background worker (outbox relay, SMS sender, receipts, the
gateway's stage worker, reconciliation, credit-control's scheduler and sweep resumer).

A step runs, then the loop idles until it is woken (work committed in this process), its
interval passes (work committed elsewhere) or it is stopped. A failing step is retried after
an exponential backoff with full jitter, so instances that lost the database together do not
come back in step; an infrastructure failure (`common.db.is_infrastructure_error`) is logged
as a warning, anything else with its traceback. The loop never dies of a failed step, and it
remembers when a step last succeeded, for readiness.
"""

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from common.db import is_infrastructure_error

log = logging.getLogger(__name__)

# A step returns True when more work is waiting (run it again at once), False to idle.
Step = Callable[[], Awaitable[bool]]


@dataclass(eq=False)
class PollLoop:
    name: str
    step: Step
    idle_s: float  # the longest idle between steps
    wake: asyncio.Event | None = None  # set by a writer in this process: run the step now
    backoff_min_s: float = 0.1
    backoff_max_s: float = 5.0
    wait_first: bool = False  # idle before the first step (a report every interval)
    idle_for: Callable[[], float] | None = None  # the next idle, when it varies (a scheduler)
    last_success: float | None = None  # time.monotonic() of the last step that did not fail
    failures: int = 0  # failed steps since the last success
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    async def run(self, stop: asyncio.Event) -> None:
        _running.add(self)
        try:
            await self._run(stop)
        finally:
            _running.discard(self)

    async def _run(self, stop: asyncio.Event) -> None:
        busy = not self.wait_first
        while not stop.is_set():
            if not busy:
                await self.idle(stop, self.idle_for() if self.idle_for else self.idle_s)
                if stop.is_set():
                    return
            if self.wake is not None:
                self.wake.clear()  # before the step: a wake-up during it is not lost
            try:
                busy = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = self.backoff_s()
                if is_infrastructure_error(exc):
                    log.warning("%s: %s: %s; retrying in %.2fs", self.name,
                                type(exc).__name__, exc, delay)
                else:
                    log.exception("%s failed; retrying in %.2fs", self.name, delay)
                await self.idle(stop, delay, woken=False)
                busy = True
                continue
            self.failures = 0
            self.last_success = time.monotonic()

    def backoff_s(self) -> float:
        """Full jitter: uniform in [min, min(max, min × 2^(failures − 1))]."""
        ceiling = min(self.backoff_max_s, self.backoff_min_s * 2 ** max(self.failures - 1, 0))
        return self._rng.uniform(self.backoff_min_s, ceiling)

    async def idle(self, stop: asyncio.Event, timeout: float, *, woken: bool = True) -> None:
        """Until `stop`, the wake-up (unless `woken` is False: a backoff is not cut short by
        new work) or `timeout`."""
        events = [stop] + ([self.wake] if woken and self.wake is not None else [])
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)

    def healthy(self, within_s: float) -> bool:
        """False while it keeps failing: no step succeeded in `within_s` and the last failed."""
        if self.failures == 0:
            return True
        return self.last_success is not None and time.monotonic() - self.last_success < within_s


_running: "weakref.WeakSet[PollLoop]" = weakref.WeakSet()


def failing(within_s: float) -> list[str]:
    """The loops of this process that keep failing (readiness): running, their last step
    failed and none succeeded within `within_s`."""
    return sorted(loop.name for loop in list(_running) if not loop.healthy(within_s))
