"""Ids in paths, on the running services: a NUL, a zero-width space, a space or 3,000
characters where a route takes an id is a 422 naming the parameter (`field`), before any
query, never PostgreSQL's 500 or a 404 that reads as "no such thing"; a good id nobody
knows still gets its normal answer (404 for unknown). Every route with an id in its path is
here: the list is checked against the apps' routes (tests/docs/test_path_ids.py checks each
parameter's pattern)."""

import uuid
from typing import Any

import httpx
import pytest

from credit_control.reports.entrypoints import csrf
from tests.docs.test_path_ids import OWN_PATTERN, SERVICES, closed, path_parameters

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TOKEN = "test-token"  # conftest.TOKEN: the clients' token, whose form token the actions take

# Raw in the address: the service reads %00 as a NUL, %E2%80%8B as a zero-width space.
BAD_IDS = ("%00", "G%00x", "%E2%80%8B", "G%E2%80%8Bx", "G%20x", "G" * 3_000)
UNKNOWN = f"ZZunknown.id-{uuid.uuid4().hex[:10]}"  # of the pattern, of no one
LATER = "2999-12-01T00:00:00+08:00"
CUSTOMER = {"name": "无此集团", "tier": "low",
            "account_manager": {"name": "赵经理", "phone": "13900139011"},
            "contacts": [{"name": "周联系人", "phone": "13800138011"}]}
# (service, method, path) -> (a valid body, the answer for an id nobody knows; 0: not asked,
# the route would make something for it).
ROUTES: dict[tuple[str, str, str], tuple[dict[str, Any] | None, int]] = {
    ("credit-control", "GET", "/v1/products/{product_id}/credit"): (None, 404),
    ("credit-control", "GET", "/v1/products/{product_id}/timeline"): (None, 404),
    ("credit-control", "GET", "/v1/sweeps/{sweep_id}"): (None, 404),
    ("credit-control", "POST", "/v1/sweeps/{sweep_id}/confirm"): ({"note": "确认"}, 404),
    ("credit-control", "GET", "/v1/freezes/{freeze_id}"): (None, 404),
    ("credit-control", "GET", "/v1/freezes/{freeze_id}/holds"): (None, 404),
    ("credit-control", "POST", "/v1/freezes/{freeze_id}/end"): ({"reason": "恢复"}, 404),
    ("credit-control", "GET", "/v1/profiles/{customer_id}"): (None, 200),  # the defaults
    ("credit-control", "PUT", "/v1/profiles/{customer_id}"): ({"star_level": 2}, 0),
    ("credit-control", "POST", "/v1/exemptions/{exemption_id}/remove"): ({}, 404),
    ("credit-control", "GET", "/v1/work-orders/{work_order_id}"): (None, 404),
    ("credit-control", "POST", "/v1/work-orders/{work_order_id}/assign"):
        ({"assignee": "王芳"}, 404),
    ("credit-control", "POST", "/v1/work-orders/{work_order_id}/done"): ({"note": "已办"}, 404),
    ("credit-control", "POST", "/v1/work-orders/{work_order_id}/fail"): ({"note": "未办"}, 404),
    ("credit-control", "GET", "/v1/worklists/{entry_id}"): (None, 404),
    ("credit-control", "POST", "/v1/worklists/{entry_id}/attempts"):
        ({"attempt_id": "ATunknown", "channel": "phone", "outcome": "no_answer"}, 404),
    ("credit-control", "POST", "/v1/worklists/{entry_id}/cause"): ({"cause": "other"}, 404),
    ("credit-control", "POST", "/v1/worklists/{entry_id}/promises"):
        ({"promise_id": "PRunknown", "promised_date": "2999-12-01", "amount_fen": 100,
          "reason": "资金周转"}, 404),
    ("credit-control", "GET", "/v1/promises/{promise_id}"): (None, 404),
    ("credit-control", "GET", "/v1/reviews/{review_id}"): (None, 404),
    ("credit-control", "POST", "/v1/reviews/{review_id}/decide"):
        ({"decision": "keep", "note": "保持"}, 404),
    ("credit-control", "GET", "/v1/collections/cases/{case_id}"): (None, 404),
    ("credit-control", "POST", "/v1/collections/cases/{case_id}/associated-suspension"):
        ({"note": "关联停机"}, 404),
    ("credit-control", "POST", "/v1/red-list/{exemption_id}/renew"): ({"note": "续期"}, 404),
    ("credit-control", "GET", "/v1/ratings/{customer_id}"): (None, 404),
    ("credit-control", "POST", "/v1/ratings/{customer_id}/overrides"):  # no service knows it
        ({"override_id": "OVunknown", "star_level": 3, "reason": "复核",
          "expires_at": LATER}, 404),
    ("credit-control", "POST", "/v1/ratings/overrides/{override_id}/remove"):
        ({"reason": "复核"}, 404),
    ("credit-control", "POST", "/v1/credit-multiples/{check_date}/{customer_id}/review"):
        ({"note": "复核"}, 404),
    ("credit-control", "POST", "/v1/churn/entries/{entry_id}/revisit"):
        ({"outcome": "retained", "note": "回访"}, 404),
    ("credit-control", "GET", "/dashboard/accounts/{account_id}"): (None, 404),
    ("credit-control", "GET", "/dashboard/products/{product_id}"): (None, 404),
    ("credit-control", "GET", "/dashboard/freezes/{freeze_id}"): (None, 404),
    ("credit-control", "GET", "/dashboard/work-orders/{work_order_id}"): (None, 404),
    ("gateway-adapter", "GET", "/v1/products/{product_id}/chain"): (None, 404),
    ("billing-events", "GET", "/v1/customers/{customer_id}"): (None, 404),
    ("billing-events", "PUT", "/v1/customers/{customer_id}"): (CUSTOMER, 404),
    ("billing-events", "PUT", "/v1/products/{product_id}"):
        ({"name": "集团彩铃", "family": "ADC"}, 404),
    ("billing-events", "GET", "/v1/accounts/{account_id}"): (None, 404),
    ("billing-events", "GET", "/v1/accounts/{account_id}/late-fees"): (None, 200),  # none
    ("billing-events", "POST", "/v1/late-fees/{line_id}/waive"): ({"reason": "减免"}, 404),
    ("billing-events", "POST", "/v1/disputes/{dispute_id}/resolve"): ({"resolution": "已处理"},
                                                                      404),
}
# The dashboard's actions answer a bad id with their outcome page (dashboard_actions._act).
ACTIONS = ("/dashboard/actions/sweeps/{sweep_id}/confirm",
           "/dashboard/actions/work-orders/{work_order_id}/take",
           "/dashboard/actions/work-orders/{work_order_id}/done",
           "/dashboard/actions/work-orders/{work_order_id}/fail",
           "/dashboard/actions/exemptions/{exemption_id}/end")


