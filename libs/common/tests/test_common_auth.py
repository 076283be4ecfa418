"""Bearer tokens and roles: 401 without a known token, 403 for a role that may not, the
caller's subject for the audit, and personal data masked for callers who may not see it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, SecretStr

from common.auth import Principal, Role, TokenGrant, TokenTable, allows, authenticate, require
from common.http import create_app

TOKENS = TokenTable(SecretStr("service-token"), {
    "viewer-token": TokenGrant(subject="li.na", role=Role.OPS_VIEWER),
    "operator-token": TokenGrant(subject="wang.fang", role=Role.OPERATOR),
    "admin-token": TokenGrant(subject="zhang.wei", role=Role.CREDIT_ADMIN),
    "billing-token": TokenGrant(subject="boss.billing", role=Role.BILLING),
})
PERSON = {"name": "王经理", "phone": "13900139000"}


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _ready() -> dict[str, Any]:
    return {}


class _Note(BaseModel):
    text: str


def _app() -> FastAPI:
    app = create_app(title="t", lifespan=_no_lifespan, readiness=_ready)
    api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate(TOKENS))])

    @api.get("/manager")
    async def manager() -> dict[str, Any]:
        return {"account_manager": PERSON, "note": f"call {PERSON['phone']}"}

    @api.put("/rules")
    async def put_rules(
        caller: Annotated[Principal, Depends(require(Role.CREDIT_ADMIN))],
    ) -> dict[str, str]:
        return {"changed_by": caller.subject}

    @api.post("/notes")
    async def post_note(note: _Note) -> dict[str, str]:
        return {"text": note.text}

    app.include_router(api)
    return app


async def _call(method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://t") as client:
        return await client.request(method, path, headers=headers, **kwargs)


def test_roles_nest_and_service_may_do_everything() -> None:
    assert allows(Role.CREDIT_ADMIN, Role.OPERATOR) and allows(Role.CREDIT_ADMIN, Role.OPS_VIEWER)
    assert not allows(Role.OPERATOR, Role.CREDIT_ADMIN)
    assert not allows(Role.BILLING, Role.OPERATOR) and not allows(Role.OPS_VIEWER, Role.BILLING)
    assert all(allows(Role.SERVICE, r) for r in Role)


@pytest.mark.parametrize("token", [None, "wrong-token", "viewer-token-but-longer"])
async def test_no_or_unknown_token_is_401(token: str | None) -> None:
    r = await _call("GET", "/v1/manager", token)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["viewer-token", "operator-token", "billing-token"])
async def test_a_role_that_may_not_write_is_403_with_the_roles_needed(token: str) -> None:
    r = await _call("PUT", "/v1/rules", token)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert r.json()["required_roles"] == ["credit-admin"]


@pytest.mark.parametrize(("token", "subject"), [("admin-token", "zhang.wei"),
                                                ("service-token", "service")])
async def test_the_caller_is_the_tokens_subject(token: str, subject: str) -> None:
    r = await _call("PUT", "/v1/rules", token)
    assert r.status_code == 200
    assert r.json() == {"changed_by": subject}


@pytest.mark.parametrize("token", ["viewer-token", "billing-token"])
async def test_callers_without_pii_rights_get_people_masked(token: str) -> None:
    r = await _call("GET", "/v1/manager", token)
    assert r.status_code == 200
    assert r.json() == {"account_manager": {"name": "王**", "phone": "139****9000"},
                        "note": "call 139****9000"}
    assert int(r.headers["content-length"]) == len(r.content)


@pytest.mark.parametrize("token", ["operator-token", "admin-token", "service-token"])
async def test_callers_with_pii_rights_see_people_in_full(token: str) -> None:
    r = await _call("GET", "/v1/manager", token)
    assert r.json() == {"account_manager": PERSON, "note": "call 13900139000"}


MALFORMED = {"content": b'{"text": ', "headers": {"content-type": "application/json"}}


@pytest.mark.parametrize("token", [None, "wrong-token"])
@pytest.mark.parametrize("body", [MALFORMED, {"json": {"text": 5}}, {"json": []}],
                         ids=["malformed", "invalid", "wrong-shape"])
async def test_no_valid_token_is_401_before_the_body_is_looked_at(
    token: str | None, body: dict[str, Any],
) -> None:
    """FastAPI parses the body before dependencies run: without the check in the validation
    handler, malformed JSON would tell a stranger 422 json_invalid (docs/security.md)."""
    r = await _call("POST", "/v1/notes", token, **body)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
    assert r.headers["WWW-Authenticate"] == "Bearer"


async def test_with_a_valid_token_a_malformed_body_is_still_a_422() -> None:
    r = await _call("POST", "/v1/notes", "viewer-token", **MALFORMED)
    assert r.status_code == 422
    assert r.json()["problems"][0]["type"] == "json_invalid"
    assert "field" not in r.json()  # nothing was read, nothing to name
    wrong = await _call("POST", "/v1/notes", "viewer-token", json={"text": 5})
    assert wrong.status_code == 422 and wrong.json()["field"] == "text"  # named at the top
    ok = await _call("POST", "/v1/notes", "viewer-token", json={"text": "好"})
    assert ok.status_code == 200 and ok.json() == {"text": "好"}


def test_openapi_documents_the_error_statuses_each_route_answers() -> None:
    """schemathesis' status_code_conformance holds the services to these."""
    document = _app().openapi()
    paths = document["paths"]
    assert sorted(paths["/v1/manager"]["get"]["responses"]) == ["200", "401", "422", "503"]
    assert sorted(paths["/v1/rules"]["put"]["responses"]) == [
        "200", "400", "401", "403", "404", "409", "422", "503"]
    unauthorized = paths["/v1/rules"]["put"]["responses"]["401"]
    schema = unauthorized["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["error", "message"]
