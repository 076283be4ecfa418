"""HTTP metrics label the route template, never the raw path (one series per route)."""

import httpx
from fastapi import APIRouter, FastAPI

from common.http import RequestMetrics


def _sample(route: str, status: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("creditctl_http_requests_total", {
        "method": "GET", "route": route, "status": status}) or 0.0


async def test_http_requests_are_labelled_by_route_template() -> None:
    app = FastAPI()
    app.add_middleware(RequestMetrics)
    api = APIRouter(prefix="/v1")

    @api.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    app.include_router(api)
    before = _sample("/v1/things/{thing_id}", "200"), _sample("unmatched", "404")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        for n in range(3):
            assert (await client.get(f"/v1/things/t{n}")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    assert _sample("/v1/things/{thing_id}", "200") - before[0] == 3
    assert _sample("unmatched", "404") - before[1] == 1
