"""The credit control dashboard: server-rendered pages (jinja2) over the same reports.

A browser cannot send a bearer header when it follows a link, so staff sign in on a form
(`/dashboard/signin`, the token POSTed, never in an address) that keeps the token in an
HttpOnly cookie; `/dashboard/signout` clears it. `?token=` once is still taken (and dropped
from the address) for links made by tools. The cookie (or a bearer header, for tools) is
checked against the same token table as the API. Every role may look; callers who may not
see personal data get phone numbers and names masked.
"""

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from common.auth import Principal, TokenTable
from common.clock import BUSINESS_TZ, IsoDay, IsoMoment, parse_bill_month
from common.display_time import beijing_time, parse_instant
from common.errors import ApiError, NotFound
from common.http import IdPath, MonthQuery
from common.money import fen_to_yuan_text
from common.pii import redact

from ...collections.service_layer import collections
from ...credit.service_layer import preview
from ..adapters import account_queries as aq
from ..adapters import report_queries as q
from ..domain import reports as r
from ..service_layer import reports as svc
from ..service_layer.reports import ReportContext
from ..service_layer.timeline import product_timeline
from . import action_roles, csrf
from .labels import label
from .reports import csv_download

HERE = Path(__file__).parent
COOKIE = "creditctl_token"
TREND_MONTHS = 12
# Collections worklists plug in here (docs/reports.md): title -> an async callable giving the
# rows to show as of a moment (flat dicts, the keys are the columns; a person's name under a
# `pii.NAME_FIELDS` key so that it is masked for callers who may not see it). bootstrap
# registers the call and visit lists.
WorklistProvider = Callable[[ReportContext, datetime], Awaitable[list[dict[str, Any]]]]
WORKLIST_PROVIDERS: dict[str, WorklistProvider] = {}
SEARCH_LIMIT = 50
WORK_ORDERS_SHOWN = 50  # the front page's open orders, the most overdue first
# A product's or customer's id, exactly: narrows the front page's open work orders to its.
# Room for the spaces a paste brings around an id of 64 (trimmed before the look-up).
OrdersFor = Annotated[str | None, Query(max_length=128,
                                        description="a product's or customer's id")]
CSV_REPORTS = ("arrears", "recovery", "aging", "kpis", "states")

_templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                         autoescape=select_autoescape(["html"]))
_templates.filters["yuan"] = lambda fen: "" if fen is None else fen_to_yuan_text(int(fen))
# Every moment on the pages: "2026-11-30 20:00:00 北京时间" (common.display_time).
_templates.filters["beijing"] = beijing_time
# Column heads and row names: "客户经理 manager", not "manager_name" (labels.py).
_templates.filters["label"] = label


def mount(app: FastAPI, rc: ReportContext, tokens: TokenTable) -> None:
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"),
              name="dashboard-static")
    app.include_router(router(rc, tokens))
    # The actions import this module's page helpers: imported here, not at the top.
    from . import dashboard_actions
    app.include_router(dashboard_actions.router(rc, tokens))


