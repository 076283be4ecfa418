"""Sending what is due, a batch at a time: claim → submit → record.

One short transaction claims a batch (status 'sending', attempts + 1, only roles whose sending
window is open at `as_of`, held rows whose opening has come, retries whose backoff is over).
The provider is called with no transaction open (no row locks across network calls). One
transaction records every outcome set-wise: submitted; back to pending with a backoff; or
dead-lettered with the reason after send_max_attempts. A 'sending' row whose sender died is
claimed again after send_claim_timeout_s; the provider dedupes on client_ref (= message id),
so that resubmission never reaches the phone twice.
"""

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from ..adapters import repository as repo
from ..adapters.providers import Submission, SubmitOutcome, describe
from ..domain.delivery import give_up, next_attempt_delay
from .context import NotifierContext

log = logging.getLogger(__name__)
SEND_GATHER_S = 0.02


async def send_pending(ctx: NotifierContext, as_of: datetime | None = None) -> int:
    """Claim, submit and record one batch; returns how many were submitted."""
    at = as_of or ctx.clock.now()
    roles = [role.value for role, window in ctx.windows.items() if window.is_open(at)]
    if not roles:
        return 0
    async with ctx.engine.begin() as conn:
        claimed = await repo.claim_batch(conn, at, roles, ctx.send_batch_size,
                                         ctx.send_claim_timeout_s)
    if not claimed:
        return 0
    batch = [Submission(r.message_id, r.recipient, r.text, r.segments) for r in claimed]
    try:
        outcomes = await ctx.provider.submit_many(batch)
    except Exception as exc:  # the provider as a whole failed: every message retries
        outcomes = [SubmitOutcome(s.client_ref, None, describe(exc)) for s in batch]
    return await _record(ctx, at, {r.message_id: r.attempts for r in claimed}, outcomes)


async def _record(
    ctx: NotifierContext, at: datetime, attempts: dict[str, int], outcomes: list[SubmitOutcome],
) -> int:
    done: list[tuple[str, int, str]] = []
    retry: list[tuple[str, int, str, datetime]] = []
    dead: list[tuple[str, int, str]] = []
    for o in outcomes:
        n = attempts[o.client_ref]
        if o.provider_message_id is not None:
            done.append((o.client_ref, n, o.provider_message_id))
        elif give_up(n, ctx.send_max_attempts):
            log.error("message %s dead-lettered after %d attempts: %s", o.client_ref, n, o.error)
            dead.append((o.client_ref, n, o.error or "unknown error"))
        else:
            delay = next_attempt_delay(n, ctx.send_backoff_base_s)
            retry.append((o.client_ref, n, o.error or "unknown error",
                          at + timedelta(seconds=delay)))
    if retry:
        log.warning("%d messages failed to submit, will retry", len(retry))
    async with ctx.engine.begin() as conn:
        submitted = await repo.record_submitted(conn, at, done)
        await repo.record_retry(conn, retry)
        await repo.record_dead(conn, dead)
    return submitted


async def run_sender(ctx: NotifierContext, stop: asyncio.Event, idle_poll_s: float) -> None:
    wake = ctx.wake or asyncio.Event()
    while not stop.is_set():
        try:
            sent = await send_pending(ctx)
        except Exception:
            log.exception("sending failed; retrying")
            sent = 0
            await asyncio.sleep(1.0)
        if sent < ctx.send_batch_size:
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=idle_poll_s)
            if sent:
                # Busy but not full: let a few consumer batches land, so the next claim,
                # submit and record each cover many messages instead of a partition's few.
                await asyncio.sleep(SEND_GATHER_S)
