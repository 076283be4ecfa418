"""credit-control's HTTP API for operations staff."""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from common.auth import bearer_token

from ..config import Settings
from ..domain.commands import RunSweep
from ..service_layer import handlers
from ..service_layer.handlers import CreditContext


def router(ctx: CreditContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(bearer_token(settings.api_token))])

    @api.post("/sweeps", status_code=201)
    async def run_sweep(cmd: RunSweep) -> JSONResponse:
        stored = await handlers.run_sweep(ctx, cmd)
        return JSONResponse(stored.body, status_code=stored.status_code)

    @api.get("/products/{product_id}/credit")
    async def product_credit(product_id: str) -> dict[str, Any]:
        return await handlers.product_credit(ctx, product_id)

    return api
