"""Review tasks for a credit-admin, and the pre-cancellation worklist.

Putting a customer on the red list (or under an emergency no-suspension) stops every automatic
sanction from then on; a product sanctioned before it stays as it is until a credit-admin
decides: restore (a restore decision through the same path as a payment's: ADC at once, a
chain command for MAS / SMS-direct, a restore work order for WORK_ORDER products) or keep.
Opening and deciding are audited (`GET /v1/audit?entity=review`)."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import CreditState, DecisionType
from common.errors import Conflict, NotFound

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from ..adapters import repository as repo
from ..adapters import review_sql
from ..domain import reviews as domain
from ..domain.reviews import DecideReview, ReviewDecision, ReviewStatus
from ..domain.rules import RESTORABLE, Intent
from .one_product import product_batch


async def open_for_exemption(ctx: CreditContext, conn: AsyncConnection,
                             exemption: dict[str, Any], by: str, at: datetime) -> list[str]:
    """In the exemption's transaction: one review per product of the customer that is
    sanctioned now. Returns the review ids opened."""
    opened = []
    for p in await review_sql.sanctioned_products(
            conn, exemption["customer_id"], [s.value for s in domain.SANCTIONED]):
        review_id = domain.review_id(exemption["exemption_id"], p.product_id)
        values = {"review_id": review_id, "product_id": p.product_id,
                  "account_id": p.account_id, "customer_id": exemption["customer_id"],
                  "exemption_id": exemption["exemption_id"],
                  "exemption_kind": exemption["kind"], "state_at_open": p.state,
                  "status": ReviewStatus.OPEN.value, "role": domain.REVIEW_ROLE,
                  "opened_by": by, "opened_at": at}
        if await review_sql.insert_review(conn, values):
            await admin_repo.audit(conn, at, by, "review", review_id, "open", None, {
                k: values[k] for k in ("product_id", "exemption_id", "exemption_kind",
                                       "state_at_open", "status")})
            opened.append(review_id)
    return opened


async def of_exemption(conn: AsyncConnection, exemption_id: str) -> list[str]:
    return [r["review_id"] for r in await review_sql.reviews(
        conn, {"exemption_id": exemption_id}, 1000)]


async def list_reviews(ctx: CreditContext, filters: dict[str, str | None],
                       limit: int) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await review_sql.reviews(conn, filters, limit)


async def get(ctx: CreditContext, review_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await _get(conn, review_id)


async def _get(conn: AsyncConnection, review_id: str) -> dict[str, Any]:
    found = await review_sql.reviews(conn, {"review_id": review_id}, 1)
    if not found:
        raise NotFound(f"unknown review {review_id!r}", id=review_id)
    return found[0]


async def decide(ctx: CreditContext, review_id: str, cmd: DecideReview,
                 by: str) -> dict[str, Any]:
    """restore | keep, once: a decided review answers 409 and changes nothing."""
    at = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        review = await review_sql.review_for_update(conn, review_id)
        if review is None:
            raise NotFound(f"unknown review {review_id!r}", id=review_id)
        if review.status != ReviewStatus.OPEN.value:
            raise Conflict(f"review {review_id} is already {review.status}", id=review_id,
                           status=review.status)
        status, decision_id, outcome = ReviewStatus.KEPT, None, "sanction kept"
        if cmd.decision is ReviewDecision.RESTORE:
            decision_id, outcome = await _restore(ctx, conn, review, by, cmd.note, at)
            status = ReviewStatus.RESTORED if decision_id else ReviewStatus.CLOSED
        await review_sql.decide(conn, review_id, status=status.value, decided_by=by,
                                decided_at=at, note=cmd.note, decision_id=decision_id,
                                outcome=outcome)
        await admin_repo.audit(conn, at, by, "review", review_id, cmd.decision.value,
                               {"status": review.status},
                               {"status": status.value, "note": cmd.note,
                                "decision_id": decision_id, "outcome": outcome})
        return await _get(conn, review_id)


async def _restore(ctx: CreditContext, conn: AsyncConnection, review: Any, by: str, note: str,
                   at: datetime) -> tuple[str | None, str]:
    """A restore decision on the product's stored facts, through the balance path's moves."""
    product = await repo.product_for_update(conn, review.product_id)
    if product is None or CreditState(product.state) not in RESTORABLE:
        state = product.state if product is not None else "unknown"
        return None, f"nothing to restore: the product is {state}"
    found = await product_batch(ctx, conn, product)
    if found is None:  # a product row always comes with its account's position
        raise Conflict(f"no position for account {product.account_id}", id=review.review_id)
    batch, store = found
    intent = Intent(DecisionType.RESTORE, domain.RESTORE_RULE_ID, domain.restore_reason(
        review.review_id, review.exemption_kind, review.exemption_id, by, note),
        period=f"review:{review.review_id}")
    if not batch.decide_one(product.product_id, intent, at, review.review_id,
                            trigger="credit review"):
        return None, f"nothing to restore: the product is {product.state}"
    await store.write(batch.writes)
    decision_id = batch.writes.decisions.decision_id[0]
    after = batch.products[product.product_id].state.value
    return decision_id, f"restore decided: {product.state} → {after}"


async def pre_cancellations(ctx: CreditContext, status: str, since: datetime | None,
                            owner: dict[str, str | None],
                            limit: int) -> dict[str, list[dict[str, Any]]]:
    """The worklist of pre-cancelled lines: those still pre-cancelled (to be cancelled by hand
    when nobody pays) and those lifted since (cancellation is off); `owner`: customer_id and
    account_id filters (None: any)."""
    async with ctx.engine.connect() as conn:
        body: dict[str, list[dict[str, Any]]] = {}
        if status in ("pre_cancel", "all"):
            body["pre_cancelled"] = await review_sql.pre_cancelled(conn, owner, limit)
        if status in ("lifted", "all"):
            body["lifted"] = await review_sql.lifted(conn, since, owner, limit)
        return body
