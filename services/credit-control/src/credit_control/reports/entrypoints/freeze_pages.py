"""The dashboard's freezes pages (`/dashboard/freezes`, issue 19): every scoped emergency freeze
(紧急冻结) with its scope, reason, approver, window and what it held back, and one freeze's
held products. Looking is for every signed-in role (ops-viewer and above); making and ending a
freeze stays with a credit-admin through the API (`POST /v1/freezes`, `/end`) and the CLI."""

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from common.auth import TokenTable
from common.errors import NotFound
from common.http import IdPath

from ...credit.service_layer import freezes
from ...service_layer.context import CreditContext
from .dashboard import _page, _signed_in

SCOPES = {"all": "全部 everything", "family": "产品族 family", "tier": "信用等级 tier",
          "star_level": "星级 star level", "vendor": "MAS厂家 vendor",
          "channel": "渠道 channel", "customer": "集团客户 customer",
          "region": "区县分公司 region"}
DECISIONS = {"suspend": "停机 suspension", "suspension_warning": "停机预警 suspension warning"}


def router(ctx: CreditContext, tokens: TokenTable) -> APIRouter:
    pages = APIRouter(prefix="/dashboard/freezes", include_in_schema=False)

    @pages.get("")
    async def freezes_page(request: Request) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        now = ctx.clock.now()
        rows = await freezes.freezes_with_counts(ctx, 200)
        return _page("freezes.html", who, freezes=rows, now=now,
                     active=[f for f in rows if _in_force(f, now)], scopes=SCOPES,
                     decisions=DECISIONS)

    @pages.get("/{freeze_id}")
    async def freeze_page(request: Request, freeze_id: IdPath,
                          limit: int = Query(500, ge=1, le=5000)) -> Response:
        who = _signed_in(request, tokens)
        if isinstance(who, Response):
            return who
        try:
            found = await freezes.freeze(ctx, freeze_id)
        except NotFound:
            return _page("not_found.html", who, status=404, freeze_id=freeze_id)
        held = await freezes.holds(ctx, freeze_id, limit)
        return _page("freeze.html", who, f=found, holds=held, limit=limit,
                     in_force=_in_force(found, ctx.clock.now()), scopes=SCOPES,
                     decisions=DECISIONS)

    return pages


def _in_force(f: dict[str, Any], now: Any) -> bool:
    return bool(f["ended_at"] is None and f["starts_at"] <= now < f["until"])
