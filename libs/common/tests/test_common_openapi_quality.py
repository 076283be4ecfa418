"""common.openapi_quality: a summary from a route's docstring, a tag from its path, and the
real error body on every 4xx/5xx of a small app (the four services: tests/docs)."""

from fastapi import APIRouter

from common.openapi_quality import SUMMARY_MAX, resource_tag, summary_from


def test_the_summary_is_the_docstrings_first_sentence_on_one_line() -> None:
    assert summary_from("Close a work order as done.\n\n    More words.") == \
        "Close a work order as done"
    assert summary_from("欠费原因分析: arrears per cause.") == "欠费原因分析"
    assert summary_from("Run every step due by `as_of` now (time is a parameter).") == \
        "Run every step due by `as_of` now (time is a parameter)"
    assert summary_from(None) == "" and summary_from("   ") == ""
    long = summary_from("word " * 60)
    assert len(long) <= SUMMARY_MAX + 2 and long.endswith(" …")


def test_the_tag_is_the_resource_the_path_names() -> None:
    assert resource_tag("/v1/products/{product_id}/credit") == "products"
    assert resource_tag("/v1/work-orders/{id}/done") == "work-orders"
    assert resource_tag("/dashboard/timeline") == "dashboard"
    assert resource_tag("/{x}") == "service"


def test_an_app_documents_summaries_tags_and_the_error_body() -> None:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from pydantic import BaseModel

    from common.http import create_app

    class Thing(BaseModel):
        n: int

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        yield

    async def ready() -> dict[str, str]:
        return {}

    app = create_app(title="t", lifespan=lifespan, readiness=ready)
    api = APIRouter(prefix="/v1")

    @api.post("/things/{thing_id}/done")
    async def done(thing_id: str, body: Thing) -> dict[str, int]:
        """Mark a thing done. Nothing else."""
        return {"n": body.n}

    @api.get("/things", tags=["own tag"], summary="Given summary")
    async def things() -> list[int]:
        return []

    app.include_router(api)
    doc = app.openapi()
    op = doc["paths"]["/v1/things/{thing_id}/done"]["post"]
    assert op["summary"] == "Mark a thing done" and op["tags"] == ["things"]
    assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
    listed = doc["paths"]["/v1/things"]["get"]
    assert listed["summary"] == "Given summary" and listed["tags"] == ["own tag"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]
