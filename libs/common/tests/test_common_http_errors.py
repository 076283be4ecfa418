"""Every 4xx has the common body, including the ones Starlette, the database driver and date
arithmetic raise on hostile input (found by the property-based HTTP run); a real failure
stays a 500. And the consumer treats a value PostgreSQL refuses as the event's own fault."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from common.db import is_event_error, make_engine
from common.errors import Unavailable
from common.http import create_app


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def refused(sqlstate: str) -> DBAPIError:
    """What SQLAlchemy's asyncpg dialect raises for a server-side error: a plain DBAPIError
    (not DataError) whose `orig` carries the SQLSTATE."""
    return DBAPIError("INSERT …", None, _Orig(sqlstate))


class Body(BaseModel):
    name: str


def app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    async def ready() -> dict[str, Any]:
        return {}

    made = create_app(title="t", lifespan=lifespan, readiness=ready)

    @made.post("/names")
    async def names(body: Body) -> dict[str, str]:
        if "\x00" in body.name:
            raise refused("22021")  # invalid byte sequence for encoding "UTF8": 0x00
        if body.name == "dup":
            raise refused("23505")
        if body.name == "away":
            raise refused("08006")  # connection failure: not the request's fault
        if body.name.startswith("bug:"):
            raise refused(body.name.removeprefix("bug:"))  # our own statement's fault
        if body.name == "long":
            raise refused("22001")
        if body.name == "later":
            raise Unavailable("not now", retry_after_s=7, reason="feed_behind")
        return {"name": body.name}

    @made.get("/since")
    async def since(year: int) -> dict[str, str]:
        return {"at": (datetime(year, 1, 1) - timedelta(days=1)).isoformat()}

    return made


async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


def assert_error_body(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


async def test_unparseable_body_gets_the_common_error_body() -> None:
    r = await call("POST", "/names", content=b"\x11+=\xbe",
                   headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert {"error", "message"} <= set(r.json())


async def test_unknown_route_and_method_get_the_common_error_body() -> None:
    assert_error_body(await call("GET", "/nowhere"), 404, "not_found")
    assert_error_body(await call("DELETE", "/names"), 405, "method_not_allowed")


async def test_a_value_the_database_refuses_is_a_422() -> None:
    assert_error_body(await call("POST", "/names", json={"name": "a\x00b"}), 422,
                      "invalid_value")


async def test_a_taken_unique_key_is_a_409() -> None:
    assert_error_body(await call("POST", "/names", json={"name": "dup"}), 409, "conflict")


async def test_a_value_too_long_is_a_422_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert_error_body(await call("POST", "/names", json={"name": "long"}), 422, "invalid_value")
    assert "SQLSTATE 22001" in caplog.text


@pytest.mark.parametrize("sqlstate", ["22012", "22P02", "23502", "23503", "23514"])
async def test_a_server_bug_the_database_reports_is_a_500_not_a_client_error(
    sqlstate: str,
) -> None:
    """Division by zero, a cast of stored data, NOT NULL, foreign key, check: our statement's
    fault, so no 4xx that would blame (and hide from) the caller."""
    assert (await call("POST", "/names", json={"name": f"bug:{sqlstate}"})).status_code == 500


def assert_unavailable(response: httpx.Response) -> None:
    """The database away is nobody's input fault and no bug: 503, retry the same request."""
    assert_error_body(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["retry_after_s"] == int(response.headers["Retry-After"])


async def test_the_database_away_is_a_503_with_retry_after() -> None:
    assert_unavailable(await call("POST", "/names", json={"name": "away"}))


async def test_an_unavailable_refusal_is_a_503_with_its_retry_after_and_details() -> None:
    response = await call("POST", "/names", json={"name": "later"})
    assert_unavailable(response)
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"error": "unavailable", "message": "not now", "retry_after_s": 7,
                               "safe_to_retry": True, "reason": "feed_behind"}


@pytest.mark.parametrize("sqlstate", ["08001", "08006", "57P01", "57P03", "53300"])
async def test_connection_sqlstates_are_503(sqlstate: str) -> None:
    assert_unavailable(await call("POST", "/names", json={"name": f"bug:{sqlstate}"}))


async def test_a_database_that_refuses_connections_is_a_503() -> None:
    """A real engine on a port where nothing listens (the discard port): what a PostgreSQL
    restart looks like to a request, no stand-in error."""
    made = app()
    engine = make_engine("postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none")

    @made.get("/count")
    async def count() -> dict[str, int]:
        async with engine.connect() as conn:
            return {"n": int(await conn.scalar(text("SELECT 1")) or 0)}

    try:
        transport = httpx.ASGITransport(app=made, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert_unavailable(await client.get("/count"))
    finally:
        await engine.dispose()


async def test_date_arithmetic_out_of_range_is_a_422() -> None:
    assert_error_body(await call("GET", "/since", params={"year": 1}), 422, "out_of_range")
    assert (await call("GET", "/since", params={"year": 2026})).status_code == 200


@pytest.mark.parametrize(("sqlstate", "event_error"), [
    ("22021", True), ("22003", True), ("22001", True), ("22008", True), ("22P05", True),
    ("23505", True), ("22P02", False), ("22012", False), ("23502", False), ("23503", False),
    ("08006", False), ("40P01", False), ("53100", False)])
def test_consumer_sets_aside_only_what_the_database_refuses(sqlstate: str,
                                                            event_error: bool) -> None:
    assert is_event_error(refused(sqlstate)) is event_error
