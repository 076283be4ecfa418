"""/docs (Swagger UI) and /redoc (ReDoc) served by the service itself, from assets committed
in common/static/api_docs (their npm packages' files, checksums in the README there), so the
API documentation works on a machine without internet, as the services do.

FastAPI's own pages load the same assets from a CDN (cdn.jsdelivr.net) and a favicon from
fastapi.tiangolo.com: a blank page offline. `create_app` turns those off and calls `serve`.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "api_docs"
PREFIX = "/docs/assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# Swagger UI asks validator.swagger.io for a badge by default: an outside call, and no use.
SWAGGER_PARAMETERS = {"validatorUrl": None}


def serve(app: FastAPI) -> None:
    """Mount the assets and the two pages (open, like /openapi.json, and not in the schema)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="api-docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} · API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_PARAMETERS)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} · API",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon-32x32.png", with_google_fonts=False)
