"""notifier's Kafka entrypoint: credit decisions and state changes → messages; what a
deduction collected → the deduction notice; a product's changed own amount → its notices not
sent yet revised (docs/notifier.md "Amounts still true when they leave").

The runner decodes each message once with the contracts' decoder (common.contracts): the
envelope and its typed CreditDecisionMade / CreditStateChanged / DeductionCollected /
ProductAmountChanged / ExemptionChanged / SuspensionDeferred, every bound checked. A message
the contract refuses never reaches the handlers: the runner dead-letters it with the reason.
The six go to the service layer
together, in the order they came (keyed by account: a product's amount change after the
decisions it follows)."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged, registry
from common.contracts.credit_control import (
    DeductionCollected,
    ExemptionChanged,
    ProductAmountChanged,
    SuspensionDeferred,
)
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import handlers
from ..service_layer.context import NotifierContext
from ..service_layer.receiving import NotifierEvent

TOPICS = [DECISIONS_TOPIC]
CONTRACTS = registry(CreditDecisionMade, CreditStateChanged, DeductionCollected,
                     ProductAmountChanged, ExemptionChanged, SuspensionDeferred)
_CONSUMED = (CreditDecisionMade | CreditStateChanged | DeductionCollected | ProductAmountChanged
             | ExemptionChanged | SuspensionDeferred)


def _credit_event(envelope: RawEnvelope, payload: Contract) -> NotifierEvent:
    if not isinstance(payload, _CONSUMED):
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
