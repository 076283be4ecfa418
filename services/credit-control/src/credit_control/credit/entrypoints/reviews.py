"""Review tasks for a credit-admin (restore | keep) and the pre-cancellation worklist; included
under the authenticated `/v1` router."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from common.auth import Principal, require
from common.auth import Role as Access
from common.clock import IsoMoment
from common.http import IdPath

from ...service_layer.context import CreditContext
from ..domain.reviews import DecideReview, ReviewStatus
from ..service_layer import reviews

Limit = Annotated[int, Query(ge=1, le=1000)]
CreditAdmin = Annotated[Principal, Depends(require(Access.CREDIT_ADMIN))]


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter()

    @api.get("/reviews")
    async def list_reviews(status: ReviewStatus | None = None, customer_id: str | None = None,
                           product_id: str | None = None, exemption_id: str | None = None,
                           limit: Limit = 500) -> list[dict[str, Any]]:
        """Review tasks (复核) of products sanctioned when their customer was exempted, with
        each product's state now; filtered by status, customer, product or exemption."""
        return await reviews.list_reviews(ctx, {
            "status": status.value if status else None, "customer_id": customer_id,
            "product_id": product_id, "exemption_id": exemption_id}, limit)

    @api.get("/reviews/{review_id}")
    async def get_review(review_id: IdPath) -> dict[str, Any]:
        """One review task, with its product's state now."""
        return await reviews.get(ctx, review_id)

    @api.post("/reviews/{review_id}/decide")
    async def decide(review_id: IdPath, cmd: DecideReview, caller: CreditAdmin) -> dict[str, Any]:
        """Decide a review (credit-admin): restore the product through the normal restore
        path, or keep the sanction; audited."""
        return await reviews.decide(ctx, review_id, cmd, caller.subject)

    @api.get("/pre-cancellations")
    async def pre_cancellations(
        status: Literal["pre_cancel", "lifted", "all"] = "all", since: IsoMoment | None = None,
        customer_id: str | None = None, account_id: str | None = None, limit: Limit = 500,
    ) -> dict[str, list[dict[str, Any]]]:
        """The pre-cancellation worklist (预拆机): lines still pre-cancelled (to cancel by hand
        when nobody pays) and those lifted since `since`; by customer or account."""
        return await reviews.pre_cancellations(
            ctx, status, since, {"customer_id": customer_id, "account_id": account_id}, limit)

    return api
