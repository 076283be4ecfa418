"""The FastAPI app every service starts from: health, readiness, metrics, correlation ids and
one error body shape for every 4xx."""

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from asyncpg.exceptions import OperatorInterventionError, PostgresConnectionError, PostgresError
from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import api_docs, metrics, openapi_quality
from common.auth import mask_pii_for_callers_without_it, refuses_caller
from common.clock import BUSINESS_MONTH_HINT, BUSINESS_MONTH_PATTERN
from common.db import INPUT_CONFLICT_STATES, is_failover_error, is_input_refusal, sqlstate
from common.errors import ApiError, ErrorBody, Unavailable
from common.ids import ID_MAX_LENGTH, ID_PATTERN, new_uuid
from common.logging import correlation_id

CORRELATION_HEADER = "X-Correlation-ID"
log = logging.getLogger(__name__)


def create_app(
    *, title: str, lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    readiness: Callable[[], Awaitable[dict[str, Any]]],
) -> FastAPI:
    # /docs and /redoc from the service's own copy of their assets, not from a CDN
    # (common.api_docs): FastAPI's pages are blank without internet.
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    api_docs.serve(app)
    mask_pii_for_callers_without_it(app)
    _add_correlation_ids(app)
    app.add_middleware(RequestMetrics)
    _add_error_bodies(app)
    _add_health(app, readiness)
    _document_error_responses(app)
    openapi_quality.document(app)  # tags, summaries, the real error body everywhere
    return app


_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_ERRORS = {
    400: "the body could not be read (not JSON, not UTF-8)",
    401: "no valid bearer token (answered before the body is read)",
    403: "the caller's role may not do this",
    404: "something the request names does not exist",
    409: "a conflict: the id was used with another body, or the state does not allow it",
    422: "the request is not valid (the body names the field)",
    503: "unavailable now (the database, or something else the request needs): nothing was "
         "written, retry the same request after Retry-After seconds",
}


