"""Sending what is due, a batch at a time: claim → submit → record.

One short transaction claims a batch (status 'sending', attempts + 1): pending rows, held rows
whose release time has come (quiet hours by the decision's business time, set when the
message was made; at most the release budget of them, `domain/pacing.py`), retries whose
backoff is over. The claim is one SQL statement that also re-checks each of them against what
the notifier last heard of its product (domain/recheck.py) and cancels those whose reason has
gone; per recipient it takes only the first waiting message in decision order, and none
within the minimum gap after the recipient's last one.
The provider is called with no transaction open (no row locks across network calls). One
transaction records every outcome set-wise: submitted; back to pending with a backoff; or
dead-lettered with the reason after send_max_attempts. While a backlog waits (the batch was
full), that transaction also claims the next batch. A 'sending' row whose sender died is
claimed again after send_claim_timeout_s; the provider dedupes on client_ref (= message id),
so that resubmission never reaches the phone twice.

A product's amount may change while a claimed batch is at the provider: its messages are then
given the revision as pending (receiving.py, adapters/repository.py _REVISE), not a new text
under a submit that may already have reached the SMSC. The recording settles it: accepted,
the revision is dropped (the SMSC has the text it was claimed with: the window is the SMSC's
answer time); failed, the message waits for its retry with the new text, or is cancelled
when its product owes nothing of its own (its notice's outcome published like any
cancellation); a claim retaken after its sender died applies it too before it goes again.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.db import retrying
from common.poll_loop import PollLoop

from ..adapters import repository as repo
from ..adapters.providers import Submission, SubmitOutcome, describe
from ..domain.delivery import give_up, next_attempt_delay
from .context import NotifierContext
from .outcomes import publish_outcomes

log = logging.getLogger(__name__)
SEND_GATHER_S = 0.02


@dataclass(frozen=True)
class _Claimed:
    at: datetime  # the claim's moment: the submit is recorded as of it
    rows: list[Any]  # may be empty when the claim only cancelled
    cancelled: int = 0


async def _claim(ctx: NotifierContext, conn: AsyncConnection, at: datetime) -> _Claimed | None:
    """None: nothing due. A claim that only cancelled returns no rows: the recipients'
    next messages may now be first in line, so the caller claims again."""
    budget = min(ctx.send_batch_size, ctx.release_pacer.available(at))
    touched: list[tuple[str, str]] = []
    result = await repo.claim_batch(conn, at, ctx.send_batch_size, budget,
                                    ctx.send_claim_timeout_s, ctx.recipient_gap_s, touched)
    await publish_outcomes(ctx, conn, touched)
    ctx.release_pacer.take(result.released, at)
    if result.cancelled:
        log.info("%d messages cancelled at send time: their reason no longer held",
                 result.cancelled)
    if not result.rows and not result.cancelled:
        return None
    return _Claimed(at, result.rows, result.cancelled)


async def send_pending(ctx: NotifierContext, as_of: datetime | None = None) -> int:
    """Claim, submit and record one batch; returns how many were submitted."""
    at = as_of or ctx.clock.now()
    while True:
        async with ctx.engine.begin() as conn:
            claimed = await _claim(ctx, conn, at)
        if claimed is None:
            return 0
        if claimed.rows:
            break
    sent, _ = await _submit_and_record(ctx, claimed, claim_next=False)
    return sent


async def _submit_and_record(
    ctx: NotifierContext, claimed: _Claimed, claim_next: bool,
) -> tuple[int, _Claimed | None]:
    """Submit a claimed batch and record the outcomes; with `claim_next` (a backlog is
    waiting), the next batch is claimed in the recording transaction: one commit less per
    batch, and still one batch at a time at the provider, in the order they were made."""
    rows = claimed.rows
    batch = [Submission(r.message_id, r.recipient, r.text, r.segments) for r in rows]
    try:
        outcomes = await ctx.provider.submit_many(batch)
    except Exception as exc:  # the provider as a whole failed: every message retries
        outcomes = [SubmitOutcome(s.client_ref, None, describe(exc)) for s in batch]
    done, retry, dead = _sort(ctx, claimed.at, {r.message_id: r.attempts for r in rows},
                              outcomes)

    async def record() -> tuple[int, _Claimed | None]:
        touched: list[tuple[str, str]] = []
        async with ctx.engine.begin() as conn:
            submitted = await repo.record_submitted(conn, claimed.at, done, touched)
            await repo.record_retry(conn, claimed.at, retry, touched)
            await repo.record_dead(conn, claimed.at, dead, touched)
            await publish_outcomes(ctx, conn, touched)
            following = await _claim(ctx, conn, ctx.clock.now()) if claim_next else None
        return submitted, following

    # The provider has answered: what it said is recorded now, again if PostgreSQL broke a
    # deadlock (another transaction on the same rows: seen in a soak's first minute) or the
    # connection dropped. Given up, the batch would stay 'sending' until its claim times out
    # (send_claim_timeout_s, a minute) and only then be recorded: its SMS already on the
    # phone, the soak's slowest "submitted" a minute late. Recording twice is harmless: a
    # row is recorded only while 'sending' with the claim's attempt.
    return await retrying(record)


def _sort(
    ctx: NotifierContext, at: datetime, attempts: dict[str, int], outcomes: list[SubmitOutcome],
) -> tuple[list[tuple[str, int, str]], list[tuple[str, int, str, datetime]],
           list[tuple[str, int, str]]]:
    """Outcomes → (submitted, to retry with their next attempt, dead-lettered)."""
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
    return done, retry, dead


async def run_sender(ctx: NotifierContext, stop: asyncio.Event, idle_poll_s: float) -> None:
    sender = _Sender(ctx, stop)
    await PollLoop("sms sender", sender.step, idle_s=idle_poll_s, wake=ctx.wake,
                   backoff_min_s=0.5, backoff_max_s=5.0).run(stop)
    # A batch claimed already is submitted even after stop, so no claim is left behind.
    while sender.claimed is not None:
        try:
            await sender.step()
        except Exception:
            log.exception("sending the last claimed batch failed")


@dataclass
class _Sender:
    ctx: NotifierContext
    stop: asyncio.Event
    claimed: _Claimed | None = None  # claimed with the last record, still to submit
    gather: bool = False  # the last step sent a batch that was not full

    async def step(self) -> bool:
        """Claim (unless the last record claimed already), submit, record; True to go on."""
        ctx = self.ctx
        if self.gather:
            # Busy but not full: let a few consumer batches land, so the next claim, submit
            # and record each cover many messages instead of a partition's few.
            self.gather = False
            await asyncio.sleep(SEND_GATHER_S)
        try:
            if self.claimed is None:
                async with ctx.engine.begin() as conn:
                    self.claimed = await _claim(ctx, conn, ctx.clock.now())
            if self.claimed is not None and not self.claimed.rows:
                self.claimed = None  # only cancelled: claim again at once
                return True
            size = len(self.claimed.rows) if self.claimed else 0
            sent = 0
            if self.claimed is not None:
                full = size >= ctx.send_batch_size and not self.stop.is_set()
                sent, self.claimed = await _submit_and_record(ctx, self.claimed, claim_next=full)
        except Exception:
            self.claimed = None
            raise
        if self.claimed is None and size < ctx.send_batch_size:
            self.gather = sent > 0
            return False
        return True
