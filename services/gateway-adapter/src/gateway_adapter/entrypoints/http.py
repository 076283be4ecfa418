"""gateway-adapter's HTTP API: the simulated gateway's submit, and the chain's state."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from common.auth import bearer_token

from ..config import Settings
from ..service_layer import handlers
from ..service_layer.handlers import GatewayContext


class Submit(BaseModel):
    """One message a MAS server or SMS-direct client asks the industry gateway to send."""

    model_config = ConfigDict(extra="forbid")
    product_id: Annotated[str, Field(min_length=1, max_length=64)]
    recipient: Annotated[str, Field(min_length=1, max_length=32)]
    text: Annotated[str, Field(min_length=1, max_length=1000)]


def router(ctx: GatewayContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(bearer_token(settings.api_token))])

    @api.post("/gateway/submit")
    async def submit(body: Submit) -> dict[str, Any]:
        return await handlers.submit(ctx, body.product_id)

    @api.get("/products/{product_id}/chain")
    async def chain(product_id: str) -> dict[str, Any]:
        return await handlers.chain_view(ctx, product_id)

    return api
