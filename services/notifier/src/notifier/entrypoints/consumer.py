"""notifier's Kafka entrypoint: credit decisions and state changes → messages.

The runner checks the envelope (pydantic `RawEnvelope`) and that the payload is an object;
the payload itself is read with msgspec (domain/events.py), which validates the whole
contract at a fraction of pydantic's cost. A payload it refuses raises UnprocessableMessage:
the runner then applies the batch event by event and dead-letters that one with the reason."""

from collections.abc import Awaitable, Callable
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged, registry
from common.envelope import Contract, RawEnvelope

from ..domain.events import CreditEventView, decode_event
from ..service_layer import handlers
from ..service_layer.context import NotifierContext

TOPICS = [DECISIONS_TOPIC]


class _DecisionPayload(Contract):
    """credit.decision_made as the runner sees it: any object (fields: see DecisionEvent)."""

    event_type: ClassVar[str] = CreditDecisionMade.event_type
    topic: ClassVar[str] = DECISIONS_TOPIC


class _StateChangePayload(Contract):
    """credit.state_changed as the runner sees it: any object (fields: StateChangeEvent)."""

    event_type: ClassVar[str] = CreditStateChanged.event_type
    topic: ClassVar[str] = DECISIONS_TOPIC


CONTRACTS = registry(_DecisionPayload, _StateChangePayload)


def _credit_event(envelope: RawEnvelope) -> CreditEventView:
    return decode_event(envelope.type, envelope.payload)


def dispatcher(
    ctx: NotifierContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    """One event at a time: the path a batch takes again when one of its events is refused."""
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        await handlers.apply_credit_events(ctx, conn, [(envelope, _credit_event(envelope))])

    return handle


def batch_dispatcher(
    ctx: NotifierContext,
) -> Callable[[AsyncConnection, list[tuple[RawEnvelope, Contract]]], Awaitable[None]]:
    """A partition's batch at once: one template read and one insert for all its messages.
    Every payload is decoded before anything is written."""
    async def handle(conn: AsyncConnection, items: list[tuple[RawEnvelope, Contract]]) -> None:
        events = [(env, _credit_event(env)) for env, _ in items]
        await handlers.apply_credit_events(ctx, conn, events)

    return handle
