"""notifier's HTTP API: the message log, the templates, what the simulated SMSC received."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from common.auth import bearer_token

from ..config import Settings
from ..domain.templates import DEFAULT_TEMPLATES
from ..service_layer import handlers
from ..service_layer.handlers import NotifierContext


def router(ctx: NotifierContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(bearer_token(settings.api_token))])

    @api.get("/messages")
    async def messages(
        product_id: Annotated[str | None, Query(max_length=64)] = None,
        recipient: Annotated[str | None, Query(max_length=32)] = None,
        type: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[dict[str, Any]]:
        return await handlers.list_messages(
            ctx, {"product_id": product_id, "recipient": recipient, "type": type,
                  "status": status})

    @api.get("/templates")
    async def templates() -> list[dict[str, str]]:
        return [{"name": name.value, "text": text} for name, text in DEFAULT_TEMPLATES.items()]

    @api.get("/smsc/messages")
    async def smsc(
        recipient: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[dict[str, Any]]:
        return await handlers.smsc_received(ctx, recipient)

    return api
