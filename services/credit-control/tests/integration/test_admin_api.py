"""What staff change through the API: the rule table (validated, versioned, audited), credit
profiles and exemptions. A bad request is a 4xx with a useful body, and writes nothing."""

from typing import Any

import httpx
import pytest

from .helpers import CreditApi, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _rules(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.get("/v1/rules")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _audit(http: httpx.AsyncClient, entity: str, entity_id: str | None = None
                 ) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"entity": entity, "limit": 1000}
    if entity_id:
        params["entity_id"] = entity_id
    r = await http.get("/v1/audit", params=params)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def _with(rows: list[dict[str, Any]], rule_id: str, **change: Any) -> list[dict[str, Any]]:
    return [r | change if r["rule_id"] == rule_id else r for r in rows]


def _bad_tables(rows: list[dict[str, Any]]) -> dict[str, tuple[list[dict[str, Any]], str]]:
    """Rule tables that must be refused, with a word the refusal must contain."""
    return {
        "no suspension": ([r for r in rows if r["rule_id"] != "adc-suspend-low"],
                          "suspension"),
        "two bill notices": ([*rows, rows[0] | {"rule_id": "adc-bill-notice-low-2"}], "2 enabled"),
        "duplicate id": ([*rows, rows[0]], "used 2 times"),
        "warning after suspension": (_with(rows, "mas-warning-1-low", arrears_month=2),
                                     "after the suspension"),
        "no restore": (_with(rows, "sms-direct-restore-high", enabled=False), "restore"),
        "day 31": (_with(rows, "adc-warning-1-low", day=31), "day"),
        "unknown field": (_with(rows, "adc-warning-1-low", hour=9), "hour"),
        "suspend on payment": (_with(rows, "adc-restore-low", decision="suspend"), "cannot"),
        "calendar row without a day": (_with(rows, "adc-suspend-mid", day=None), "day"),
    }


async def test_put_rules_refuses_bad_tables_and_versions_and_audits_good_ones(
    api: CreditApi,
) -> None:
    http = api.http
    current = await _rules(http)
    version, rows = current["version"], current["rows"]
    audited = len(await _audit(http, "rule_table"))
    base = {"changed_by": "规则管理员", "reason": "test", "expected_version": version}

    for name, (bad, word) in _bad_tables(rows).items():
        r = await http.put("/v1/rules", json=base | {"rows": bad})
        assert r.status_code == 422, (name, r.text)
        assert word in r.text, (name, r.text)
    r = await http.put("/v1/rules", json=base | {"rows": rows, "expected_version": version - 1})
    assert r.status_code == 409 and r.json()["version"] == version, r.text
    r = await http.put("/v1/rules", json={"rows": rows, "expected_version": version})
    assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text
    assert await _rules(http) == current
    assert len(await _audit(http, "rule_table")) == audited

    changed = _with(rows, "adc-warning-1-low", day=12)
    r = await http.put("/v1/rules", json=base | {"rows": changed, "reason": "warn on the 12th"})
    try:
        assert r.status_code == 200, r.text
        now = await _rules(http)
        assert now["version"] == version + 1
        # who changed it is the token's subject (here the service token), not the body's word
        assert (now["changed_by"], now["reason"]) == ("service", "warn on the 12th")
        assert next(x for x in now["rows"] if x["rule_id"] == "adc-warning-1-low")["day"] == 12
        [entry] = await _audit(http, "rule_table", str(version + 1))
        assert entry["actor"] == "service"
        assert entry["old"] == {"version": version, "rows": {
            "adc-warning-1-low": next(x for x in rows if x["rule_id"] == "adc-warning-1-low")}}
        assert entry["new"]["rows"]["adc-warning-1-low"]["day"] == 12
        assert list(entry["new"]["rows"]) == ["adc-warning-1-low"]
    finally:  # the defaults again, as a new version: other tests rely on them
        r = await http.put("/v1/rules", json=base | {
            "rows": rows, "expected_version": version + 1, "reason": "back to the defaults"})
        assert r.status_code == 200, r.text
    assert (await _rules(http))["rows"] == rows


