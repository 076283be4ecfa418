"""credit-control's Kafka entrypoint: balance events and provisioning results → use cases."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import (
    BALANCE_TOPIC,
    RESULTS_TOPIC,
    BalanceChanged,
    ProvisioningResult,
    registry,
)
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import handlers
from ..service_layer.handlers import CreditContext

TOPICS = [BALANCE_TOPIC, RESULTS_TOPIC]
CONTRACTS = registry(BalanceChanged, ProvisioningResult)


def dispatcher(
    ctx: CreditContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        if isinstance(payload, BalanceChanged):
            await handlers.apply_balance_event(ctx, conn, envelope, payload)
        elif isinstance(payload, ProvisioningResult):
            await handlers.apply_provisioning_result(ctx, conn, envelope, payload)
        else:
            raise UnprocessableMessage(f"credit-control does not consume {envelope.type}")

    return handle
