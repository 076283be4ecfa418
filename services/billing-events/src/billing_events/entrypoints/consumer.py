"""billing's Kafka entrypoint: credit-control's deduction (划扣) decisions → use case; every
decision and state change → the products held under a sanction (service_layer/sanctions.py)."""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts import (
    DECISIONS_TOPIC,
    CreditDecisionMade,
    CreditStateChanged,
    DeductionCollected,
    ExemptionChanged,
    ProductAmountChanged,
    SuspensionDeferred,
    registry,
)
from common.contracts.credit_control import DecisionType
from common.envelope import Contract, RawEnvelope, UnprocessableMessage
from common.errors import Unprocessable

from ..domain.commands import ApplyDeduction
from ..service_layer import handlers, late_fees, sanctions
from ..service_layer.context import BillingContext

TOPICS = [DECISIONS_TOPIC]
# State changes share the topic: they say when a sanction is confirmed or lifted. A product's
# revised amount, a deduction's notice fact, an exemption's change and a promise's deferral
# share it too: nothing for billing, which knows the amounts and what it collected first.
CONTRACTS = registry(CreditDecisionMade, CreditStateChanged, ProductAmountChanged,
                     DeductionCollected, ExemptionChanged, SuspensionDeferred)


def dispatcher(
    ctx: BillingContext,
) -> Callable[[AsyncConnection, RawEnvelope, Contract], Awaitable[None]]:
    async def handle(conn: AsyncConnection, envelope: RawEnvelope, payload: Contract) -> None:
        if isinstance(payload, CreditDecisionMade | CreditStateChanged):
            await sanctions.record(conn, payload.product_id, payload.state_before,
                                   payload.state_after, payload.as_of, payload.decision_id)
        if not isinstance(payload, CreditDecisionMade):
            return  # credit.state_changed: nothing more for billing
        if ctx.late_fees.enabled:  # late fees are never charged to an exempt customer
            await late_fees.record_exemption_fact(
                conn, payload.account_id, payload.context.suspension_exempt, payload.as_of,
                payload.decision_id)
        if payload.decision is not DecisionType.DEDUCTION:
            return  # notices, warnings, suspensions: the notifier's and the gateway's
        if payload.amount_fen is None or payload.amount_fen <= 0:
            raise UnprocessableMessage(
                f"deduction {payload.decision_id} without a positive amount_fen")
        try:
            await handlers.apply_deduction(ctx, conn, ApplyDeduction(
                decision_id=payload.decision_id, account_id=payload.account_id,
                requested_fen=payload.amount_fen, as_of=payload.as_of))
        except Unprocessable as exc:
            # A rule the write breaks (an account whose event would leave the contract's
            # bounds) holds for every redelivery: dead-lettered with its reason, not retried.
            raise UnprocessableMessage(f"deduction {payload.decision_id}: {exc.message}") from exc

    return handle
