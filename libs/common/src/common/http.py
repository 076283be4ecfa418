"""The FastAPI app every service starts from: health, readiness, metrics, correlation ids and
one error body shape for every 4xx."""

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import metrics
from common.auth import mask_pii_for_callers_without_it
from common.db import INPUT_CONFLICT_STATES, is_input_refusal, sqlstate
from common.errors import ApiError
from common.logging import correlation_id

CORRELATION_HEADER = "X-Correlation-ID"
log = logging.getLogger(__name__)


def create_app(
    *, title: str, lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    readiness: Callable[[], Awaitable[dict[str, Any]]],
) -> FastAPI:
    app = FastAPI(title=title, lifespan=lifespan)
    mask_pii_for_callers_without_it(app)
    _add_correlation_ids(app)
    app.add_middleware(RequestMetrics)
    _add_error_bodies(app)
    _add_health(app, readiness)
    return app


def _add_correlation_ids(app: FastAPI) -> None:
    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        cid = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        token = correlation_id.set(cid)
        try:
            response = await call_next(request)
        finally:
            correlation_id.reset(token)
        response.headers[CORRELATION_HEADER] = cid
        return response


class RequestMetrics:
    """Request count and latency by route template ("/v1/products/{product_id}/credit"), so
    a million product ids stay one series. Plain ASGI: no per-request task as
    BaseHTTPMiddleware would add."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router put the matched route into the shared scope; no route: one label.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def _add_error_bodies(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        return JSONResponse(
            {"error": "validation_error", "message": "the request is not valid",
             "problems": problems},
            status_code=422,
        )

    # Starlette's own (FastAPI's is a subclass): an unparseable body, an unknown route or
    # method are raised by Starlette and must get the same body as every other 4xx.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {
            "error": _code_for(exc.status_code), "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


    @app.exception_handler(DBAPIError)
    async def refused_by_database(_: Request, exc: DBAPIError) -> JSONResponse:
        """A value the database cannot store, or a unique key taken, is the request's fault:
        4xx, and the transaction rolled back, so nothing was written. Only those SQLSTATEs:
        any other (a division by zero, a NOT NULL or a foreign key our own statement broke)
        is a bug and stays a logged 500."""
        if not is_input_refusal(exc):
            raise exc
        state = sqlstate(exc)
        conflict = state in INPUT_CONFLICT_STATES
        log.warning("the database refused a value of the request: SQLSTATE %s", state)
        return JSONResponse(
            {"error": "conflict" if conflict else "invalid_value",
             "message": f"the database refused a value of the request (SQLSTATE {state})"},
            status_code=409 if conflict else 422)

    @app.exception_handler(OverflowError)
    async def out_of_range(_: Request, exc: OverflowError) -> JSONResponse:
        # Date or number arithmetic on an extreme input (year 1 minus a timeout, 1e308 s).
        log.warning("a value is out of range: %s", exc)
        return JSONResponse({"error": "out_of_range", "message": f"a value is out of range: {exc}"},
                            status_code=422)


def _code_for(status_code: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed"}.get(
        status_code, "http_error"
    )


def _add_health(app: FastAPI, readiness: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
