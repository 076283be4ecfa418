"""The dashboard's what-if page (`/dashboard/what-if`, issue 19): a past month replayed under
the current rule table and a draft. Read-only, so a GET form: the draft is a stored `version`
or the current table with one row's day moved (`rule_id`, `day`, optionally `arrears_month`);
a whole draft table goes through the API or `creditctl rules what-if --draft`. The roles of
POST /v1/rules/what-if: operator and credit-admin (ops-viewer is shown a 403 page)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from common.auth import Role, TokenTable
from common.errors import ApiError

from ...reports.entrypoints.dashboard import _page, _signed_in
from ...reports.service_layer.reports import ReportContext
from ..domain.commands import WhatIf
from ..service_layer import what_if

Text = Annotated[str | None, Query(max_length=64)]


def router(rc: ReportContext, tokens: TokenTable) -> APIRouter:
    pages = APIRouter(prefix="/dashboard/what-if", include_in_schema=False)

    @pages.get("")
    async def what_if_page(request: Request, month: Text = None, version: Text = None,
                           rule_id: Text = None, day: Text = None,
                           arrears_month: Text = None, channel: Text = None,
                           as_of: Text = None) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        form = {"month": month or "", "version": version or "", "rule_id": rule_id or "",
                "day": day or "", "arrears_month": arrears_month or "",
                "channel": channel or "", "as_of": as_of or ""}
        if not who.may(Role.OPERATOR):
            return _page("what_if.html", who, status=403, form=form, report=None,
                         error=f"role {who.role.value} may not run a what-if replay (it is "
                               "heavy): operator or credit-admin")
        if not month:
            return _page("what_if.html", who, form=form, report=None, error=None)
        try:
            report = await what_if.what_if(rc, await _command(rc, form))
        except ApiError as exc:
            return _page("what_if.html", who, status=exc.status_code, form=form, report=None,
                         error=exc.message, problems=exc.details.get("problems", []))
        except ValidationError as exc:
            return _page("what_if.html", who, status=422, form=form, report=None,
                         error="the form is not valid",
                         problems=[str(e["msg"]) for e in exc.errors()])
        return _page("what_if.html", who, form=form, report=report, error=None)

    return pages


async def _command(rc: ReportContext, form: dict[str, str]) -> WhatIf:
    """The form as a WhatIf: a stored version, or the current table with one row moved."""
    body: dict[str, Any] = {"month": form["month"]}
    if form["channel"]:
        body["channel"] = form["channel"]
    if form["as_of"]:
        body["as_of"] = form["as_of"]
    if form["version"]:
        return WhatIf.model_validate(body | {"version": form["version"]})
    async with rc.credit.engine.connect() as conn:
        current = await rc.credit.rules.current(conn)
    rows = [r.model_dump(mode="json") for r in current.rows]
    if form["rule_id"]:
        row = next((r for r in rows if r["rule_id"] == form["rule_id"]), None)
        if row is None:
            raise ApiError(f"no rule {form['rule_id']!r} in the current table")
        if form["day"]:
            row["day"] = form["day"]  # "last" or a number: the row's own validation says
        if form["arrears_month"]:
            row["arrears_month"] = form["arrears_month"]
    return WhatIf.model_validate(body | {"rows": rows})
