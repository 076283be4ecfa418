"""`GET /v1/reports/...`: JSON, or a CSV download with `?format=csv` / `Accept: text/csv`.
Reads only: open to every role."""

from collections.abc import Awaitable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from common.auth import authenticate
from common.clock import IsoDay, parse_bill_month
from common.errors import Unprocessable
from common.http import JSON_OR_CSV, PEER_UNAVAILABLE, MonthQuery

from ...config import Settings
from ...entrypoints.csv_safe import csv_attachment
from ..domain.reports import flatten
from ..service_layer import reports
from ..service_layer.reports import ReportContext

Prefix = Annotated[str, Query(max_length=64, description="only products whose id starts so")]
Format = Literal["json", "csv"]
# Reports read billing's, the notifier's and the gateway's figures: a peer away is a 502.
REPORT_RESPONSES = {**JSON_OR_CSV, **PEER_UNAVAILABLE}


def router(rc: ReportContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1/reports", tags=["reports"],
                    dependencies=[Depends(authenticate(settings.token_table()))])

    @api.get("/arrears", responses=REPORT_RESPONSES)
    async def arrears(request: Request, month: MonthQuery, through: MonthQuery | None = None,
                      as_of: IsoDay | None = None, format: Format = "json") -> Response:
        """欠费率 per bill month (month..through) by family, tier, channel and region."""
        first = _month(month, "month")
        last = _month(through, "through") if through else first
        if last < first:
            raise Unprocessable("`through` must not be before `month`", month=month,
                                through=through)
        if (last.year * 12 + last.month) - (first.year * 12 + first.month) >= 36:
            raise Unprocessable("at most 36 bill months per report", month=month,
                                through=through)
        return await _answer(request, format, "arrears", f"arrears-{month}",
                             reports.arrears(rc, first, last, as_of))

    @api.get("/recovery", responses=REPORT_RESPONSES)
    async def recovery(request: Request, month: MonthQuery, as_of: IsoDay | None = None,
                       format: Format = "json") -> Response:
        """当月 and 三月内 recovery rates of a bill month."""
        return await _answer(request, format, "recovery", f"recovery-{month}",
                             reports.recovery(rc, _month(month, "month"), as_of))

    @api.get("/aging", responses=REPORT_RESPONSES)
    async def aging(request: Request, month: MonthQuery, as_of: IsoDay | None = None,
                    since: MonthQuery | None = None, format: Format = "json") -> Response:
        """账龄 of the arrears open at the end of the month (or on `as_of`)."""
        return await _answer(request, format, "aging", f"aging-{month}", reports.aging(
            rc, _month(month, "month"), as_of, _month(since, "since") if since else None))

    @api.get("/kpis", responses=REPORT_RESPONSES)
    async def kpis(request: Request, month: MonthQuery, as_of: IsoDay | None = None,
                   product_prefix: Prefix = "", format: Format = "json") -> Response:
        """Arrears rate, reminder timeliness, EMOS cross-month, missed suspensions, overdue
        work orders, each against the seed's standard."""
        return await _answer(request, format, "kpis", f"kpis-{month}", reports.kpis(
            rc, _month(month, "month"), as_of, product_prefix))

    @api.get("/states", responses=REPORT_RESPONSES)
    async def states(request: Request, month: MonthQuery, as_of: IsoDay | None = None,
                     product_prefix: Prefix = "", format: Format = "json") -> Response:
        """Products in each credit state at the end of the month (or on `as_of`)."""
        return await _answer(request, format, "states", f"states-{month}", reports.states(
            rc, _month(month, "month"), as_of, product_prefix))

    return api


def _month(text: str, field: str) -> date:
    try:
        return parse_bill_month(text)
    except ValueError as exc:
        raise Unprocessable(str(exc), field=field) from exc


async def _answer(request: Request, format: Format, kind: str, name: str,
                  making: Awaitable[dict[str, Any]]) -> Response:
    wants_csv = format == "csv" or (
        "text/csv" in request.headers.get("accept", "") and "format" not in request.query_params)
    body = await making
    if not wants_csv:
        return JSONResponse(body)
    return csv_download(kind, name, body)


def csv_download(kind: str, name: str, body: dict[str, Any]) -> Response:
    """A report as a CSV attachment (also the dashboard's download links)."""
    header, cells = flatten(reports.csv_rows(kind, body))
    return csv_attachment(name, header, cells)
