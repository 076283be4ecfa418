"""The dashboard as the operators' workplace: the actions each role may take, as forms.

Confirm a held sweep, approve a sweep's preview, take and close a work order, add or end a
red-list entry or an emergency no-suspension. Each action calls the same use case as its API
route (credit/service_layer, admin/service_layer: no second copy of the rules) and is open to
the roles that route requires (action_roles.py reads them from the route itself).

Every action is a POST carrying the session's form token (csrf.py). An irreversible one first
answers a confirmation page, and is done only when that page's button posts it again with
`confirmed=yes`. Done or refused, the answer is a page saying so, Chinese first: 403 (no
right, or no valid form token), 404/409/422 (the use case's own refusal, or an id in the
address not of the ids' pattern: common.ids), never a 500; a refused action has changed
nothing (the role and the token are checked before the use case runs, and the use cases
write in one transaction).
"""

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from common.auth import Principal, TokenTable
from common.errors import ApiError
from common.http import IdPath
from common.ids import EntityId

from ...admin.adapters import admin_repository as admin_repo
from ...admin.service_layer import admin
from ...credit.domain.commands import (
    AddExemption,
    ApprovePreview,
    AssignWorkOrder,
    ConfirmSweep,
    ExemptionKind,
    FinishWorkOrder,
    Role,
)
from ...credit.service_layer import approvals, sweeps, work_orders
from ..service_layer.reports import ReportContext
from . import action_roles, csrf
from .dashboard import _page, _signed_in

Form = dict[str, str]
# What an action does once allowed: (the caller, the form) -> a sentence saying what was done.
Doing = Callable[[Principal, Form], Awaitable[str]]
# The ids an action's address names (sweep, work order, exemption), checked as the API's
# `common.http.IdPath` checks them, but answered with the outcome page (422), not JSON.
_IDS = TypeAdapter(dict[str, EntityId])
EXEMPTION_KINDS = {ExemptionKind.RED_LIST.value: "红名单 red list",
                   ExemptionKind.EMERGENCY.value: "紧急免停 emergency no-suspension"}
# What each irreversible action will do, for its confirmation page.
CONFIRM_TEXT = {
    "confirm_sweep": "确认后，该批次被暂缓的停机将立即执行 · Confirming makes the held sweep's "
                     "suspensions now.",
    "approve_preview": "批准后，该时点的停机批次只执行本预览中的决策 · The sweep at that moment "
                       "will decide exactly this preview.",
    "finish_work_order": "办结后产品状态随之改变，不能撤销 · Closing as done changes the product's "
                         "state; it cannot be undone.",
    "fail_work_order": "关闭为失败后，将转给集团账务管理人员跟进 · Closing as failed sends a "
                       "follow-up to the group billing manager.",
    "end_exemption": "结束后该豁免立即失效，不能恢复（可另加新的） · Ending it takes effect now "
                     "and cannot be undone (add a new one instead).",
}
ACTION_NAMES = {
    "confirm_sweep": "确认停机批次 confirm a held sweep",
    "approve_preview": "批准停机预览 approve a sweep preview",
    "take_work_order": "接单 take a work order",
    "finish_work_order": "办结工单 close a work order as done",
    "fail_work_order": "关闭工单为失败 close a work order as failed",
    "add_exemption": "添加红名单/紧急免停 add a red-list entry or emergency no-suspension",
    "end_exemption": "结束豁免 end an exemption",
}


