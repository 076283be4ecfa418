"""credit-control's Kafka entrypoint: balance events and provisioning results → use cases."""

from collections.abc import Awaitable, Callable
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import (
    BALANCE_TOPIC,
    NOTICES_TOPIC,
    RESULTS_TOPIC,
    BalanceChanged,
    NoticeOutcome,
    ProvisioningResult,
    registry,
)
from common.envelope import Contract, RawEnvelope, UnprocessableMessage

from ...rating.adapters import rating_sql
from ...service_layer.context import CreditContext
from ..service_layer import balance_events, handlers, notices
from ..service_layer.balance_store import SqlBalanceStore

TOPICS = [BALANCE_TOPIC, RESULTS_TOPIC, NOTICES_TOPIC]
CONTRACTS = registry(BalanceChanged, ProvisioningResult, NoticeOutcome)


def batch_dispatcher(
    ctx: CreditContext,
) -> Callable[[AsyncConnection, list[tuple[RawEnvelope, Contract]]], Awaitable[None]]:
    """Balance events set-wise; anything else one by one. Runs of the same type keep order."""
    single = dispatcher(ctx)

    async def handle_batch(
        conn: AsyncConnection, items: list[tuple[RawEnvelope, Contract]]
    ) -> None:
        for is_balance, run in groupby(items, key=lambda i: isinstance(i[1], BalanceChanged)):
            if is_balance:
                balances = [(e, p) for e, p in run if isinstance(p, BalanceChanged)]
                applied = await balance_events.apply_balance_events(
                    SqlBalanceStore(ctx, conn), balances)
                await rating_sql.record_inputs(conn, [p for _, p in balances],  # issue 18
                                               applied.current, applied.due_before,
                                               applied.peak_due)
            else:
                for envelope, payload in run:
                    await single(conn, envelope, payload)

    return handle_batch


def dispatcher(
    ctx: CreditContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        if isinstance(payload, BalanceChanged):
            applied = await balance_events.apply_balance_events(SqlBalanceStore(ctx, conn),
                                                                [(envelope, payload)])
            await rating_sql.record_inputs(conn, [payload], applied.current,  # issue 18
                                           applied.due_before, applied.peak_due)
        elif isinstance(payload, ProvisioningResult):
            await handlers.apply_provisioning_result(ctx, conn, envelope, payload)
        elif isinstance(payload, NoticeOutcome):
            await notices.apply_notice_outcome(conn, payload)
        else:
            raise UnprocessableMessage(f"credit-control does not consume {envelope.type}")

    return handle