def _address(path: str, name: str, value: str) -> str:
    return path.replace("{" + name + "}", value).replace("{check_date}", "2999-12-01")


def _ids_of(path: str) -> list[str]:
    return [p[1:-1] for p in path.split("/") if p.startswith("{") and p != "{check_date}"]


def test_the_table_has_every_route_with_an_id_in_its_path() -> None:
    not_ids = OWN_PATTERN | {("notifier", "/v1/templates/{name}/versions", "name")}
    routed = {(s, path) for s in SERVICES for path, name, field in path_parameters(s)
              if (s, path, name) not in not_ids and not closed(field.annotation)}
    assert routed == {(s, path) for s, _, path in ROUTES} | {
        ("credit-control", a) for a in ACTIONS}


@pytest.mark.parametrize(("service", "method", "path"), sorted(ROUTES))
async def test_a_bad_id_is_refused_naming_it_and_a_good_one_answers(
    clients: dict[str, httpx.AsyncClient], service: str, method: str, path: str,
) -> None:
    http = clients[service]
    body, unknown_status = ROUTES[service, method, path]
    for name in _ids_of(path):
        for bad in BAD_IDS:
            r = await http.request(method, _address(path, name, bad), json=body)
            assert r.status_code == 422, (name, bad[:20], r.status_code, r.text[:300])
            found = r.json()
            assert (found["error"], found["field"]) == ("validation_error", name), r.text[:300]
        if unknown_status:  # an id of the pattern: the route's own answer
            r = await http.request(method, _address(path, name, UNKNOWN), json=body)
            assert r.status_code == unknown_status, (name, r.status_code, r.text[:300])


@pytest.mark.parametrize("path", ACTIONS)
async def test_a_dashboard_action_refuses_a_bad_id_with_its_page(
    clients: dict[str, httpx.AsyncClient], path: str,
) -> None:
    http = clients["credit-control"]
    form = {csrf.FIELD: csrf.session_token(TOKEN), "confirmed": "yes", "note": "x"}
    name = _ids_of(path)[0]
    for bad in BAD_IDS:
        r = await http.post(_address(path, name, bad), data=form)
        assert r.status_code == 422 and name in r.text, (bad[:20], r.status_code, r.text[:300])
        assert "text/html" in r.headers["content-type"]
    r = await http.post(_address(path, name, UNKNOWN), data=form)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"], r.text[:300]