def router(rc: ReportContext, tokens: TokenTable) -> APIRouter:
    pages = APIRouter(prefix="/dashboard", include_in_schema=False)
    ctx = rc.credit
    _pages(pages, rc, tokens)

    async def act(request: Request, name: str, back: str, doing: Doing,
                  **ids: str) -> Response:
        return await _act(request, tokens, name, back, doing, ids)

    @pages.post("/actions/sweeps/{sweep_id}/confirm")
    async def confirm_sweep(request: Request, sweep_id: str) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            cmd = ConfirmSweep(confirmed_by=who.subject, note=form.get("note", ""))
            stored = await sweeps.confirm_sweep(ctx, sweep_id, cmd)
            if stored.status_code == 202:
                return (f"批次 {sweep_id} 正在由另一进程执行 · Sweep {sweep_id} is being run by "
                        "another process: look again shortly.")
            return (f"已确认停机批次 {sweep_id}，暂缓的停机已执行 · Sweep {sweep_id} confirmed: "
                    "its held suspensions are made.")
        return await act(request, "confirm_sweep", "/dashboard/sweeps/holds", doing,
                         sweep_id=sweep_id)

    @pages.post("/actions/sweeps/preview/approve")
    async def approve_preview(request: Request) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            cmd = ApprovePreview.model_validate({
                "approved_by": who.subject, "as_of": form.get("as_of", ""),
                "fingerprint": form.get("fingerprint", ""), "note": form.get("note", "")})
            done = await approvals.approve(ctx, cmd.as_of, cmd.fingerprint, who.subject,
                                           cmd.note)
            return (f"已批准预览（{done['decisions']} 项决策）· Preview approved: "
                    f"{done['decisions']} decisions, approval {done['approval_id']}.")
        return await act(request, "approve_preview", "/dashboard/sweeps/preview", doing)

    @pages.post("/actions/work-orders/{work_order_id}/take")
    async def take(request: Request, work_order_id: str) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            order = await work_orders.get(ctx, work_order_id)
            cmd = AssignWorkOrder(by=who.subject, assignee=who.subject,
                                  role=Role(order["role"]), note=form.get("note", ""))
            await work_orders.assign(ctx, work_order_id, who.subject, cmd.assignee, cmd.role,
                                     cmd.note, ctx.clock.now())
            return (f"已接单：工单 {work_order_id} 由你处理 · You took work order "
                    f"{work_order_id}.")
        return await act(request, "take_work_order", _order_page(work_order_id), doing,
                         work_order_id=work_order_id)

    @pages.post("/actions/work-orders/{work_order_id}/done")
    async def done(request: Request, work_order_id: str) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            cmd = FinishWorkOrder(by=who.subject, note=form.get("note", ""))
            await work_orders.finish(ctx, work_order_id, who.subject, True, cmd.note,
                                     ctx.clock.now())
            return f"工单 {work_order_id} 已办结 · Work order {work_order_id} closed as done."
        return await act(request, "finish_work_order", _order_page(work_order_id), doing,
                         work_order_id=work_order_id)

    @pages.post("/actions/work-orders/{work_order_id}/fail")
    async def fail(request: Request, work_order_id: str) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            cmd = FinishWorkOrder(by=who.subject, note=form.get("note", ""))
            await work_orders.finish(ctx, work_order_id, who.subject, False, cmd.note,
                                     ctx.clock.now())
            return (f"工单 {work_order_id} 已关闭为失败，已转集团账务管理人员跟进 · Work order "
                    f"{work_order_id} closed as failed; a follow-up went to the group billing "
                    "manager.")
        return await act(request, "fail_work_order", _order_page(work_order_id), doing,
                         work_order_id=work_order_id)

    @pages.post("/actions/exemptions")
    async def add_exemption(request: Request) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            cmd = AddExemption.model_validate({
                "exemption_id": form.get("exemption_id", ""),
                "customer_id": form.get("customer_id", "").strip(),
                "kind": form.get("kind", ""), "reason": form.get("reason", "").strip(),
                "approver": form.get("approver", "").strip(), "created_by": who.subject,
                "until": form.get("until") or None})
            found = await admin.add_exemption(ctx, cmd)
            return (f"已为集团 {found['customer_id']} 添加{EXEMPTION_KINDS[found['kind']]} "
                    f"({found['exemption_id']}) · Added.")
        return await act(request, "add_exemption", "/dashboard/exemptions", doing)

    @pages.post("/actions/exemptions/{exemption_id}/end")
    async def end_exemption(request: Request, exemption_id: str) -> Response:
        async def doing(who: Principal, form: Form) -> str:
            await admin.remove_exemption(ctx, exemption_id, who.subject)
            return f"豁免 {exemption_id} 已结束 · Exemption {exemption_id} ended."
        return await act(request, "end_exemption", "/dashboard/exemptions", doing,
                         exemption_id=exemption_id)

    return pages


