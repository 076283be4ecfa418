"""The rating model's HTTP routes (docs/rating.md). Reading: any signed-in role (ops-viewer
and above); runs, scorecard changes and overrides: credit-admin."""

from datetime import date
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from common.auth import Principal, require
from common.auth import Role as Access
from common.http import IdPath
from common.ids import ID_MAX_LENGTH, ID_PATTERN

from ...service_layer.context import CreditContext
from ..domain.commands import (
    AddOverride,
    PutScorecard,
    RemoveOverride,
    ReviewMultiple,
    Revisit,
    RunCheck,
    RunRating,
)
from ..service_layer import churn, multiples, overrides, queries, runs

CreditAdmin = Annotated[Principal, Depends(require(Access.CREDIT_ADMIN))]
Operator = Annotated[Principal, Depends(require(Access.OPERATOR))]
Limit = Annotated[int, Query(ge=1, le=1000)]
ChurnCause = Literal["suspended_high_star", "repeated", "pre_cancelled"]
# A churn entry's id is made by the scan (service_layer/churn.py):
# `churn:<customer id>:<cause>:<YYYY-MM-DD>`. Of the ids' pattern, but with a customer id of
# 64 it is longer than an id may be (101): the path takes what the scan makes, no more.
CHURN_ENTRY_ID_MAX_LENGTH = (len("churn:") + ID_MAX_LENGTH + 1 + max(map(len, get_args(ChurnCause)))
                             + len(":YYYY-MM-DD"))
ChurnEntryPath = Annotated[str, Path(min_length=1, max_length=CHURN_ENTRY_ID_MAX_LENGTH,
                                     pattern=ID_PATTERN)]


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
    async def rating(customer_id: IdPath) -> dict[str, Any]:
        """A customer's rating, every change with its inputs and reason, its overrides."""
        return await queries.customer_rating(ctx, customer_id)

    @api.post("/ratings/{customer_id}/overrides", status_code=201)
    async def add_override(customer_id: IdPath, cmd: AddOverride,
                           caller: CreditAdmin) -> JSONResponse:
        """Override the customer's star and limit until an expiry, with a reason; the same
        id and body again answer the first answer."""
        stored = await overrides.add_override(
            ctx, customer_id, cmd.model_copy(update={"created_by": caller.subject}))
        return JSONResponse(stored.body, status_code=stored.status_code)

    @api.post("/ratings/overrides/{override_id}/remove")
    async def remove_override(override_id: IdPath, cmd: RemoveOverride,
                              caller: CreditAdmin) -> dict[str, Any]:
        """End an override early: the profile returns to the model's rating."""
        return await overrides.remove_override(ctx, override_id, cmd.reason, caller.subject)

    _multiple_routes(api, ctx)
    _churn_routes(api, ctx)
    return api


def _multiple_routes(api: APIRouter, ctx: CreditContext) -> None:
    @api.post("/credit-multiples/checks")
    async def check(cmd: RunCheck, caller: Operator) -> dict[str, Any]:
        """The day's credit-multiple check (信控倍数, seed 002), as of a time; once per day."""
        return await multiples.check(ctx, cmd.as_of)

    @api.get("/credit-multiples")
    async def listing(check_date: date,
                      status: Literal["open", "reviewed"] | None = None
                      ) -> list[dict[str, Any]]:
        """Customers whose limit is above the allowed multiple of their average bill."""
        return await multiples.listing(ctx, check_date, status)

    @api.post("/credit-multiples/{check_date}/{customer_id}/review")
    async def review(check_date: date, customer_id: IdPath, cmd: ReviewMultiple,
                     caller: CreditAdmin) -> dict[str, Any]:
        """A credit-admin's review of one finding, with a note (e.g. an override lowered it)."""
        return await multiples.review(ctx, check_date, customer_id, cmd.note, caller.subject)


def _churn_routes(api: APIRouter, ctx: CreditContext) -> None:
    @api.post("/churn/scans")
    async def scan(cmd: RunCheck, caller: Operator) -> dict[str, Any]:
        """Scan for potential churn as of a time (suspended good customers, repeated
        suspensions, pre-cancelled); idempotent."""
        return await churn.scan(ctx, cmd.as_of)

    @api.get("/churn/entries")
    async def entries(status: Literal["open", "revisited"] | None = None,
                      cause: ChurnCause | None = None, limit: Limit = 200) -> list[dict[str, Any]]:
        """The potential-churn list: one revisit task per entry."""
        return await churn.entries(ctx, status, cause, limit)

    @api.post("/churn/entries/{entry_id}/revisit")
    async def revisit(entry_id: ChurnEntryPath, cmd: Revisit, caller: Operator) -> dict[str, Any]:
        """The revisit's outcome; a customer who left gets seed 003's reason."""
        return await churn.revisit(ctx, entry_id, cmd, caller.subject)