async def test_profiles_refuse_limits_outside_the_star_range(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]],
) -> None:
    http, customer = api.http, f"Gprof{new_uid()}"
    path = f"/v1/profiles/{customer}"
    for body, status in (
        ({"changed_by": "评级组", "star_level": 3, "credit_limit_fen": 200_00}, 422),
        ({"changed_by": "评级组", "star_level": 6}, 422),
        ({"changed_by": "评级组", "star_level": None, "credit_limit_fen": 1}, 422),
        ({"changed_by": "评级组", "star_level": 2, "credit_limit_fen": -1}, 422),
        ({"changed_by": "评级组", "star_level": 2, "tier": "high"}, 422),
        ({"changed_by": "评级组", "star_level": "3"}, 422),  # a string is a client's bug
    ):
        r = await http.put(path, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"] in ("unprocessable", "validation_error")
    # Ids of the ids' pattern only: not a zero-width space, a space, or 3,000 characters.
    for bad in ("%E2%80%8B", "G%20x", "G" * 3_000):
        r = await http.put(f"/v1/profiles/{bad}", json={"star_level": 2})
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (bad, r.text)
    untouched = (await http.get(path)).json()
    assert (untouched["star_level"], untouched["updated_by"]) == (None, None)
    assert await _audit(http, "credit_profile", customer) == []

    admin = role_clients["credit-admin"]["credit-control"]  # token subject: zhang.wei
    r = await admin.put(path, json={"changed_by": "评级组", "star_level": 3,
                                    "credit_limit_fen": 80_00})
    assert r.status_code == 200, r.text
    assert (r.json()["star_level"], r.json()["credit_limit_fen"]) == (3, 80_00)
    r = await http.put(path, json={"changed_by": "复核组", "star_level": 4})
    assert r.status_code == 200 and r.json()["credit_limit_fen"] == 200_00, r.text
    assert [(a["actor"], a["old"], a["new"]) for a in await _audit(  # newest first
        http, "credit_profile", customer)] == [
        ("service", {"star_level": 3, "credit_limit_fen": 80_00},
         {"star_level": 4, "credit_limit_fen": None}),
        ("zhang.wei", None, {"star_level": 3, "credit_limit_fen": 80_00})]


async def test_exemptions_refuse_bad_requests(api: CreditApi, test_year: int) -> None:
    http, uid = api.http, new_uid()
    customer = f"Gexapi{uid}"
    good = {"exemption_id": f"EXapi{uid}", "customer_id": customer, "kind": "emergency",
            "reason": "紧急不停机: 抢险保障", "approver": "分管副总", "created_by": "客户经理",
            "until": f"{test_year}-01-31T00:00:00+08:00"}
    for change, status in (
        ({"until": None}, 422),  # emergency is time-boxed
        ({"until": "2001-01-01T00:00:00+08:00"}, 422),  # already over
        ({"kind": "vip"}, 422),
        ({"exemption_id": "bad id!"}, 422),
        ({"customer_id": f"{customer}/"}, 422),  # was a 502: billing redirected the slash
        ({"approver": ""}, 422),
        ({"note": "x"}, 422),
    ):
        r = await http.post("/v1/exemptions", json=good | change)
        assert r.status_code == status, (change, r.text)
    listed = await http.get("/v1/exemptions", params={"customer_id": customer})
    assert listed.json() == []
    unknown = await http.post("/v1/exemptions", json=good)  # no service has heard of it
    assert unknown.status_code == 404 and unknown.json()["field"] == "customer_id", unknown.text
    assert (await http.get("/v1/exemptions", params={"customer_id": customer})).json() == []
    # An admin's credit profile makes the customer known to credit-control.
    assert (await http.put(f"/v1/profiles/{customer}", json={"star_level": 2})).status_code == 200

    assert (await http.post("/v1/exemptions", json=good)).status_code == 201
    again = await http.post("/v1/exemptions", json=good)  # a retried request: same answer
    assert again.status_code == 201 and again.json()["exemption_id"] == good["exemption_id"]
    other = await http.post("/v1/exemptions", json=good | {"reason": "another reason"})
    assert other.status_code == 409, other.text
    missing = await http.post(f"/v1/exemptions/EXnone{uid}/remove", json={"removed_by": "x"})
    assert missing.status_code == 404, missing.text
    assert len((await http.get("/v1/exemptions", params={"customer_id": customer})).json()) == 1
    assert [a["action"] for a in await _audit(http, "emergency", customer)] == ["add"]


async def test_an_exemption_for_a_customer_only_billing_knows_is_accepted(
    api: CreditApi, clients: dict[str, httpx.AsyncClient],
) -> None:
    """A group just created in billing (no charge, no balance event yet) may be red-listed:
    credit-control asks billing, the owner of customers."""
    uid = new_uid()
    customer = f"Gbill{uid}"
    r = await clients["billing-events"].post("/v1/customers", json={
        "customer_id": customer, "name": f"新集团{uid}", "tier": "high",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "联系人", "phone": "13800000003"}]})
    assert r.status_code == 201, r.text
    r = await api.http.post("/v1/exemptions", json={
        "exemption_id": f"EXbill{uid}", "customer_id": customer, "kind": "red_list",
        "reason": "重点客户", "approver": "分管副总"})
    assert r.status_code == 201, r.text
