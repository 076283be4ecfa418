"""The FastAPI app every service starts from: health, readiness, metrics, correlation ids and
one error body shape for every 4xx."""

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.errors import ApiError
from common.logging import correlation_id

CORRELATION_HEADER = "X-Correlation-ID"


def create_app(
    *, title: str, lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    readiness: Callable[[], Awaitable[dict[str, Any]]],
) -> FastAPI:
    app = FastAPI(title=title, lifespan=lifespan)
    _add_correlation_ids(app)
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

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {
            "error": _code_for(exc.status_code), "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _code_for(status_code: int) -> str:
    return {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
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