def _document_error_responses(app: FastAPI) -> None:
    """Every status a route can answer is in the OpenAPI document, with the common error
    body: 401 and 503 everywhere behind a token, 403 where a role is required, 404 where a
    path names something or a write refers to something, 409 for writes, 422 always."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        body = {"application/json": {"schema": ErrorBody.model_json_schema()}}
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods or ():
                documented = schema["paths"].get(route.path_format, {}).get(method.lower())
                if documented is None:
                    continue
                responses = documented.setdefault("responses", {})
                for status in _error_statuses(route, method):
                    responses.setdefault(str(status), {"description": _ERRORS[status],
                                                       "content": body})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_statuses(route: Any, method: str) -> list[int]:
    calls = _dependency_calls(route.dependant)
    statuses = {422, 503}
    if any(hasattr(c, "tokens") for c in calls):
        statuses.add(401)
    if any(hasattr(c, "required_roles") for c in calls):
        statuses.add(403)
    writes = method in _WRITES
    if writes or "{" in route.path_format:
        statuses.add(404)
    if writes:
        statuses |= {400, 409}
    return sorted(statuses)


def _dependency_calls(dependant: Any) -> list[Any]:
    calls: list[Any] = []
    for sub in dependant.dependencies:
        calls.append(sub.call)
        calls.extend(_dependency_calls(sub))
    return calls


def _add_correlation_ids(app: FastAPI) -> None:
    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        cid = request.headers.get(CORRELATION_HEADER) or str(new_uuid())
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
        headers = ({"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Unavailable)
                   else None)
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if refuses_caller(request):  # who asks is answered before what was sent
            return JSONResponse(
                {"error": "unauthorized", "message": "a valid bearer token is required"},
                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        # The first field at fault named at the top, as ApiError bodies name theirs
        # (`field`), without where it was sent ("body.as_of" → "as_of").
        errors = exc.errors()
        named = errors and errors[0]["type"] != "json_invalid"  # a body unread names none
        first = [str(p) for p in errors[0]["loc"][1:]] if named else []
        return JSONResponse(
            {"error": "validation_error", "message": "the request is not valid",
             **({"field": ".".join(first)} if first else {}), "problems": problems},
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
    @app.exception_handler(PostgresError)  # a statement run on the driver (DriverStatement)
    async def refused_by_database(_: Request, exc: Exception) -> JSONResponse:
        """A value the database cannot store, or a unique key taken, is the request's fault:
        4xx, and the transaction rolled back, so nothing was written. Only those SQLSTATEs:
        any other (a division by zero, a NOT NULL or a foreign key our own statement broke)
        is a bug and stays a logged 500."""
        if database_unavailable(exc):
            return unavailable(exc)
        if not is_input_refusal(exc):
            raise exc
        state = sqlstate(exc)
        conflict = state in INPUT_CONFLICT_STATES
        log.warning("the database refused a value of the request: SQLSTATE %s", state)
        return JSONResponse(
            {"error": "conflict" if conflict else "invalid_value",
             "message": f"the database refused a value of the request (SQLSTATE {state})"},
            status_code=409 if conflict else 422)

    # Raised before SQLAlchemy can wrap them: no connection to be had (refused, reset, the
    # server starting up or shutting down, the pool exhausted).
    for kind in (ConnectionError, PostgresConnectionError, OperatorInterventionError,
                 SqlalchemyTimeout):
        app.add_exception_handler(kind, _unavailable_handler)

    @app.exception_handler(OverflowError)
    async def out_of_range(_: Request, exc: OverflowError) -> JSONResponse:
        # Date or number arithmetic on an extreme input (year 1 minus a timeout, 1e308 s).
        log.warning("a value is out of range: %s", exc)
        return JSONResponse({"error": "out_of_range", "message": f"a value is out of range: {exc}"},
                            status_code=422)


# SQLSTATEs of a database that is away, not of a request: class 08 (connection exception),
# 57P01-57P03 (shut down by an admin, crashed, starting up), 53300 (too many connections).
UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
RETRY_AFTER_S = 5


def database_unavailable(exc: BaseException) -> bool:
    """True when the database is away (restart, failover, network), not when it refused
    the request: a client should retry the same request later."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = sqlstate(exc)
    if state.startswith("08") or state in UNAVAILABLE_STATES:
        return True
    if is_failover_error(exc):  # e.g. 25006: a demoted primary refuses the write
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(exc, ConnectionError | PostgresConnectionError | OperatorInterventionError) \
        or isinstance(orig, ConnectionError | PostgresConnectionError | OperatorInterventionError)


def unavailable(exc: BaseException) -> JSONResponse:
    """503 with Retry-After: nothing was written (the transaction did not commit), and the
    same request (same client id) may be sent again."""
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"error": "unavailable", "message": "the database is unavailable; retry the same "
         f"request in {RETRY_AFTER_S} s", "retry_after_s": RETRY_AFTER_S},
        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def _unavailable_handler(_: Request, exc: Exception) -> Response:
    return unavailable(exc)


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


# A month in a query string, as the code accepts it (common.clock.parse_business_month): the
# pattern in the OpenAPI document is the check itself, so schema and code cannot disagree.
MonthQuery = Annotated[str, Query(pattern=BUSINESS_MONTH_PATTERN, examples=["2011-09"],
                                  description=BUSINESS_MONTH_HINT)]

# An id in a path, as `common.ids.EntityId` in a body: every id path parameter of the services
# (a NUL, a zero-width space or 3,000 characters is a 422 naming the parameter, before any
# query: PostgreSQL cannot store a NUL, and the others could only be "not found").
IdPath = Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

# A route that asks another service (credit-control's reports) may answer 502.
PEER_UNAVAILABLE: dict[int | str, dict[str, Any]] = {502: {
    "description": "a service this answer needs did not answer (or refused the question)",
    "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
}}

# What a route that answers JSON or, on request, a CSV download documents (OpenAPI).
JSON_OR_CSV: dict[int | str, dict[str, Any]] = {200: {
    "description": "JSON, or a CSV attachment with `format=csv` or `Accept: text/csv`",
    "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
}}
