"""notifier's Kafka entrypoint: credit decisions and state changes → messages."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged, registry
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import handlers
from ..service_layer.handlers import NotifierContext

TOPICS = [DECISIONS_TOPIC]
CONTRACTS = registry(CreditDecisionMade, CreditStateChanged)


def dispatcher(
    ctx: NotifierContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        if not isinstance(payload, CreditDecisionMade | CreditStateChanged):
            raise UnprocessableMessage(f"notifier does not consume {envelope.type}")
        await handlers.apply_credit_event(ctx, conn, envelope, payload)

    return handle
