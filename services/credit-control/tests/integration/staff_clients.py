"""credit-control's `/v1` routes served in process on a clock the test moves along its story
(auth, masking, error bodies as the service has them), one client per staff role: for steps
that depend on "now" (a refresh, an attempt, a promise), which the running service would
stamp with its own clock."""

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import TokenGrant
from common.clock import Clock
from common.http import create_app
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.entrypoints.http import router
from credit_control.service_layer.context import CreditContext

# Routers beside `/v1` a test needs (a report's pages), made from the same context.
ExtraRouters = Callable[[CreditContext, Settings], Iterable[APIRouter]]


@contextlib.asynccontextmanager
async def no_runtime(_: FastAPI) -> AsyncIterator[None]:
    yield


async def ready() -> dict[str, Any]:
    return {}


@contextlib.asynccontextmanager
async def staff_clients(
    db: AsyncEngine, clock: Clock, staff: dict[str, TokenGrant],
    extra: ExtraRouters = lambda ctx, settings: (),
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The routes on `clock`, with `staff`'s tokens: role → client."""
    settings = Settings(api_tokens=staff)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys), clock,
                        settings=settings)
    app = create_app(title="credit-control", lifespan=no_runtime, readiness=ready)
    app.include_router(router(ctx, settings))
    for more in extra(ctx, settings):
        app.include_router(more)
    transport = httpx.ASGITransport(app=app)
    async with contextlib.AsyncExitStack() as stack:
        yield {grant.role.value: await stack.enter_async_context(httpx.AsyncClient(
            transport=transport, base_url="http://credit-control",
            headers={"Authorization": f"Bearer {token}"})) for token, grant in staff.items()}