def _pages(pages: APIRouter, rc: ReportContext, tokens: TokenTable) -> None:
    """The pages the actions start from (besides the front page, the preview and the
    timeline): held sweeps, one work order, the exemptions in force."""

    @pages.get("/sweeps/holds")
    async def holds(request: Request) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        async with rc.credit.engine.connect() as conn:
            held = await admin_repo.holds(conn, "held")
        return _page("holds.html", who, request=request, holds=held)

    @pages.get("/work-orders/{work_order_id}")
    async def work_order(request: Request, work_order_id: IdPath) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        try:
            order = await work_orders.get(rc.credit, work_order_id)
        except ApiError:
            return _page("not_found.html", who, work_order_id=work_order_id, status=404)
        return _page("work_order.html", who, request=request, order=order,
                     open=order["status"] in admin_repo.OPEN_STATUSES)

    @pages.get("/exemptions")
    async def exemptions(request: Request, customer_id: str | None = None) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        async with rc.credit.engine.connect() as conn:
            found = await admin_repo.exemptions_list(conn, None, customer_id or None,
                                                     rc.credit.clock.now())
        return _page("exemptions.html", who, request=request, exemptions=found[-200:],
                     customer_id=customer_id or "", kinds=EXEMPTION_KINDS,
                     new_id="EX-" + secrets.token_hex(8))


def _order_page(work_order_id: str) -> str:
    return f"/dashboard/work-orders/{quote(work_order_id)}"


async def _act(request: Request, tokens: TokenTable, name: str, back: str,
               doing: Doing, ids: dict[str, str]) -> Response:
    """Signed in, a form token of this session, the API route's role, the address's ids of
    the ids' pattern, the confirmation of an irreversible action: only then the use case.
    Each refusal says why, changing nothing."""
    who = _signed_in(request, tokens)
    if isinstance(who, Response):
        return who
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}
    action = action_roles.ACTIONS[name]
    said: dict[str, Any] = {"request": request, "action": ACTION_NAMES[name], "back": back}
    if not _form_token_ok(request, form.get(csrf.FIELD)):
        return _page("outcome.html", who, status=403, ok=False, **said,
                     message="表单无效或已过期，未执行任何操作：请回到页面重新操作 · The form is "
                             "not from this session's page (or has expired): nothing was done.")
    if not action_roles.may(request.app, who, name):
        needed = ", ".join(r.value for r in action_roles.api_roles(request.app, action))
        return _page("outcome.html", who, status=403, ok=False, **said,
                     message=f"无权操作：角色 {who.role.value} 不能{ACTION_NAMES[name]}"
                             f"（需要 {needed}）· Your role may not do this: nothing was done.")
    try:
        _IDS.validate_python(ids)
    except ValidationError as exc:  # before PostgreSQL, which cannot take a NUL
        return _page("outcome.html", who, status=422, ok=False, **said,
                     problems=_problems(exc),
                     message="地址中的编号无效，未执行 · The id in the address is not valid: "
                             "nothing was done.")
    if action.irreversible and form.get("confirmed") != "yes":
        fields = {k: v for k, v in form.items() if k not in (csrf.FIELD, "confirmed")}
        return _page("confirm.html", who, **said, fields=fields, what=CONFIRM_TEXT[name],
                     target=request.url.path)
    try:
        message = await doing(who, form)
    except ValidationError as exc:
        return _page("outcome.html", who, status=422, ok=False, **said,
                     problems=_problems(exc),
                     message="输入有误，未执行 · The form has errors: nothing was done.")
    except ApiError as exc:
        return _page("outcome.html", who, status=exc.status_code, ok=False, **said,
                     message=f"未执行：{_refusal(exc)} · Not done: {exc.message}")
    return _page("outcome.html", who, ok=True, message=message, **said)


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]


def _form_token_ok(request: Request, given: str | None) -> bool:
    """The form's token is the one this session's pages carry (`_signed_in` made it)."""
    expected = getattr(request.state, "form_token", "")
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given or "")


def _refusal(exc: ApiError) -> str:
    return {404: "找不到", 409: "状态已变化或冲突", 422: "输入不被接受",
            503: "依赖的服务暂不可用"}.get(exc.status_code, "被拒绝")
