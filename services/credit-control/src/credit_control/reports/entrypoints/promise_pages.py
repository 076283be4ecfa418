"""The dashboard's promises page (`/dashboard/promises`): promises to pay made in a period per
account manager (made, kept, broken, open), the open ones and the broken ones, with the
report's CSV (docs/collections.md "Promises to pay"). Every signed-in role may look; names
are masked for callers who may not see personal data."""

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from common.auth import TokenTable
from common.clock import business_date
from common.pii import redact

from ...collections.service_layer import promises
from ..service_layer.reports import ReportContext
from .dashboard import _page, _signed_in

LISTED = 200


def router(rc: ReportContext, tokens: TokenTable) -> APIRouter:
    pages = APIRouter(prefix="/dashboard/promises", include_in_schema=False)

    @pages.get("")
    async def promises_page(request: Request,
                            since: Annotated[date | None, Query(alias="from")] = None,
                            until: Annotated[date | None, Query(alias="to")] = None) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        today = business_date(rc.credit.clock.now())
        until = until or today
        since = since or (until - timedelta(days=30))
        data: dict[str, Any] = {
            "report": await promises.report(rc.credit, since, until),
            "open": await promises.listed(rc.credit, "open", None, None, None, LISTED),
            "broken": await promises.listed(rc.credit, "broken", None, None, None, LISTED)}
        shown = data if who.sees_pii else redact(data)
        return _page("promises.html", who, since=since.isoformat(), until=until.isoformat(),
                     **shown)

    return pages
