"""`GET /v1/products/{product_id}/timeline`: the explain view with the notifier's messages
(reads only: open to every role)."""

from typing import Any

from fastapi import APIRouter, Depends

from common.auth import authenticate
from common.clock import IsoMoment
from common.http import IdPath

from ...config import Settings
from ..service_layer.reports import ReportContext
from ..service_layer.timeline import product_timeline


def router(rc: ReportContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate(settings.token_table()))])

    @api.get("/products/{product_id}/timeline")
    async def timeline(product_id: IdPath, as_of: IsoMoment | None = None) -> dict[str, Any]:
        """Decisions, state history and every SMS with its status (a cancelled one with the
        reason it did not leave); `messages_unavailable` when the notifier did not answer."""
        return await product_timeline(rc, product_id, as_of)

    return api
