"""Invariant: no SMS was sent whose reason no longer held when it left (issue 15).

From the databases alone: credit-control's outbox gives every product's decisions and state
changes in the order they were published; the notifier's inbox says when the notifier had
applied each; the message log says which SMS left (submitted, delivered, rejected) and when
(`claimed_at`: the claim it was submitted under). For each SMS that left, the events about its
product published after the one that made it, and applied by the notifier before it left, are
folded with the notifier's pure rules (notifier.domain.recheck); if they make the message
stale (paid, restored, suspended since, suspended again, exempt, its suspension deferred by a
promise to pay: `credit.suspension_deferred`, as the notifier's receiving folds it), the SMS
should never have gone: "wrong".

An event the notifier applied only just before the claim may not have been visible to it (the
consumer's transaction started earlier than it committed): `GRACE` allows for that. The
"superseded by a newer notice" rule is the notifier's own choice among notices, not a fact
that changed, and is not checked here.
"""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditEvent,
    CreditStateChanged,
    SuspensionDeferred,
)
from notifier.domain.recheck import ProductFacts, Queued, cancel_reason, fold
from notifier.domain.templates import TemplateName
from notifier.entrypoints.consumer import CONTRACTS

from .counts import Check

DECISION = "credit.decision_made"
STATE = "credit.state_changed"
DEFERRED = "credit.suspension_deferred"
GRACE = timedelta(seconds=5)
SENT = ("submitted", "delivered", "rejected")


@dataclass(frozen=True)
class _Event:
    position: int  # order of publication (credit-control's outbox id)
    event_id: str
    source_id: str  # as the notifier names the messages it makes
    view: CreditEvent | SuspensionDeferred
    applied_at: datetime | None  # when the notifier applied it (None: not yet)


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _source_id(event_type: str, payload: dict[str, Any]) -> str:
    if event_type == DECISION:
        return f"decision:{payload['decision_id']}"
    if event_type == DEFERRED:  # makes no message
        return f"deferral:{payload['promise_id']}"
    return f"state:{payload['decision_id']}:{payload['state_after']}"


async def _events(conn: AsyncConnection, prefix: str) -> dict[str, list[_Event]]:
    """Each product's credit events in publication order."""
    rows = await conn.execute(text(
        "SELECT o.id, o.event_id::text AS event_id, o.event_type, o.payload, i.applied_at "
        "FROM credit.outbox_messages o LEFT JOIN notifier.inbox i "
        "  ON i.consumer = 'notifier' AND i.event_id = o.event_id "
        "WHERE o.event_type IN (:d, :s, :f) AND o.key LIKE :p ORDER BY o.id, o.position"),
        {"d": DECISION, "s": STATE, "f": DEFERRED, "p": _like(prefix)})
    by_product: dict[str, list[_Event]] = defaultdict(list)
    for r in rows:
        payload = orjson.loads(r.payload)["payload"]
        view = CONTRACTS.decode(r.payload.encode()).payload  # as the notifier reads it
        assert isinstance(view, CreditDecisionMade | CreditStateChanged | SuspensionDeferred)
        by_product[view.product_id].append(_Event(
            r.id, r.event_id, _source_id(r.event_type, payload), view, r.applied_at))
    return by_product


def stale_reason(template: TemplateName, source: str, left_at: datetime,
                 events: list[_Event]) -> tuple[str, _Event] | None:
    """Why an SMS about a product with these events should not have left at `left_at`, and
    the event that made it stale; None if its reason still held."""
    made = next((i for i, e in enumerate(events) if e.source_id == source), None)
    if made is None:
        return None
    first = events[made].view
    assert not isinstance(first, SuspensionDeferred)  # its source id names no message
    facts: ProductFacts = fold(None, first, events[made].position)
    for later in events[made + 1:]:
        if later.applied_at is None or later.applied_at + GRACE > left_at:
            break  # the notifier had not heard of it (nor of any later one) when it left
        view = later.view
        facts = (replace(facts, withdrawn_seq=later.position)
                 if isinstance(view, SuspensionDeferred) else fold(facts, view, later.position))
        reason = cancel_reason(Queued(template, events[made].position), facts)
        if reason is not None:
            return reason, later
    return None


async def check_stale_sms(conn: AsyncConnection, prefix: str) -> Check:
    c = Check("stale sms")
    events = await _events(conn, prefix)
    sent = (await conn.execute(text(
        "SELECT message_id, product_id, source_id, template, claimed_at FROM notifier.messages "
        "WHERE account_id LIKE :p AND status = ANY(:sent) AND claimed_at IS NOT NULL"),
        {"p": _like(prefix), "sent": list(SENT)})).all()
    c.expected = c.found = len(sent)
    stale = []
    for m in sent:
        try:
            template = TemplateName(m.template)
        except ValueError:
            continue  # a template this checker does not know (a newer notifier)
        found = stale_reason(template, m.source_id, m.claimed_at, events.get(m.product_id, []))
        if found is not None:
            reason, event = found
            stale.append(f"{m.message_id} ({m.template}) left at {m.claimed_at.isoformat()}, "
                         f"but {reason} (event {event.event_id} applied "
                         f"{event.applied_at.isoformat() if event.applied_at else '-'})")
    c.flag("wrong", len(stale), stale)
    c.notes["cancelled at send time"] = int(await conn.scalar(text(
        "SELECT count(*) FROM notifier.messages WHERE account_id LIKE :p "
        "AND status = 'cancelled'"), {"p": _like(prefix)}) or 0)
    return c
