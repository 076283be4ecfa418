"""gateway-adapter's Kafka entrypoint: provisioning commands → the chain."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import COMMANDS_TOPIC, ProvisioningCommand, registry
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ..service_layer import accept, handlers
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


def batch_dispatcher(
    ctx: GatewayContext,
) -> Callable[[AsyncConnection, list[tuple[RawEnvelope, Contract]]], Awaitable[None]]:
    """A partition's batch of commands accepted set-wise, in one go."""
    async def handle_batch(
        conn: AsyncConnection, items: list[tuple[RawEnvelope, Contract]]
    ) -> None:
        commands = []
        for envelope, payload in items:
            if not isinstance(payload, ProvisioningCommand):
                # The consumer redoes the batch event by event and sets this one aside.
                raise UnprocessableMessage(f"gateway-adapter does not consume {envelope.type}")
            commands.append((envelope, payload))
        await accept.accept_commands(ctx, conn, commands)

    return handle_batch
