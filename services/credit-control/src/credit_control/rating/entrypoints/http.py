"""The rating model's HTTP routes (docs/rating.md). Reading: any signed-in role (ops-viewer
and above); runs, scorecard changes and overrides: credit-admin."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from common.auth import Principal, require
from common.auth import Role as Access

from ...service_layer.context import CreditContext
from ..domain.commands import AddOverride, PutScorecard, RemoveOverride, RunRating
from ..service_layer import overrides, queries, runs

CreditAdmin = Annotated[Principal, Depends(require(Access.CREDIT_ADMIN))]


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter(tags=["rating"])

    @api.post("/ratings/runs")
    async def run(cmd: RunRating, caller: CreditAdmin) -> dict[str, Any]:
        """Run the basic (monthly) or guidance (half-yearly) model as of a time; a second run
        of the same period returns the first's summary and changes nothing."""
        return await runs.run(ctx, cmd.model, cmd.as_of, caller.subject)

    @api.get("/ratings/scorecard")
    async def scorecard() -> dict[str, Any]:
        """The scorecard in force: factors, weights, cut-offs, guidance rules, tiers."""
        return await queries.get_scorecard(ctx)

    @api.put("/ratings/scorecard")
    async def put_scorecard(cmd: PutScorecard, caller: CreditAdmin) -> dict[str, Any]:
        """A new scorecard version (the next number), with a reason; audited."""
        return await queries.put_scorecard(
            ctx, cmd.model_copy(update={"changed_by": caller.subject}))

    @api.get("/ratings/{customer_id}")
    async def rating(customer_id: str) -> dict[str, Any]:
        """A customer's rating, every change with its inputs and reason, its overrides."""
        return await queries.customer_rating(ctx, customer_id)

    @api.post("/ratings/{customer_id}/overrides", status_code=201)
    async def add_override(customer_id: str, cmd: AddOverride,
                           caller: CreditAdmin) -> dict[str, Any]:
        """Override the customer's star and limit until an expiry, with a reason."""
        return await overrides.add_override(
            ctx, customer_id, cmd.model_copy(update={"created_by": caller.subject}))

    @api.post("/ratings/overrides/{override_id}/remove")
    async def remove_override(override_id: str, cmd: RemoveOverride,
                              caller: CreditAdmin) -> dict[str, Any]:
        """End an override early: the profile returns to the model's rating."""
        return await overrides.remove_override(ctx, override_id, cmd.reason, caller.subject)

    return api
