"""A product's timeline: what credit-control decided and moved (the explain view) next to
what the notifier did with each message — sent, delivered, held, or cancelled at send time
with the reason (issue 15: a superseded reminder is visible where staff look for "why") —
and what the chain did with each command (BOSS → EMOS → gateway, from the gateway-adapter's
HTTP API: credit-control reads no other service's database)."""

from datetime import datetime
from typing import Any

from ...adapters.peers import PeerUnavailable
from ...admin.service_layer.admin import product_credit
from ..domain.chain_steps import chain_steps
from .reports import ReportContext

# What staff need to follow a message; the number and the text stay in the notifier's log
# (GET /v1/messages), where read-only callers see them masked.
MESSAGE_FIELDS = ("message_id", "source_id", "template", "role", "trigger", "status",
                  "status_reason", "decision_as_of", "created_at", "submitted_at",
                  "delivered_at", "cancelled_at")


async def product_timeline(rc: ReportContext, product_id: str,
                           as_of: datetime | None = None) -> dict[str, Any]:
    """The explain view plus `messages` (the notifier's) and `chain_steps` (the gateway
    chain's, BOSS → EMOS → gateway, per command attempt); with a peer away the rest still
    answers and `messages_unavailable` / `chain_unavailable` says why (a timeline must not
    fail for want of one part)."""
    found = await product_credit(rc.credit, product_id, as_of)
    return {**found, **await _messages(rc, product_id), **await _chain(rc, product_id)}


async def _messages(rc: ReportContext, product_id: str) -> dict[str, Any]:
    try:
        messages = await rc.peers.product_messages(product_id)
    except PeerUnavailable as exc:
        return {"messages": [], "messages_unavailable": exc.message}
    return {"messages": [{k: m.get(k) for k in MESSAGE_FIELDS} for m in messages]}


async def _chain(rc: ReportContext, product_id: str) -> dict[str, Any]:
    try:
        chain = await rc.peers.product_chain(product_id)
    except PeerUnavailable as exc:
        return {"chain_steps": [], "chain_unavailable": exc.message}
    return {"chain_steps": chain_steps(chain)}
