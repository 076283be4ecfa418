"""The dashboard's rating page (`/dashboard/rating`): seed 004's reports (star distribution
against the seed's shares, suspension time per star, recovery after emergency no-suspension,
churn rate by star), the day's credit-multiple findings and the open churn revisits, each
with its CSV. Every signed-in role may look (ops-viewer and above)."""

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from common.auth import TokenTable
from common.clock import business_date
from common.http import MonthQuery

from ...rating.service_layer import churn, multiples
from ..service_layer import rating_reports as rr
from ..service_layer.reports import ReportContext
from .dashboard import _page, _signed_in
from .rating_reports import _month, answer

Kind = Literal["stars", "suspension-time", "emergency-recovery", "churn-rate",
               "credit-multiples", "churn-list"]


def router(rc: ReportContext, tokens: TokenTable) -> APIRouter:
    pages = APIRouter(prefix="/dashboard/rating", include_in_schema=False)

    @pages.get("")
    async def rating_page(request: Request, month: MonthQuery | None = None) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        chosen = _month(month) if month else rc.today().replace(day=1)
        data = await _sections(rc, chosen)
        return _page("rating.html", who, month=f"{chosen:%Y-%m}", **data)

    @pages.get("/{kind}.csv")
    async def rating_csv(request: Request, kind: Kind,
                         month: MonthQuery | None = None) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        chosen = _month(month) if month else rc.today().replace(day=1)
        body = (await _sections(rc, chosen))[kind.replace("-", "_")]
        return answer("csv", f"{kind}-{chosen:%Y-%m}", body)

    return pages


async def _sections(rc: ReportContext, month: date) -> dict[str, Any]:
    ctx = rc.credit
    today = business_date(ctx.clock.now())
    return {
        "stars": await rr.star_distribution(ctx),
        "suspension_time": await rr.suspension_time(ctx, month, None),
        "emergency_recovery": await rr.emergency_recovery(ctx, month, None),
        "churn_rate": await rr.churn_rate(ctx, month),
        "credit_multiples": {"rows": await multiples.listing(ctx, today, "open"),
                             "check_date": today.isoformat()},
        "churn_list": {"rows": await churn.entries(ctx, "open", None, 200)},
    }
