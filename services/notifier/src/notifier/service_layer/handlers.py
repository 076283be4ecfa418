"""notifier's use cases: turn credit events into messages, and send what is pending.

Receiving writes the messages (status pending) with the inbox claim in one transaction;
sending is a separate loop, so a slow SMSC never holds up the consumer.

Sending is claim → submit → record, each message on its own: a short transaction marks a batch
'sending' (attempts + 1), the SMSC is called with no transaction open (no row locks across
network calls), and each outcome is written in its own short transaction. One failing message
therefore neither rolls back the others' bookkeeping nor blocks the queue: it goes back to
'pending' with a backoff, and to 'failed' after send_max_attempts. A 'sending' row whose
sender died is claimed again after send_claim_timeout_s; the SMSC dedupes on client_ref
(= message_id), so that resubmission does not reach the phone twice.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock
from common.contracts.credit_control import CreditDecisionMade, CreditStateChanged
from common.envelope import RawEnvelope

from ..adapters import tables as t
from ..adapters.smsc import SmsProvider
from ..domain.delivery import give_up, is_mobile_number, next_attempt_delay
from ..domain.notices import Notice, notices_for
from ..domain.templates import DEFAULT_TEMPLATES, render, segments

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 500


@dataclass
class NotifierContext:
    engine: AsyncEngine
    provider: SmsProvider
    clock: Clock
    send_batch_size: int = 500
    wake: asyncio.Event | None = None
    send_max_attempts: int = 5
    send_claim_timeout_s: float = 60.0
    send_backoff_base_s: float = 1.0


async def apply_credit_event(
    ctx: NotifierContext, conn: AsyncConnection, envelope: RawEnvelope,
    event: CreditDecisionMade | CreditStateChanged,
) -> None:
    rows = [_message_row(n, event) for n in notices_for(event)]
    if not rows:
        return
    await conn.execute(insert(t.messages).values(rows).on_conflict_do_nothing())
    if ctx.wake is not None:
        asyncio.get_running_loop().call_later(0.001, ctx.wake.set)


def _message_row(n: Notice, event: CreditDecisionMade | CreditStateChanged) -> dict[str, Any]:
    text = render(DEFAULT_TEMPLATES[n.template], n.fields)
    deliverable = is_mobile_number(n.recipient_phone)
    return {
        "message_id": n.message_id, "source_id": n.source_id, "product_id": event.product_id,
        "account_id": event.account_id, "template": n.template.value, "role": n.role.value,
        "recipient_name": n.recipient_name, "recipient": n.recipient_phone, "text": text,
        "segments": segments(text), "status": "pending" if deliverable else "undeliverable",
        "status_reason": None if deliverable else "malformed phone number",
    }


async def send_pending(ctx: NotifierContext) -> int:
    """Claim, submit and record one batch; returns how many were submitted."""
    submitted = 0
    for row in await _claim(ctx):
        if not await _renew_claim(ctx, row.message_id, row.attempts):
            continue  # this batch ran past the claim timeout and another sender took it
        try:
            provider_id = await ctx.provider.submit(row.message_id, row.recipient, row.text)
        except Exception as exc:  # any provider error is this message's, not the batch's
            await _record_failure(ctx, row.message_id, row.attempts, exc)
        else:
            submitted += await _record_success(ctx, row.message_id, row.attempts, provider_id)
    return submitted


async def _claim(ctx: NotifierContext) -> list[Any]:
    m = t.messages
    stale = func.now() - timedelta(seconds=ctx.send_claim_timeout_s)
    due = (
        select(m.c.message_id)
        .where(
            sql_text(t.IN_SEND_QUEUE),  # matches the partial index ix_messages_pending
            or_(
                and_(m.c.status == "pending",
                     or_(m.c.next_attempt_at.is_(None), m.c.next_attempt_at <= func.now())),
                and_(m.c.status == "sending", m.c.claimed_at < stale),
            ),
        )
        .order_by(m.c.created_at).limit(ctx.send_batch_size)
        .with_for_update(skip_locked=True)
    )
    async with ctx.engine.begin() as conn:
        rows = (await conn.execute(
            update(m).where(m.c.message_id.in_(due.scalar_subquery()))
            .values(status="sending", attempts=m.c.attempts + 1, claimed_at=func.now())
            .returning(m.c.message_id, m.c.recipient, m.c.text, m.c.attempts, m.c.created_at)
        )).all()
    # RETURNING has no order; keep a recipient's notices in the order they were created.
    return sorted(rows, key=lambda r: (r.created_at, r.message_id))


def _still_ours(message_id: str, attempts: int) -> Any:
    # attempts fences the claim: if this sender was slower than the claim timeout and another
    # claimed the row again, this (stale) outcome must not overwrite the newer one.
    m = t.messages
    return and_(m.c.message_id == message_id, m.c.status == "sending", m.c.attempts == attempts)


async def _renew_claim(ctx: NotifierContext, message_id: str, attempts: int) -> bool:
    """Just before submitting: still ours? Then the claim is fresh again for its timeout."""
    async with ctx.engine.begin() as conn:
        result = await conn.execute(
            update(t.messages).where(_still_ours(message_id, attempts))
            .values(claimed_at=func.now()))
    return bool(result.rowcount)


async def _record_success(
    ctx: NotifierContext, message_id: str, attempts: int, provider_id: str
) -> int:
    async with ctx.engine.begin() as conn:
        result = await conn.execute(
            update(t.messages).where(_still_ours(message_id, attempts))
            .values(status="submitted", provider_message_id=provider_id,
                    submitted_at=ctx.clock.now()))
    return result.rowcount


async def _record_failure(
    ctx: NotifierContext, message_id: str, attempts: int, exc: Exception
) -> None:
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    if give_up(attempts, ctx.send_max_attempts):
        log.error("message %s failed after %d attempts: %s", message_id, attempts, error)
        values: dict[str, Any] = {"status": "failed", "status_reason": error, "last_error": error}
    else:
        log.warning("message %s attempt %d failed, will retry: %s", message_id, attempts, error)
        delay = next_attempt_delay(attempts, ctx.send_backoff_base_s)
        values = {"status": "pending", "last_error": error,
                  "next_attempt_at": func.now() + timedelta(seconds=delay)}
    async with ctx.engine.begin() as conn:
        await conn.execute(update(t.messages).where(_still_ours(message_id, attempts))
                           .values(**values))


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


async def list_messages(
    ctx: NotifierContext, filters: dict[str, str | None]
) -> list[dict[str, Any]]:
    m = t.messages
    columns = {"product_id": m.c.product_id, "recipient": m.c.recipient,
               "type": m.c.template, "status": m.c.status}
    query = select(m).order_by(m.c.created_at, m.c.message_id).limit(1000)
    for name, value in filters.items():
        if value is not None:
            query = query.where(columns[name] == value)
    async with ctx.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def smsc_received(ctx: NotifierContext, recipient: str | None) -> list[dict[str, Any]]:
    s = t.smsc_received
    query = select(s).order_by(s.c.received_at).limit(1000)
    if recipient is not None:
        query = query.where(s.c.recipient == recipient)
    async with ctx.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
