"""Promises to pay over HTTP (docs/collections.md "Promises to pay"). Included by
`http.router` under its authenticated `/v1` prefix: reads are open to every role (an
ops-viewer looks), recording and checking need an operator (the collections staff who work
the worklists); a promise beyond the normal maximum needs a credit-admin caller."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from common.auth import CurrentPrincipal, Principal, Role, require
from common.http import IdPath
from common.money import fen_to_yuan_text
from common.pii import mask_name

from ...entrypoints.csv_safe import csv_attachment
from ...service_layer.context import CreditContext
from ..domain.promise_commands import CheckPromises, RecordPromise
from ..service_layer import promises
from ..service_layer.collections import not_ahead
from .worklists import _names_hidden

Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Format = Literal["json", "csv"]


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter(tags=["promises to pay"])

    @api.post("/worklists/{entry_id}/promises", status_code=201)
    async def record(entry_id: IdPath, cmd: RecordPromise, caller: Operator) -> JSONResponse:
        """Record a promise to pay (承诺缴费) on a worklist entry: it defers the account's
        suspension until the promised date (or the next instalment's)."""
        stored = await promises.record(ctx, entry_id, cmd, caller)
        return JSONResponse(stored.body, status_code=stored.status_code)

    @api.post("/promises/check", dependencies=[Depends(require(Role.OPERATOR))])
    async def check(cmd: CheckPromises) -> dict[str, Any]:
        """Mark open promises kept or broken as of `as_of` (every sweep does it first)."""
        return await promises.check(ctx, not_ahead(ctx, cmd.as_of, "as_of"))

    @api.get("/promises")
    async def listed(caller: CurrentPrincipal,
                     status: str | None = Query(None, description="open, kept or broken"),
                     manager: str | None = None, account_id: str | None = None,
                     entry_id: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
        """Promises to pay, newest first."""
        if manager is not None and not caller.sees_pii:
            raise _names_hidden()
        return await promises.listed(ctx, status, manager, account_id, entry_id, limit)

    @api.get("/promises/{promise_id}")
    async def one(promise_id: IdPath) -> dict[str, Any]:
        """One promise, with what has been paid towards it and the date it defers to."""
        return await promises.get(ctx, promise_id)

    @api.get("/reports/promises")
    async def report(caller: CurrentPrincipal,
                     since: Annotated[date, Query(alias="from")],
                     until: Annotated[date, Query(alias="to")],
                     format: Format = "json") -> Response:
        """Promises made in the period per account manager: made, kept, broken, open."""
        found = await promises.report(ctx, since, until)
        if format == "csv":
            name = (lambda n: n) if caller.sees_pii else mask_name
            rows = [[name(r["manager_name"]), r["made"], r["kept"], r["broken"], r["open"],
                     fen_to_yuan_text(r["promised_fen"]), fen_to_yuan_text(r["kept_fen"])]
                    for r in found["rows"]]
            t = found["total"]
            rows.append(["合计", t["made"], t["kept"], t["broken"], t["open"],
                         fen_to_yuan_text(t["promised_fen"]), fen_to_yuan_text(t["kept_fen"])])
            return csv_attachment(
                f"promises-{found['from']}-{found['to']}",
                ["客户经理", "承诺数", "已兑现", "已违约", "进行中", "承诺金额(元)",
                 "兑现金额(元)"], rows)
        return JSONResponse(found)

    return api
