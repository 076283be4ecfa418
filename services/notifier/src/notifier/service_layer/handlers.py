"""notifier's use cases: turn credit events into messages, and send what is pending.

Receiving writes the messages (status pending) with the inbox claim in one transaction;
sending is a separate loop, so a slow SMSC never holds up the consumer.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock
from common.contracts.credit_control import CreditDecisionMade, CreditStateChanged
from common.envelope import RawEnvelope

from ..adapters import tables as t
from ..adapters.smsc import SmsProvider
from ..domain.notices import Notice, notices_for
from ..domain.templates import DEFAULT_TEMPLATES, render, segments

log = logging.getLogger(__name__)
MOBILE_DIGITS = 11


@dataclass
class NotifierContext:
    engine: AsyncEngine
    provider: SmsProvider
    clock: Clock
    send_batch_size: int = 500
    wake: asyncio.Event | None = None


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
    deliverable = n.recipient_phone.isdigit() and len(n.recipient_phone) == MOBILE_DIGITS
    return {
        "message_id": n.message_id, "source_id": n.source_id, "product_id": event.product_id,
        "account_id": event.account_id, "template": n.template.value, "role": n.role.value,
        "recipient_name": n.recipient_name, "recipient": n.recipient_phone, "text": text,
        "segments": segments(text), "status": "pending" if deliverable else "undeliverable",
        "status_reason": None if deliverable else "malformed phone number",
    }


async def send_pending(ctx: NotifierContext) -> int:
    """Submit one batch of pending messages; returns how many were submitted."""
    m = t.messages
    async with ctx.engine.begin() as conn:
        rows = (await conn.execute(
            select(m.c.message_id, m.c.recipient, m.c.text).where(m.c.status == "pending")
            .order_by(m.c.created_at).limit(ctx.send_batch_size)
            .with_for_update(skip_locked=True)
        )).all()
        for row in rows:
            provider_id = await ctx.provider.submit(row.message_id, row.recipient, row.text)
            await conn.execute(
                update(m).where(m.c.message_id == row.message_id)
                .values(status="submitted", provider_message_id=provider_id,
                        submitted_at=ctx.clock.now()))
    return len(rows)


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
