"""One product decision that no balance event asked for, taken for a collections case: an
associated suspension (关联停机), its restore, a disconnection (拆机 → pre-cancellation). It
goes through the balance path's moves (credit/service_layer/balance_events.Batch.decide_one),
so ADC flips at once, MAS / SMS-direct get a chain command through the gateway-adapter and
WORK_ORDER products a work order, exactly as a sweep's or a payment's decision would."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import CreditState, DecisionType

from ...admin.adapters import admin_repository as admin_repo
from ...credit.adapters import repository as repo
from ...credit.domain.rules import Intent
from ...credit.service_layer.one_product import product_batch
from ...service_layer.context import CreditContext


@dataclass(frozen=True)
class Outcome:
    decision_id: str | None  # None: nothing decided (the product could not move)
    before: str
    after: str
    refusal: str | None = None  # why nothing was decided, when it was not the state


async def decide(ctx: CreditContext, conn: AsyncConnection, product_id: str, intent: Intent,
                 at: datetime, correlation: str,
                 own_due_fen: int | None = None) -> Outcome:
    """Lock the product, decide `intent` on its account's newest position, write it all."""
    product = await repo.product_for_update(conn, product_id)
    if product is None:
        return Outcome(None, "unknown", "unknown")
    found = await product_batch(ctx, conn, product)
    if found is None:  # a product row always comes with its account's position
        return Outcome(None, product.state, product.state)
    batch, store = found
    if intent.decision is DecisionType.SUSPEND and batch.frozen(product_id, at):
        # A freeze stops automatic suspensions in its scope (docs/rules.md): a collections
        # case's too, re-checked at execution like every other condition.
        return Outcome(None, product.state, product.state,
                       "a freeze in force covers the product: its suspension waits")
    if not batch.decide_one(product_id, intent, at, correlation, own_due_fen,
                            trigger="collections case"):
        return Outcome(None, product.state, product.state)
    await store.write(batch.writes)
    after: CreditState = batch.products[product_id].state
    return Outcome(batch.writes.decisions.decision_id[0], product.state, after.value)


async def exempt(conn: AsyncConnection, customer_id: str, at: datetime) -> bool:
    """Red-listed or under an emergency no-suspension at `at`."""
    profiles = await admin_repo.profiles_for(conn, [customer_id])
    profile = profiles.get(customer_id)
    return profile is not None and profile.suspension_exempt(at)
