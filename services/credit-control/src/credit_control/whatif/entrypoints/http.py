"""POST /v1/rules/what-if (issue 19): the month replayed under the current rule table and a
draft, and the difference. Read-only but heavy (a month of every product, twice): operators
and credit-admins may run it, not ops-viewer (no POST is open to the read-only role,
tests/security), one at a time, bounded (service_layer/what_if.py)."""

from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from common.auth import Role, authenticate, require
from common.errors import ErrorBody
from common.http import PEER_UNAVAILABLE

from ...config import Settings
from ...reports.service_layer.reports import ReportContext
from ..domain.commands import WhatIf
from ..service_layer import what_if
from . import pages


def mount(app: FastAPI, rc: ReportContext, settings: Settings) -> None:
    """The API route and the dashboard page (one line in bootstrap)."""
    app.include_router(router(rc, settings))
    app.include_router(pages.router(rc, settings.token_table()))


RESPONSES: dict[int | str, dict[str, Any]] = {**PEER_UNAVAILABLE, 429: {
    "description": "another what-if replay is running: try again when it is done",
    "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}}


def router(rc: ReportContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["rules"],
                    dependencies=[Depends(authenticate(settings.token_table()))])

    @api.post("/rules/what-if", dependencies=[Depends(require(Role.OPERATOR))],
              responses=RESPONSES)
    async def rules_what_if(cmd: WhatIf) -> dict[str, Any]:
        """Replay a past month (its balance events from billing's ledger and its calendar
        days) through the credit rules under the current table and under a draft (`rows`, not
        published) or a stored `version`; report who would have been warned, suspension-
        warned or suspended earlier or later, the SMS per template, the suspensions per day
        and the arrears at month end. Nothing is written. 422 for a month not over or more
        than 12 months back, a draft that is not valid, or more than 20,000 products; 429
        while another what-if runs."""
        return await what_if.what_if(rc, cmd)

    return api
