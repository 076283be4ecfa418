"""`GET /v1/reports/{stars,suspension-time,emergency-recovery,churn-rate}`: seed 004's effects
(docs/rating.md), JSON or CSV (`?format=csv`); reads only, open to every role (ops-viewer
and above)."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from common.auth import authenticate
from common.clock import IsoMoment, parse_bill_month
from common.errors import Unprocessable
from common.http import JSON_OR_CSV, MonthQuery

from ...config import Settings
from ...entrypoints.csv_safe import csv_attachment
from ...rating.service_layer import churn, multiples
from ...service_layer.context import CreditContext
from ..service_layer import rating_reports as rr

Format = Literal["json", "csv"]


def router(ctx: CreditContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1/reports", tags=["reports"],
                    dependencies=[Depends(authenticate(settings.token_table()))])

    @api.get("/stars", responses=JSON_OR_CSV)
    async def stars(format: Format = "json") -> Response:
        """Customers per star level against seed 004's shares."""
        return answer(format, "stars", await rr.star_distribution(ctx))

    @api.get("/suspension-time", responses=JSON_OR_CSV)
    async def suspension_time(month: MonthQuery, as_of: IsoMoment | None = None,
                              format: Format = "json") -> Response:
        """Average suspension time per star level of the suspensions begun in the month."""
        return answer(format, f"suspension-time-{month}",
                      await rr.suspension_time(ctx, _month(month), as_of))

    @api.get("/emergency-recovery", responses=JSON_OR_CSV)
    async def emergency_recovery(month: MonthQuery, as_of: IsoMoment | None = None,
                                 format: Format = "json") -> Response:
        """Recovery of arrears run up under an emergency no-suspension, begun in the month."""
        return answer(format, f"emergency-recovery-{month}",
                      await rr.emergency_recovery(ctx, _month(month), as_of))

    @api.get("/churn-rate", responses=JSON_OR_CSV)
    async def churn_rate(month: MonthQuery, format: Format = "json") -> Response:
        """Churn rate per star level in the month (seed 004: 0.09 % credited, 2.01 % not)."""
        return answer(format, f"churn-rate-{month}", await rr.churn_rate(ctx, _month(month)))

    @api.get("/credit-multiples", responses=JSON_OR_CSV)
    async def credit_multiples(check_date: date, format: Format = "json") -> Response:
        """The day's credit-multiple findings (also as CSV)."""
        rows = await multiples.listing(ctx, check_date, None)
        return answer(format, f"credit-multiples-{check_date}", {"rows": rows})

    @api.get("/churn-list", responses=JSON_OR_CSV)
    async def churn_list(status: Literal["open", "revisited"] | None = None,
                         limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
                         format: Format = "json") -> Response:
        """The potential-churn list with revisit outcomes (also as CSV)."""
        rows = await churn.entries(ctx, status, None, limit)
        return answer(format, "churn-list", {"rows": rows})

    return api


def _month(text: str) -> date:
    try:
        return parse_bill_month(text)
    except ValueError as exc:
        raise Unprocessable(str(exc), field="month") from exc


def answer(format: Format, name: str, body: dict[str, Any]) -> Response:
    if format == "json":
        return JSONResponse(jsonable(body))
    rows = body["rows"]
    header = list(rows[0]) if rows else ["(no rows)"]
    return csv_attachment(name, header, [[_cell(r[k]) for k in header] for r in rows])


def _cell(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def jsonable(value: Any) -> Any:
    return jsonable_encoder(value)
