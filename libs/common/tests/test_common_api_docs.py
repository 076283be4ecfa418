"""/docs and /redoc work without internet: every service's app (`common.http.create_app`)
serves Swagger UI and ReDoc from the committed npm assets, whose sha256 the README beside them
records, and the pages name no URL outside the service."""

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.api_docs import ASSETS
from common.http import create_app

SERVED = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "redoc.standalone.js")
URL_ATTRIBUTE = re.compile(r"""(?:src|href|spec-url|url)\s*[=:]\s*["']([^"']+)["']""")


@asynccontextmanager
async def _no_runtime(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _ready() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(title="test-service", lifespan=_no_runtime, readiness=_ready))


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_docs_pages_reference_no_external_url(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", response.text, re.I), \
        f"{page} names an outside URL:\n{response.text}"
    for url in URL_ATTRIBUTE.findall(response.text):
        assert url.startswith("/"), f"{page}: {url} is not the service's own"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_a_page_loads_is_served(client: TestClient, page: str) -> None:
    html = client.get(page).text
    urls = [u for u in URL_ATTRIBUTE.findall(html) if u.startswith("/docs/assets/")]
    assert urls, html
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content == (ASSETS / url.rsplit("/", 1)[1]).read_bytes()
    assert "/openapi.json" in html


def test_swagger_ui_does_not_call_the_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_openapi_document_itself_is_still_served(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "test-service"


@pytest.mark.parametrize("name", SERVED)
def test_vendored_assets_match_their_recorded_sha256(name: str) -> None:
    digest = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()
    readme = (ASSETS / "README.md").read_text()
    assert f"`{name}` = " in readme and f"sha256 `{digest}`" in readme, name
