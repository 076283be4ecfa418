"""Red-list review over HTTP (docs/collections.md "Red-list review"), under the authenticated
`/v1` prefix: the worklist for every role, renewal for a credit-admin, the lapse run for an
operator (the daily scheduler runs it too)."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from common.auth import Principal, Role, require
from common.clock import BusinessTime, IsoMoment, business_date, parse_bill_month
from common.errors import Unprocessable
from common.http import IdPath

from ...credit.domain.commands import NO_NUL
from ...service_layer.context import CreditContext
from ..service_layer import red_list_review as review

CreditAdmin = Annotated[Principal, Depends(require(Role.CREDIT_ADMIN))]


class RenewRedList(BaseModel):
    """Keep the customer on the red list: a reason, and optionally the next review date
    (default: the review period after the later of the current review date and today)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    note: Annotated[str, Field(min_length=1, max_length=1000, pattern=NO_NUL)]
    review_on: date | None = None


class LapseRedList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: BusinessTime


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter(tags=["red-list review"])

    @api.get("/red-list/reviews")
    async def reviews(month: str | None = None,
                      as_of: IsoMoment | None = None) -> dict[str, Any]:
        """红名单复核: red-list entries due for review by the end of `month` (default: the
        month of `as_of`, default now), with each customer's arrears and red-list history."""
        at = as_of or ctx.clock.now()
        try:
            first = parse_bill_month(month) if month else business_date(at).replace(day=1)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="month") from exc
        return await review.worklist(ctx, first, at)

    @api.post("/red-list/{exemption_id}/renew")
    async def renew(exemption_id: IdPath, cmd: RenewRedList,
                    caller: CreditAdmin) -> dict[str, Any]:
        """Renew a red-list entry until its next review date (credit-admin); audited."""
        return await review.renew(ctx, exemption_id, cmd.note, cmd.review_on, caller.subject)

    @api.post("/red-list/lapse", dependencies=[Depends(require(Role.OPERATOR))])
    async def lapse(cmd: LapseRedList) -> dict[str, Any]:
        """Lapse the red-list entries not renewed by their review date (idempotent)."""
        return await review.lapse(ctx, cmd.as_of)

    return api