def router(rc: ReportContext, tokens: TokenTable) -> APIRouter:
    pages = APIRouter(prefix="/dashboard", include_in_schema=False)

    @pages.get("/signin")
    async def signin_form(request: Request) -> Response:
        return _signin_page(request.query_params.get("next"), refused=False, status=200,
                            request=request)

    @pages.post("/signin")
    async def signin(request: Request) -> Response:
        """The form's token, checked against the token table: a known one is kept in the
        HttpOnly cookie and the browser sent on to where it was going; an unknown one gets
        the form again with 401 and no cookie."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        target = _safe_next((form.get("next") or [""])[0])
        if not csrf.signin_form_ok(request.cookies.get(csrf.SIGNIN_COOKIE),
                                   (form.get(csrf.FIELD) or [""])[0]):
            # Not from our form (another site's, or an expired one): nobody is signed in.
            return _signin_page(target, refused=False, status=403, stale=True)
        if not given or tokens.resolve(given) is None:
            return _signin_page(target, refused=True, status=401)
        answer = _keep_token(RedirectResponse(target, status_code=303), given)
        answer.delete_cookie(csrf.SIGNIN_COOKIE, path="/dashboard", httponly=True,
                             samesite="strict")
        return answer

    @pages.get("/signout")
    async def signout() -> Response:
        answer = RedirectResponse("/dashboard/signin", status_code=303)
        answer.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
        return answer

    @pages.get("")
    async def dashboard(
        request: Request,
        month: MonthQuery | None = None,
        as_of: IsoDay | None = None,
        orders_for: OrdersFor = None,
    ) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        today = rc.today()
        bill_month = parse_bill_month(month) if month else r.latest_billed_month(today)
        data = await _overview(rc, bill_month, as_of, (orders_for or "").strip() or None)
        if not who.sees_pii:  # the chart's numbers are no one's data: left as they are
            data = {**redact(data), "trend_json": data["trend_json"]}
        return _page("dashboard.html", who, request=request, month=r.month_text(bill_month),
                     csv_reports=CSV_REPORTS,
                     as_of=as_of.isoformat() if as_of else "", **data)

    @pages.get("/reports/{kind}.csv")
    async def report_csv(
        request: Request, kind: Annotated[str, PathParam(pattern="^(" + "|".join(CSV_REPORTS)
                                                         + ")$")],
        month: MonthQuery,
        as_of: IsoDay | None = None,
    ) -> Response:
        """The report downloads of the page, signed in by its cookie (a link cannot send the
        bearer header `/v1/reports` needs). Figures only: no personal data in them."""
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        bill_month = parse_bill_month(month)
        return csv_download(kind, f"{kind}-{month}",
                            await _report(rc, kind, bill_month, as_of))

    @pages.get("/sweeps/preview")
    async def sweep_preview(
        request: Request, as_of: IsoMoment | None = None,
        account_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        """Who a sweep would decide on (tonight's by default), deciding nothing: the
        API's preview (credit/service_layer/preview.py) as a page."""
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        at = as_of or _tonight(rc)
        local = at.astimezone(BUSINESS_TZ)
        shown = None
        if as_of is not None:  # asked for: a preview runs the sweep's statement (rolled back)
            found = await preview.preview_sweep(
                rc.credit, at, 200, {"account_id": account_id} if account_id else None)
            shown = found if who.sees_pii else redact(found)
        return _page("preview.html", who, request=request, preview=shown, account_id=account_id,
                     as_of_iso=at.isoformat(),
                     as_of_input=local.strftime("%Y-%m-%dT%H:%M"),
                     as_of_shown=beijing_time(at))

    @pages.get("/products")
    async def find_product(request: Request,
                           q: Annotated[str, Query(min_length=1, max_length=64)]) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        return RedirectResponse(f"/dashboard/products/{q.strip()}", status_code=303)

    @pages.get("/search")
    async def search(request: Request,
                     q: Annotated[str, Query(min_length=1, max_length=64)]) -> Response:
        """The header's search box: a product id goes to its timeline, an account id to its
        page; otherwise the accounts whose id starts so or whose group's name holds it."""
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        wanted = q.strip()
        async with rc.credit.engine.connect() as conn:
            if wanted and await aq.product_exists(conn, wanted):
                return RedirectResponse(f"/dashboard/products/{quote(wanted)}", 303)
            found = await aq.search(conn, wanted, SEARCH_LIMIT) if wanted else []
        if len(found) == 1 and found[0]["account_id"] == wanted:
            return RedirectResponse(f"/dashboard/accounts/{quote(wanted)}", 303)
        shown = found if who.sees_pii else redact(found)
        return _page("search.html", who, q=wanted, found=shown, limit=SEARCH_LIMIT)

    @pages.get("/accounts/{account_id}")
    async def account_page(request: Request, account_id: IdPath) -> Response:
        """An account: its position (balance, amount due), its group and its products with
        their states and amounts, each linked to its timeline."""
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        async with rc.credit.engine.connect() as conn:
            found = await aq.account(conn, account_id)
        if found is None:
            return _page("not_found.html", who, account_id=account_id, status=404)
        shown = found if who.sees_pii else redact(found)
        return _page("account.html", who, request=request, account=shown)

    @pages.get("/products/{product_id}")
    async def timeline(request: Request, product_id: IdPath) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        try:
            found = await product_timeline(rc, product_id)
        except NotFound:
            return _page("not_found.html", who, product_id=product_id, status=404)
        shown = found if who.sees_pii else redact(found)
        return _page("timeline.html", who, request=request, product=shown,
                     events=_timeline(shown))

    return pages


def _tonight(rc: ReportContext) -> datetime:
    """Today's scheduled sweep moment (CREDIT_SCHEDULER_TIME, Asia/Shanghai)."""
    hour, minute = (int(x) for x in rc.credit.settings.scheduler_time.split(":"))
    return datetime.combine(rc.today(), time(hour, minute), BUSINESS_TZ)


def _signed_in(request: Request, tokens: TokenTable) -> Principal | Response:
    given = request.query_params.get("token")
    if given is not None:
        if tokens.resolve(given) is None:
            return _signin_page(request.url.path, refused=True, status=401)
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + ("?" + urlencode(rest) if rest else "")
        return _keep_token(RedirectResponse(target, status_code=303), given)
    header = request.headers.get("authorization", "")
    presented = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(
        COOKIE)
    principal = tokens.resolve(presented) if presented else None
    if principal is None or presented is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _signin_page(target, refused=False, status=401, request=request)
    # The common masking middleware reads it: phone numbers in the page are masked for
    # callers who may not see them, as in every API answer.
    request.state.principal = principal
    # The action forms' token is made from the session's own token (csrf.py).
    request.state.form_token = csrf.session_token(presented)
    return principal


def _keep_token(answer: Response, token: str) -> Response:
    # HttpOnly: no script reads it; Strict: no other site's link or form carries it.
    answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/dashboard")
    return answer


def _safe_next(target: str) -> str:
    """Where to go after signing in: a dashboard address only (never another site, never
    back to the form)."""
    if (not target.startswith("/dashboard") or target.startswith("//")
            or target.startswith(("/dashboard/signin", "/dashboard/signout"))
            or "\\" in target):
        return "/dashboard"
    return target


def _signin_page(target: str | None, refused: bool, status: int,
                 request: Request | None = None, stale: bool = False) -> HTMLResponse:
    """The sign-in form with its one-time form token, also kept in a cookie (csrf.py); a
    browser that already holds one keeps it, so two open tabs both still sign in."""
    held = request.cookies.get(csrf.SIGNIN_COOKIE) if request is not None else None
    nonce = held if held and len(held) == 32 else csrf.new_signin_nonce()
    page = _page("signin.html", None, status=status, refused=refused, stale=stale,
                 next=_safe_next(target or ""), signin_nonce=nonce)
    page.set_cookie(csrf.SIGNIN_COOKIE, nonce, httponly=True, samesite="strict",
                    path="/dashboard", max_age=3600)
    return page


async def _report(rc: ReportContext, kind: str, month: date,
                  as_of: date | None) -> dict[str, Any]:
    if kind == "arrears":
        return await svc.arrears(rc, month, month, as_of)
    if kind == "recovery":
        return await svc.recovery(rc, month, as_of)
    if kind == "aging":
        return await svc.aging(rc, month, as_of, None)
    if kind == "kpis":
        return await svc.kpis(rc, month, as_of)
    return await svc.states(rc, month, as_of)


def _page(name: str, who: Principal | None, status: int = 200,
          request: Request | None = None, **data: Any) -> HTMLResponse:
    """A page; given the request, also what its buttons need: which actions the caller may
    take (`may`, from the API's own roles) and the session's form token (`csrf`)."""
    if request is not None:
        data = {"may": action_roles.allowed(request.app, who),
                "csrf": getattr(request.state, "form_token", ""), **data}
    else:
        data = {"may": {}, "csrf": "", **data}
    html = _templates.get_template(name).render(who=who, **data)
    return HTMLResponse(html, status_code=status)


async def _overview(rc: ReportContext, month: date, as_of: date | None,
                    orders_for: str | None = None) -> dict[str, Any]:
    """Everything on the front page; a peer that is down leaves its panel with the reason.
    Without `as_of`, states and work orders are as they are now. `orders_for` narrows the
    open work orders to one product's or customer's (an operator with a customer on the
    line looks for theirs, not the most overdue of everyone's)."""
    now_month = rc.today().replace(day=1)
    out: dict[str, Any] = {"errors": []}

    async def panel(key: str, making: Any) -> None:
        try:
            out[key] = await making
        except ApiError as exc:
            out[key] = None
            out["errors"].append(f"{key}: {exc.message}")

    await panel("trend", svc.trend(rc, month, TREND_MONTHS, as_of))
    await panel("kpis", svc.kpis(rc, month, as_of, work_orders_now=as_of is None))
    await panel("states", svc.states(rc, now_month if as_of is None else month, as_of))
    await panel("recovery", svc.recovery(rc, month, as_of))
    await panel("aging", svc.aging(rc, month if as_of else now_month, as_of, None))
    now = rc.credit.clock.now()
    async with rc.credit.engine.connect() as conn:
        orders = await q.open_work_orders(conn, WORK_ORDERS_SHOWN, now, orders_for)
    out["work_orders"] = orders["orders"]
    out["work_orders_open"], out["work_orders_overdue"] = orders["open"], orders["overdue"]
    out["orders_for"] = orders_for or ""
    out["overdue_ids"] = {w["work_order_id"] for w in out["work_orders"] if w["due_at"] < now}
    out["trend_json"] = json.dumps({
        "labels": [p["bill_month"] for p in out["trend"] or []],
        "rates": [None if p["arrears_rate"] is None else float(p["arrears_rate"]) * 100
                  for p in out["trend"] or []],
        "target": float(r.ARREARS_RATE_TARGET) * 100})
    at = now if as_of is None else svc.end_of_day(as_of)
    out["worklists"] = {name: await provider(rc, at)
                        for name, provider in WORKLIST_PROVIDERS.items()}
    return out


def collections_worklist(kind: str, top: int = 10) -> WorklistProvider:
    """The collections list of `kind` (call / visit): its biggest active entries by arrears
    (`collections.worklist_summary`), as the dashboard's rows."""
    async def rows(rc: ReportContext, at: datetime) -> list[dict[str, Any]]:
        summary = await collections.worklist_summary(rc.credit, at, top)
        return [_worklist_row(e) for e in summary["top"] if e["kind"] == kind]
    return rows


def _worklist_row(entry: dict[str, Any]) -> dict[str, Any]:
    last = entry.get("last_attempt") or {}
    at = beijing_time(last.get("at"))
    tried = " ".join(str(v) for v in (at, last.get("channel"), last.get("outcome")) if v)
    return {"account": entry["account_id"], "customer": entry["customer_name"],
            "manager_name": entry["manager_name"],
            "arrears_yuan": fen_to_yuan_text(int(entry["arrears_fen"])),
            "oldest_month": entry["oldest_month"], "status": entry["status"],
            "last_attempt": tried}


def _timeline(product: dict[str, Any]) -> list[dict[str, Any]]:
    """Decisions, state changes, chain steps and SMS in one list, oldest first, for "why was
    it suspended?". A decision shows once: the state change it made (same decision id, same
    before → after) is folded into its row; a change no decision made (a ladder restart, the
    gateway's confirmation) keeps a row of its own. Money is in yuan throughout."""
    changes = list(product.get("state_history", []))
    events = [_decision_event(d, _take_change(changes, d)) for d in product.get("decisions", [])]
    events += [{"at": h["at"], "kind": "state", "what": h["cause"], "rule_id": "",
                "rule_version": None, "reason": "", "before": h["state_before"],
                "after": h["state_after"], "inputs": "", "amount_fen": None,
                "changed_at": None}
               for h in changes]
    # What became of each SMS: a cancelled one shows why it never left (send-time re-check).
    events += [{"at": m["decision_as_of"] or m["created_at"], "kind": "sms",
                "what": f"{m['template']} ({m['role']}): {m['status']}", "rule_id": "",
                "rule_version": None, "reason": m["status_reason"] or "", "before": "",
                "after": "", "inputs": "", "amount_fen": None, "changed_at": None,
                "sms": (m["template"], m["role"], m["status"])}
               for m in product.get("messages", [])]
    # What the chain did with each command: BOSS → EMOS → gateway, per attempt.
    events += [{"at": c["at"], "kind": "chain", "what": c["stage"], "rule_id": "",
                "rule_version": None, "reason": c["detail"], "before": "", "after": "",
                "inputs": "", "amount_fen": None, "changed_at": None, "chain": c}
               for c in product.get("chain_steps", [])]
    order = {"decision": 0, "state": 1, "chain": 2, "sms": 3}
    # By the instant, not its text: the notifier's times come as ISO text, ours as datetimes.
    return sorted(events, key=lambda e: (_instant(e["at"]), order[e["kind"]]))


def _take_change(changes: list[dict[str, Any]], d: dict[str, Any]) -> dict[str, Any] | None:
    """The state change this decision made (removed from `changes`), if one was recorded."""
    for i, h in enumerate(changes):
        if (h.get("decision_id") is not None and h.get("decision_id") == d.get("decision_id")
                and (h["state_before"], h["state_after"])
                == (d["state_before"], d["state_after"])):
            return changes.pop(i)
    return None


def _decision_event(d: dict[str, Any], change: dict[str, Any] | None) -> dict[str, Any]:
    inputs = d.get("inputs")
    changed_at = change["at"] if change is not None else None
    return {"at": d["as_of"], "kind": "decision", "what": d["decision"],
            "decision_id": d.get("decision_id"),
            "rule_id": d["rule_id"], "rule_version": d.get("rule_version"),
            "reason": yuan_in_text(d["reason"]),
            "before": d["state_before"], "after": d["state_after"],
            "inputs": json.dumps(in_yuan(inputs), ensure_ascii=False, default=str,
                                 indent=1) if inputs else "",
            "amount_fen": d.get("amount_fen"),
            # Shown only when the change was recorded at another moment than the decision.
            "changed_at": None if changed_at is None or _instant(changed_at) == _instant(
                d["as_of"]) else changed_at}


_FEN_IN_TEXT = re.compile(r"(?<![\w.])(-?\d+) fen\b")


def yuan_in_text(text: str) -> str:
    """A rule's reason quotes fen ("amount due 50000 fen"); staff read yuan ("500.00 元")."""
    return _FEN_IN_TEXT.sub(lambda m: f"{fen_to_yuan_text(int(m.group(1)))} 元", text or "")


def in_yuan(value: Any) -> Any:
    """A decision's inputs with every `*_fen` figure as `*_yuan` text ("500.00")."""
    if isinstance(value, dict):
        return {(k[:-4] + "_yuan" if k.endswith("_fen") and _is_int(v) else k):
                (fen_to_yuan_text(int(v)) if k.endswith("_fen") and _is_int(v) else in_yuan(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [in_yuan(v) for v in value]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _instant(value: Any) -> datetime:
    return parse_instant(value) or datetime.min.replace(tzinfo=UTC)
