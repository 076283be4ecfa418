"""/docs and /redoc render in a real browser that cannot reach the internet: headless
Chromium with every host but 127.0.0.1 unresolvable, against an app built by the services' own
`common.http.create_app`, served by uvicorn. FastAPI's CDN pages stay blank here; ours show the
operations. Screenshots in test-artifacts/ (api-docs-swagger.png, api-docs-redoc.png)."""

import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from common.http import create_app
from common.testing.stack import stack_required

# e2e (a browser, a server process), and so not among `make test-unit`'s pure tests.
pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SUMMARY = "Read a product's credit view"


@asynccontextmanager
async def _no_runtime(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _ready() -> dict[str, Any]:
    return {}


def _app() -> FastAPI:
    app = create_app(title="docs-offline", lifespan=_no_runtime, readiness=_ready)
    api = APIRouter(prefix="/v1", tags=["credit"])

    @api.get("/products/{product_id}/credit", summary=SUMMARY)
    async def credit(product_id: str) -> dict[str, str]:
        return {"product_id": product_id}

    app.include_router(api)
    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        message = "Debian's chromium and chromium-driver are needed: run scripts/bootstrap.sh"
        if stack_required():
            pytest.fail(message)
        pytest.skip(message)
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1200",
                # offline: no name but the service's own resolves (a CDN would not load)
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    made = webdriver.Chrome(service=Service(driver), options=options)
    yield made
    made.quit()


def _shows(browser: webdriver.Chrome, text: str) -> bool:
    return text in browser.find_element(By.TAG_NAME, "body").text


def test_the_browser_really_is_offline(offline_browser: webdriver.Chrome) -> None:
    """Guards the test itself: a CDN page must fail to load its script here."""
    offline_browser.set_script_timeout(30)
    loaded = offline_browser.execute_async_script(
        "const done = arguments[0]; const s = document.createElement('script');"
        "s.src = 'https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js';"
        "s.onload = () => done(true); s.onerror = () => done(false);"
        "document.head.appendChild(s);")
    assert loaded is False


@pytest.mark.parametrize(("page", "shot"), [("/docs", "api-docs-swagger.png"),
                                             ("/redoc", "api-docs-redoc.png")])
def test_the_api_docs_render_offline(offline_browser: webdriver.Chrome, base_url: str,
                                     page: str, shot: str) -> None:
    offline_browser.get(base_url + page)
    WebDriverWait(offline_browser, 60).until(lambda b: _shows(b, SUMMARY))
    assert _shows(offline_browser, "docs-offline")
    ARTIFACTS.mkdir(exist_ok=True)
    offline_browser.save_screenshot(str(ARTIFACTS / shot))
