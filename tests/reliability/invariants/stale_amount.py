"""Invariant: no SMS left quoting an amount the product no longer owed of its own.

The sibling of stale_sms.py (the same sources, the same GRACE): credit-control's outbox gives
each product's decisions, state changes and amount changes (`credit.product_amount_changed`)
in the order they were published, the notifier's inbox when it applied each, the message log
which SMS left and when (`claimed_at`) and what each was rendered from (`fields`). An SMS of a
template quoting the amount due (notifier.domain.revision.REVISED_TEMPLATES) that left
quoting another amount than the product's own amount of the newest amount change published
after the event that made it and applied by the notifier before it left is "wrong" — also
when that amount was 0: it should have been cancelled. A deduction notice says what was
collected and is not checked; messages made before the notifier kept their fields (its
migration 0008) cannot be and are counted in the notes.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditStateChanged,
    ProductAmountChanged,
)
from common.money import fen_to_yuan_text
from notifier.domain.revision import REVISED_TEMPLATES, fields_from
from notifier.domain.templates import TemplateName
from notifier.entrypoints.consumer import CONTRACTS

from .counts import Check
from .stale_sms import DECISION, GRACE, SENT, STATE, _like, _source_id

NAME = "stale amounts"
CHANGE = ProductAmountChanged.event_type


@dataclass(frozen=True)
class _Heard:
    """One event about a product, as the notifier heard it."""

    event_id: str
    source_id: str | None  # a decision or state change: the messages it made
    change: ProductAmountChanged | None  # an amount change
    applied_at: datetime | None  # when the notifier applied it (None: not yet)


async def _events(conn: AsyncConnection, prefix: str) -> dict[str, list[_Heard]]:
    """Each product's credit events, amount changes included, in publication order."""
    rows = await conn.execute(text(
        "SELECT o.event_id::text AS event_id, o.event_type, o.payload, i.applied_at "
        "FROM credit.outbox_messages o LEFT JOIN notifier.inbox i "
        "  ON i.consumer = 'notifier' AND i.event_id = o.event_id "
        "WHERE o.event_type IN (:d, :s, :c) AND o.key LIKE :p ORDER BY o.id, o.position"),
        {"d": DECISION, "s": STATE, "c": CHANGE, "p": _like(prefix)})
    by_product: dict[str, list[_Heard]] = defaultdict(list)
    for r in rows:
        view = CONTRACTS.decode(r.payload.encode()).payload  # as the notifier reads it
        assert isinstance(view, CreditDecisionMade | CreditStateChanged | ProductAmountChanged)
        if isinstance(view, ProductAmountChanged):
            heard = _Heard(r.event_id, None, view, r.applied_at)
        else:
            source = _source_id(r.event_type, orjson.loads(r.payload)["payload"])
            heard = _Heard(r.event_id, source, None, r.applied_at)
        by_product[view.product_id].append(heard)
    return by_product


def owed_when_it_left(source: str, left_at: datetime,
                      events: list[_Heard]) -> _Heard | None:
    """The newest amount change after the event that made the SMS that the notifier had
    applied (GRACE before) when it left; None: none, the amount it was made with stands."""
    made = next((i for i, e in enumerate(events) if e.source_id == source), None)
    if made is None:
        return None
    newest = None
    for later in events[made + 1:]:
        if later.applied_at is None or later.applied_at + GRACE > left_at:
            break  # the notifier had not heard of it (nor of any later one) when it left
        if later.change is not None:
            newest = later
    return newest


async def check_stale_amounts(conn: AsyncConnection, prefix: str) -> Check:
    c = Check(NAME)
    events = await _events(conn, prefix)
    sent = (await conn.execute(text(
        "SELECT message_id, product_id, source_id, template, claimed_at, fields "
        "FROM notifier.messages WHERE account_id LIKE :p AND status = ANY(:sent) "
        "AND claimed_at IS NOT NULL AND template = ANY(:templates)"),
        {"p": _like(prefix), "sent": list(SENT),
         "templates": sorted(t.value for t in REVISED_TEMPLATES)})).all()
    checked = [m for m in sent if m.fields is not None]
    c.expected = c.found = len(checked)
    wrong = []
    for m in checked:
        heard = owed_when_it_left(m.source_id, m.claimed_at, events.get(m.product_id, []))
        quoted = fields_from(m.fields).amount_fen
        if heard is None or heard.change is None or heard.change.amount_due_fen == quoted:
            continue
        wrong.append(
            f"{m.message_id} ({TemplateName(m.template)}) left at {m.claimed_at.isoformat()} "
            f"quoting {fen_to_yuan_text(quoted)} yuan, but the product owed "
            f"{fen_to_yuan_text(heard.change.amount_due_fen)} of its own (amount change "
            f"{heard.event_id} applied "
            f"{heard.applied_at.isoformat() if heard.applied_at else '-'})")
    c.flag("wrong", len(wrong), wrong)
    c.notes["left without stored fields (before notifier migration 0008)"] = len(sent) - len(
        checked)
    c.notes["revised before leaving"] = int(await conn.scalar(text(
        "SELECT count(*) FROM notifier.messages WHERE account_id LIKE :p "
        "AND revised_at IS NOT NULL"), {"p": _like(prefix)}) or 0)
    return c
