"""Credit events in, messages written (held, pending or undeliverable), in the consumer's
transaction with its inbox claim: a redelivered event adds nothing, and the message ids
(decision, recipient, template) make a re-published decision add nothing either."""

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import CreditDecisionMade, CreditStateChanged
from common.envelope import RawEnvelope

from ..adapters import repository as repo
from ..domain.delivery import phone_problem
from ..domain.kpis import reminder_bill_month
from ..domain.notices import Notice, notices_for
from ..domain.templates import render, segments
from .context import NotifierContext

CreditEvent = CreditDecisionMade | CreditStateChanged


async def apply_credit_events(
    ctx: NotifierContext, conn: AsyncConnection, events: list[tuple[RawEnvelope, CreditEvent]],
) -> int:
    """A batch of events → its messages, in one statement; returns how many were made."""
    found = [(env, event, n) for env, event in events for n in notices_for(event)]
    if not found:
        return 0
    templates = await repo.current_templates(conn)
    now = ctx.clock.now()
    rows = [message_row(ctx, n, event, env.occurred_at, templates[n.template], now)
            for env, event, n in found]
    await repo.insert_messages(conn, rows)
    if ctx.wake is not None:
        # After the consumer's commit, not now: the sender would find nothing yet.
        asyncio.get_running_loop().call_later(0.001, ctx.wake.set)
    return len(rows)


def message_row(
    ctx: NotifierContext, n: Notice, event: CreditEvent, decided_at: datetime,
    template: tuple[int, str], now: datetime,
) -> dict[str, Any]:
    version, text = template
    rendered = render(text, n.fields)
    problem = phone_problem(n.recipient_phone)
    hold = ctx.windows[n.role].hold_until(now)
    status = "undeliverable" if problem else "held" if hold else "pending"
    return {
        "message_id": n.message_id, "source_id": n.source_id, "product_id": event.product_id,
        "account_id": event.account_id, "template": n.template.value, "role": n.role.value,
        "recipient_name": n.recipient_name, "recipient": n.recipient_phone, "text": rendered,
        "segments": segments(rendered), "status": status,
        "status_reason": problem or (f"quiet hours: held until {hold.isoformat()}"
                                     if hold else None),
        # Not before it was made: a sender whose clock is behind (a replay, a test in another
        # year) leaves it alone.
        "next_attempt_at": None if problem else hold or now, "template_version": version,
        "trigger": n.trigger, "reminder": n.reminder,
        "bill_month": _bill_month(event) if n.reminder else None, "decided_at": decided_at,
    }


def _bill_month(event: CreditEvent) -> str:
    # credit-control may carry the bill month one day; until then it follows from the date.
    explicit = getattr(event.context, "bill_month", None) or getattr(event, "bill_month", None)
    return str(explicit) if explicit else reminder_bill_month(event.context.as_of_date)
