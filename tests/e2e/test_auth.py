"""Every write route of every running service, found in its own /openapi.json (a route added
later is covered without touching this file): no token or a wrong one → 401, a role that may
not → 403 naming the roles that may, and a refused write writes nothing. Reads are open to
the read-only role. Who did a write comes from the token, not from the body."""

import importlib.util
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import Role

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WRITES = ("post", "put", "patch", "delete")
STAFF = [Role.OPS_VIEWER, Role.OPERATOR, Role.CREDIT_ADMIN, Role.BILLING]
ADMIN_SUBJECT = "zhang.wei"  # the root conftest's admin-token


def _route_roles() -> Any:
    """The static route-roles module (tests/security): the roles each route declares."""
    path = Path(__file__).resolve().parents[1] / "security" / "test_route_roles.py"
    spec = importlib.util.spec_from_file_location("route_roles_for_e2e", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _declared() -> dict[tuple[str, str, str], list[Role]]:
    """(service, METHOD, path) → the roles allowed, as the apps declare them."""
    rr = _route_roles()
    return {(service, method, path): rr.allowed_roles(route)
            for service, app in rr.apps().items() for method, path, route in rr.routes(app)}


async def _write_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    spec = (await client.get("/openapi.json")).json()
    return [(method.upper(), path) for path, ops in spec["paths"].items()
            if path.startswith("/v1") for method in ops if method in WRITES]


def _probe_path(path: str) -> str:
    return "".join("auth-probe" if part.startswith("{") else part
                   for part in path.replace("{", "\0{").replace("}", "}\0").split("\0"))


async def test_every_write_route_refuses_callers_without_a_valid_token_or_role(
    clients: dict[str, httpx.AsyncClient], role_clients: dict[str, dict[str, httpx.AsyncClient]],
) -> None:
    declared = _declared()
    checked = 0
    for service, client in clients.items():
        routes = await _write_routes(client)
        assert routes, f"{service} lists no write routes"
        for method, path in routes:
            allowed = declared[(service, method, path)]
            assert allowed and Role.OPS_VIEWER not in allowed, (service, method, path)
            url = _probe_path(path)
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                r = await client.request(method, url, json={},
                                         headers={"Authorization": "", **headers})
                assert r.status_code == 401, (service, method, path, r.text)
                assert r.json()["error"] == "unauthorized"
            for role in STAFF:
                if role in allowed:
                    continue
                r = await role_clients[role.value][service].request(method, url, json={})
                assert r.status_code == 403, (service, method, path, role, r.text)
                body = r.json()
                assert body["error"] == "forbidden"
                assert {Role(x) for x in body["required_roles"]} <= set(allowed)
                checked += 1
    assert checked > 50


async def test_the_read_only_role_reads_every_service(
    role_clients: dict[str, dict[str, httpx.AsyncClient]],
) -> None:
    viewer = role_clients[Role.OPS_VIEWER.value]
    for path, service in [("/v1/receivables?bill_month=2011-09", "billing-events"),
                          ("/v1/rules", "credit-control"), ("/v1/guard", "credit-control"),
                          ("/v1/work-orders?limit=5", "credit-control"),
                          ("/v1/messages?limit=5", "notifier"), ("/v1/templates", "notifier"),
                          ("/v1/faults", "gateway-adapter"), ("/v1/vendors", "gateway-adapter")]:
        r = await viewer[service].get(path)
        assert r.status_code == 200, (service, path, r.text)


def _customer(uid: str) -> dict[str, Any]:
    return {"customer_id": f"GAUTH{uid}", "name": f"权限测试集团{uid}", "tier": "low",
            "account_manager": {"name": "王经理", "phone": "13900139000"},
            "contacts": [{"name": "李联系人", "phone": "13800138000"}]}


async def test_a_refused_write_writes_nothing(
    clients: dict[str, httpx.AsyncClient], role_clients: dict[str, dict[str, httpx.AsyncClient]],
    db: AsyncEngine, uid: str,
) -> None:
    operator = role_clients[Role.OPERATOR.value]
    admin = role_clients[Role.CREDIT_ADMIN.value]
    credit, notifier = clients["credit-control"], clients["notifier"]
    rules = (await credit.get("/v1/rules")).json()
    templates = (await notifier.get("/v1/templates")).json()
    faults = (await clients["gateway-adapter"].get("/v1/faults")).json()
    customer_id = f"GAUTH{uid}"
    # Valid bodies: without the role check each of these would have been applied.
    refused = [
        (admin["billing-events"], "POST", "/v1/customers", _customer(uid)),
        (operator["credit-control"], "PUT", "/v1/rules", {
            "reason": "r", "expected_version": rules["version"], "rows": rules["rows"]}),
        (operator["credit-control"], "PUT", f"/v1/profiles/{customer_id}", {"star_level": 5}),
        (operator["credit-control"], "POST", "/v1/exemptions", {
            "exemption_id": f"EXAUTH{uid}", "customer_id": customer_id, "kind": "red_list",
            "reason": "r", "approver": "分管副总"}),
        (operator["notifier"], "PUT", "/v1/templates", {
            "templates": [{"name": "bill_notice", "text": "x"}]}),
        (operator["gateway-adapter"], "PUT", "/v1/faults", {**faults, "boss_failure_rate": 1}),
    ]
    for client, method, path, body in refused:
        r = await client.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
    async with db.connect() as conn:
        customers = await conn.scalar(text(
            "SELECT count(*) FROM billing.customers WHERE customer_id = :c"), {"c": customer_id})
        audit = await conn.scalar(text(
            "SELECT count(*) FROM credit.audit_log WHERE entity_id IN (:c, :r)"),
            {"c": customer_id, "r": str(rules["version"] + 1)})
    assert (customers, audit) == (0, 0)
    assert (await credit.get("/v1/rules")).json()["version"] == rules["version"]
    assert (await credit.get("/v1/exemptions", params={"customer_id": customer_id})).json() == []
    assert (await notifier.get("/v1/templates")).json() == templates
    assert (await clients["gateway-adapter"].get("/v1/faults")).json() == faults


async def test_the_audit_names_the_tokens_subject_not_the_body(
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str,
) -> None:
    admin = role_clients[Role.CREDIT_ADMIN.value]
    credit = admin["credit-control"]
    customer_id = f"GAUTH{uid}"
    r = await credit.put(f"/v1/profiles/{customer_id}",
                         json={"changed_by": "someone-else", "star_level": 4})
    assert r.status_code == 200, r.text
    r = await credit.post("/v1/exemptions", json={
        "exemption_id": f"EXAUTH{uid}", "customer_id": customer_id, "kind": "red_list",
        "reason": "重要客户", "approver": "分管副总", "created_by": "someone-else"})
    assert r.status_code == 201, r.text
    assert (r.json()["created_by"], r.json()["approver"]) == (ADMIN_SUBJECT, "分管副总")
    r = await credit.post(f"/v1/exemptions/EXAUTH{uid}/remove", json={"removed_by": "x"})
    assert r.status_code == 200, r.text
    audit = (await credit.get("/v1/audit", params={"entity_id": customer_id})).json()
    assert len(audit) == 3
    assert {row["actor"] for row in audit} == {ADMIN_SUBJECT}
    # a rarely sent template, changed and put back, so no other test's messages notice
    name = "pre_cancel_notice_manager"
    notifier = admin["notifier"]
    before = {t["name"]: t["text"] for t in (await notifier.get("/v1/templates")).json()}[name]
    for text_now in (before + f"({uid})", before):
        r = await notifier.put("/v1/templates", json={
            "templates": [{"name": name, "text": text_now}], "changed_by": "someone-else"})
        assert r.status_code == 200, r.text
    versions = (await notifier.get(f"/v1/templates/{name}/versions")).json()
    assert [v["changed_by"] for v in versions[-2:]] == [ADMIN_SUBJECT, ADMIN_SUBJECT]
    assert versions[-2]["text"].endswith(f"({uid})")
