"""Collections worklists over HTTP (docs/collections.md). Included by `http.router` under its
authenticated `/v1` prefix: reads are open to every role, writes need an operator, and the
caller's token subject is recorded as who made an attempt or classified a cause."""

from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, Response

from common.auth import PII_ROLES, CurrentPrincipal, Principal, Role, require
from common.clock import IsoMoment, parse_bill_month
from common.errors import Unprocessable
from common.http import JSON_OR_CSV, IdPath, MonthQuery
from common.money import fen_to_yuan_text
from common.pii import mask_name

from ...entrypoints.csv_safe import csv_attachment
from ...service_layer.context import CreditContext
from ..domain.collections import WorklistKind
from ..domain.worklist_commands import ClassifyCause, RecordAttempt, RefreshWorklists
from ..service_layer import collections

Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Format = Literal["json", "csv"]

_ENTRY_CSV = (("entry_id", "entry_id"), ("kind", "kind"), ("kind_label", "list"),
              ("account_id", "account_id"), ("customer_id", "customer_id"),
              ("customer_name", "customer"), ("manager_name", "manager"),
              ("arrears_fen", "arrears_yuan"), ("oldest_month", "oldest_month"),
              ("months", "months"), ("status", "status"), ("attempts", "attempts"),
              ("promised_date", "promised_date"), ("refusal_reason", "refusal_reason"),
              ("cause_label", "cause"), ("opened_on", "opened_on"))


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter(tags=["collections worklists"])

    @api.post("/worklists/refresh", dependencies=[Depends(require(Role.OPERATOR))])
    async def refresh(cmd: RefreshWorklists) -> dict[str, Any]:
        """Build or bring up to date the call and visit lists as of `as_of` (idempotent)."""
        return await collections.refresh(ctx, cmd.as_of)

    @api.get("/worklists", responses=JSON_OR_CSV)
    async def worklists(
        caller: CurrentPrincipal, kind: WorklistKind | None = None,
        manager: str | None = None,
        status: str | None = Query(None, description="active (default), all, or one status"),
        as_of: IsoMoment | None = None, account_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500, format: Format = "json",
    ) -> Response:
        """The call and visit lists (催缴清单), JSON or CSV."""
        if manager is not None and not caller.sees_pii:
            raise _names_hidden()
        found = await collections.list_entries(ctx, kind, manager, status, as_of, account_id,
                                               limit)
        if format == "csv":
            # JSON answers are masked by the common middleware, which knows the field names;
            # in CSV text it can find phone numbers only, so the names are masked here.
            name = (lambda n: n) if caller.sees_pii else mask_name
            return _csv("worklists", [c for _, c in _ENTRY_CSV],
                        ([_cell(k, e[k], name) for k, _ in _ENTRY_CSV] for e in found))
        return JSONResponse(found)

    @api.get("/worklists/{entry_id}")
    async def entry(entry_id: IdPath) -> dict[str, Any]:
        """One worklist entry with its attempts."""
        return await collections.get_entry(ctx, entry_id)

    @api.post("/worklists/{entry_id}/attempts", status_code=201)
    async def attempt(entry_id: IdPath, cmd: RecordAttempt, caller: Operator) -> JSONResponse:
        """Record a call or visit attempt and its result."""
        stored = await collections.record_attempt(ctx, entry_id, cmd, caller.subject)
        return JSONResponse(stored.body, status_code=stored.status_code)

    @api.post("/worklists/{entry_id}/cause")
    async def cause(entry_id: IdPath, cmd: ClassifyCause, caller: Operator) -> dict[str, Any]:
        """Classify why the account is in arrears (欠费原因)."""
        return await collections.classify(ctx, entry_id, cmd, caller.subject)

    @api.get("/reports/arrears-causes", responses=JSON_OR_CSV)
    async def arrears_causes(month: MonthQuery, format: Format = "json") -> Response:
        """欠费原因分析: arrears of the bill month per cause, largest first, with cumulative %."""
        try:
            first = parse_bill_month(month)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="month") from exc
        report = await collections.cause_report(ctx, first)
        if format == "csv":
            rows = [[r["label"], fen_to_yuan_text(r["amount_fen"]), r["accounts"],
                     r["share_pct"], r["cumulative_pct"]] for r in report["rows"]]
            rows.append(["合计", fen_to_yuan_text(report["total_fen"]),
                         sum(r["accounts"] for r in report["rows"]), "", ""])
            return _csv(f"arrears-causes-{month}",
                        ["欠费原因", "欠费金额(元)", "户数", "占比(%)", "累计百分比(%)"], rows)
        return JSONResponse(report)

    return api


def _names_hidden() -> HTTPException:
    """A caller who sees names masked may not filter by a full name: the answer (entries or
    none) would confirm a guessed name. The same body as the role check's 403."""
    return HTTPException(403, detail={
        "error": "forbidden",
        "message": "filtering by manager needs a role that sees personal data; "
                   "filter by kind or account_id instead",
        "parameter": "manager",
        "required_roles": sorted(r.value for r in PII_ROLES)})


def _cell(key: str, value: Any, name: Callable[[str], str]) -> Any:
    if key == "arrears_fen":
        return fen_to_yuan_text(value)
    if key == "manager_name":
        return name(value)
    return "" if value is None else value


def _csv(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    return csv_attachment(name, header, rows)
