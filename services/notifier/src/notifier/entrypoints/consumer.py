"""notifier's Kafka entrypoint: credit decisions and state changes → messages.

The runner decodes each message once with the contracts' decoder (common.contracts): the
envelope and its typed CreditDecisionMade / CreditStateChanged, every bound checked. A message
the contract refuses never reaches the handlers: the runner dead-letters it with the reason."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged, registry
from common.contracts.credit_control import CreditEvent
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import handlers
from ..service_layer.context import NotifierContext

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
    """A batch at once: one template read and one insert for all its messages."""
    async def handle(conn: AsyncConnection, items: list[tuple[RawEnvelope, Contract]]) -> None:
        events = [(env, _credit_event(env, payload)) for env, payload in items]
        await handlers.apply_credit_events(ctx, conn, events)

    return handle
