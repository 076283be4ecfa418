"""gateway-adapter's Kafka entrypoint: provisioning commands → the chain."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import COMMANDS_TOPIC, ProvisioningCommand, registry
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import handlers
from ..service_layer.context import GatewayContext

TOPICS = [COMMANDS_TOPIC]
CONTRACTS = registry(ProvisioningCommand)


def dispatcher(
    ctx: GatewayContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        if not isinstance(payload, ProvisioningCommand):
            raise UnprocessableMessage(f"gateway-adapter does not consume {envelope.type}")
        await handlers.accept_command(ctx, conn, envelope, payload)

    return handle
