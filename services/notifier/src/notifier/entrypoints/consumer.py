"""notifier's Kafka entrypoint: credit decisions and state changes → messages."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged, registry
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import handlers
from ..service_layer.context import NotifierContext
from ..service_layer.receiving import CreditEvent

TOPICS = [DECISIONS_TOPIC]
CONTRACTS = registry(CreditDecisionMade, CreditStateChanged)


def _credit_event(envelope: RawEnvelope, payload: Contract) -> CreditEvent:
    if not isinstance(payload, CreditDecisionMade | CreditStateChanged):
        raise UnprocessableMessage(f"notifier does not consume {envelope.type}")
    return payload


def dispatcher(
    ctx: NotifierContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    """One event at a time: the path a batch takes again when one of its events is refused."""
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        await handlers.apply_credit_events(ctx, conn, [(envelope, _credit_event(envelope,
                                                                                 payload))])

    return handle


def batch_dispatcher(
    ctx: NotifierContext,
) -> Callable[[AsyncConnection, list[tuple[RawEnvelope, Contract]]], Awaitable[None]]:
    """A partition's batch at once: one template read and one insert for all its messages."""
    async def handle(conn: AsyncConnection, items: list[tuple[RawEnvelope, Contract]]) -> None:
        await handlers.apply_credit_events(
            ctx, conn, [(env, _credit_event(env, payload)) for env, payload in items])

    return handle
