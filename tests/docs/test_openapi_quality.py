"""Every operation of the four services' OpenAPI documents is one a reader can use (issue
20): tagged, summarised in words (not FastAPI's summary made from the function's name:
"Done", "Smsc"), and its error answers documented with the body the services really send
(common.errors.ErrorBody: {"error", "message", "field", "problems"}), never FastAPI's
`{"detail": ...}`. The apps are built, not started: no stack is needed."""

import importlib
import json
from functools import cache
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from common.testing.apps import built_in_process

SERVICES = {"billing-events": "billing_events.bootstrap",
            "credit-control": "credit_control.bootstrap",
            "notifier": "notifier.bootstrap", "gateway-adapter": "gateway_adapter.bootstrap"}
ERROR_REF = "#/components/schemas/ErrorBody"
WRITES = {"post", "put", "patch", "delete"}
# Routes that may lack a summary of their own for now: none (keep it so).
PENDING_SUMMARIES: set[tuple[str, str, str]] = set()

Operation = tuple[str, str, str, dict[str, Any], str]  # service, method, path, op, auto summary


@cache
def app_of(service: str) -> FastAPI:
    app: FastAPI = built_in_process(importlib.import_module(SERVICES[service]).bootstrap)
    return app


def operations(service: str) -> list[Operation]:
    app = app_of(service)
    schema = app.openapi()
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        auto = route.original_route.name.replace("_", " ").title()  # FastAPI's own
        for method in route.methods or ():
            op = schema["paths"][route.path_format][method.lower()]
            found.append((service, method.lower(), route.path_format, op, auto))
    return found


def problems(service: str, method: str, path: str, op: dict[str, Any], auto: str) -> list[str]:
    """What is missing from one operation, in words (empty: it is complete)."""
    out = []
    if not op.get("tags"):
        out.append("no tag")
    summary = (op.get("summary") or "").strip()
    if (not summary or summary == auto) and (service, method, path) not in PENDING_SUMMARIES:
        out.append(f"no summary of its own ({summary!r} is made from the function's name)")
    responses = op.get("responses", {})
    wanted = {"422", "503"}
    if path.startswith("/v1/"):
        wanted.add("401")
    if method in WRITES:
        wanted |= {"404", "409"}
    if "{" in path:
        wanted.add("404")
    out += [f"no {status} documented" for status in sorted(wanted - responses.keys())]
    for status, response in responses.items():
        if status[0] not in "45":
            continue
        text = json.dumps(response)
        if ERROR_REF not in text:
            out.append(f"{status} does not document the error body (ErrorBody)")
        if "HTTPValidationError" in text or '"detail"' in text:
            out.append(f"{status} documents FastAPI's {{'detail'}} body, not the real one")
    return out


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_operation_is_tagged_summarised_and_documents_its_errors(service: str) -> None:
    ops = operations(service)
    assert len(ops) >= 10
    found = {f"{m.upper()} {p}": bad for s, m, p, op, auto in ops
             if (bad := problems(s, m, p, op, auto))}
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)


def test_403_409_and_the_error_body_are_documented_somewhere_in_each_service() -> None:
    for service in SERVICES:
        schema = app_of(service).openapi()
        statuses = {s for item in schema["paths"].values() for op in item.values()
                    for s in op["responses"]}
        assert {"401", "403", "404", "409", "422", "503"} <= statuses, service
        body = schema["components"]["schemas"]["ErrorBody"]
        assert {"error", "message", "field", "problems"} <= body["properties"].keys()
        assert body["required"] == ["error", "message"]
        assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_the_check_fails_on_an_operation_without_a_tag_summary_or_error_responses() -> None:
    bare = {"summary": "Done", "responses": {
        "200": {}, "422": {"content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/HTTPValidationError"}}}}}}
    found = problems("notifier", "post", "/v1/things/{id}/done", bare, "Done")
    assert "no tag" in found
    assert any(p.startswith("no summary of its own") for p in found)
    assert {"no 401 documented", "no 404 documented", "no 409 documented",
            "no 503 documented"} <= set(found)
    assert "422 documents FastAPI's {'detail'} body, not the real one" in found
    complete = {"tags": ["things"], "summary": "Mark a thing done.", "responses": {
        s: {"content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}
        for s in ("401", "404", "409", "422", "503")}}
    assert problems("notifier", "post", "/v1/things/{id}/done", complete, "Done") == []


def test_the_pending_list_is_not_stale() -> None:
    """Each route listed as pending exists and still lacks a summary of its own: once it has
    one, it must leave the list (so the list cannot hide a new route)."""
    ops = {(s, m, p): (op, auto) for s, m, p, op, auto in operations("credit-control")}
    for key in PENDING_SUMMARIES:
        assert key in ops, f"{key} is no route: take it off PENDING_SUMMARIES"
        op, auto = ops[key]
        assert op.get("summary") == auto, f"{key} has a summary now: take it off the list"


def test_a_503_says_what_was_unavailable_where_the_route_knows_more() -> None:
    """The shared 503 names no service's detail; a new sweep's says it may wait for the
    balance feed (credit-control's own, documented on its route)."""
    paths = app_of("credit-control").openapi()["paths"]
    sweep = paths["/v1/sweeps"]["post"]["responses"]["503"]["description"]
    assert "balance events published before it" in sweep
    for service in SERVICES:
        for path, item in app_of(service).openapi()["paths"].items():
            for method, op in item.items():
                if (path, method) != ("/v1/sweeps", "post"):
                    assert "sweep" not in op["responses"]["503"]["description"], (path, method)
