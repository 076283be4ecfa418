"""The OpenAPI document as a reader needs it (issue 20): every operation tagged, summarised
in words from its own docstring (not FastAPI's "Done" made from the function's name), and
every error answer described with the body the service really sends ({"error", "message",
"field", "problems"}: common.errors.ErrorBody), FastAPI's `{"detail": ...}` 422 replaced.
tests/docs/test_openapi_quality.py fails on an operation without them."""

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from common.errors import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
SUMMARY_MAX = 90
# FastAPI's own validation schemas, unused once every 422 names ErrorBody.
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def document(app: FastAPI) -> None:
    """Wraps `app.openapi` (after http's error responses were added) once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for route in iter_route_contexts(app.routes):
            original = route.original_route
            if not isinstance(original, APIRoute) or not route.include_in_schema:
                continue
            path = route.path_format or ""
            for method in route.methods or ():
                op = schema["paths"].get(path, {}).get(method.lower())
                if op is not None:
                    _polish(op, original, path)
        _share_error_schema(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _polish(op: dict[str, Any], route: APIRoute, path: str) -> None:
    if not op.get("tags"):
        op["tags"] = [resource_tag(path)]
    if route.summary is None:  # FastAPI made one from the function's name: "Done", "Smsc"
        op["summary"] = summary_from(route.description) or op.get("summary", "")
    for status, response in op.get("responses", {}).items():
        if status[0] in "45" and status != "500":
            response["content"] = {"application/json": {"schema": ERROR_REF}}


def resource_tag(path: str) -> str:
    """The resource a path is about: `/v1/products/{id}/credit` → `products`,
    `/dashboard/...` → `dashboard`."""
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    if parts and re.fullmatch(r"v\d+", parts[0]):
        parts = parts[1:]
    return parts[0] if parts else "service"


def summary_from(docstring: str | None) -> str:
    """The docstring's first sentence, on one line, cut at a word near SUMMARY_MAX."""
    text = " ".join((docstring or "").split())
    if not text:
        return ""
    first = re.split(r"(?<=[.;:!?。])\s", text, maxsplit=1)[0].rstrip(".;:")
    if len(first) <= SUMMARY_MAX:
        return first
    return first[:SUMMARY_MAX].rsplit(" ", 1)[0].rstrip(",;:(") + " …"


def _share_error_schema(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components["ErrorBody"] = body
    text = repr(schema["paths"])
    for name in _FASTAPI_422:
        if f"/{name}'" not in text:
            components.pop(name, None)
