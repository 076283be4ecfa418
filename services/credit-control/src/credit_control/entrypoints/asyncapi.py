"""The topics' AsyncAPI document, served (issue 20): `/asyncapi.json` as generated from the
contracts (common.contracts.asyncapi, the same as libs/common/asyncapi.json) and `/asyncapi`,
a page to read it: every channel with who writes and reads it, every message with its fields,
types and descriptions. Server-rendered, no script and nothing from the internet. Open like
`/docs`: it carries no customer data."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from common.contracts import asyncapi


def router() -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.get("/asyncapi.json")
    async def document() -> JSONResponse:
        return JSONResponse(asyncapi.document())

    @pages.get("/asyncapi")
    async def page() -> HTMLResponse:
        return HTMLResponse(render())

    return pages


def render() -> str:
    doc = asyncapi.document()
    page: str = _ENV.get_template("asyncapi.html").render(
        doc=doc, schemas=doc["components"]["schemas"])
    return page


def _kind(schema: dict[str, Any]) -> str:
    """A field's type in a few words: `string`, `integer ≥ 0`, `→ Person`, `[Person]`."""
    if "$ref" in schema:
        return "→ " + str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_kind(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"[{_kind(schema.get('items', {}))}]"
    words = [str(schema.get("type", "any"))]
    if "format" in schema:
        words.append(f"({schema['format']})")
    for key, sign in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "length ≤")):
        if key in schema:
            words.append(f"{sign} {schema[key]}")
    return " ".join(words)


_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]))
_ENV.globals["kind"] = _kind
