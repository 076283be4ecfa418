"""Red-list review end to end (docs/collections.md "Red-list review"), over HTTP: an entry
has a review date, shows on the monthly review worklist with the customer's arrears and
red-list history, is renewed by a credit-admin, and lapses, audited, when not renewed by
its review date. Dates are relative to the service's clock (an exemption is dated by it);
the lapse run is dated two days ahead, so only entries renewed to tomorrow can lapse in it
(others added by the suite today are due in six months)."""

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ
from common.testing.processes import ServiceProcesses

from .test_collections_escalation import creditctl
from .test_product_amounts import add_product, charge, ok, open_account

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _months_later(day: Any, months: int) -> str:
    from credit_control.collections.domain.red_list_review import add_months

    return add_months(day, months).isoformat()


async def test_a_red_list_entry_is_reviewed_renewed_and_lapses(
    clients: dict[str, httpx.AsyncClient], services: ServiceProcesses,
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str, test_year: int,
    db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    admin = role_clients["credit-admin"]["credit-control"]
    operator = role_clients["operator"]["credit-control"]
    group = await open_account(billing, uid, "rl")
    product = await add_product(billing, group, f"P{uid}-rl", "集团手机报")
    await charge(billing, group, product, f"{test_year + 16}-06", 12_300)
    customer = group["customer_id"]
    today = datetime.now(BUSINESS_TZ).date()
    entry = await ok(await admin.post("/v1/exemptions", json={
        "exemption_id": f"RL{uid}", "customer_id": customer, "kind": "red_list",
        "reason": "重点保障客户", "approver": "分管副总"}))
    assert entry["review_on"] is None  # none set: due the review period after adding

    due_on = _months_later(today, 6)
    month = due_on[:7]
    listed = await ok(await credit.get("/v1/red-list/reviews", params={"month": month}), 200)
    [mine] = [e for e in listed["entries"] if e["exemption_id"] == f"RL{uid}"]
    assert mine["review_on"] == due_on and listed["review_months"] == 6
    assert [h["action"] for h in mine["history"]] == ["add"]
    assert mine["arrears_fen"] >= 0
    # Not due in the month before.
    earlier = (await ok(await credit.get("/v1/red-list/reviews", params={
        "month": _months_later(today, 5)[:7]}), 200))["entries"]
    assert f"RL{uid}" not in [e["exemption_id"] for e in earlier]

    # Renewal is a credit-admin's, with a note; bad input writes nothing.
    r = await operator.post(f"/v1/red-list/RL{uid}/renew", json={"note": "继续保障"})
    assert r.status_code == 403, r.text
    r = await admin.post(f"/v1/red-list/RL{uid}/renew", json={"note": "x",
                                                              "review_on": today.isoformat()})
    assert r.status_code == 422, r.text
    r = await admin.post(f"/v1/red-list/RL{uid}/renew", json={"note": ""})
    assert r.status_code == 422, r.text
    r = await admin.post("/v1/red-list/nope-unknown/renew", json={"note": "x"})
    assert r.status_code == 404, r.text
    tomorrow = (today + timedelta(days=1)).isoformat()
    renewed = await ok(await admin.post(f"/v1/red-list/RL{uid}/renew", json={
        "note": "年中复核:继续保障", "review_on": tomorrow}), 200)
    assert (renewed["review_on"], renewed["previous_review_on"]) == (tomorrow, due_on)
    assert renewed["renewed_by"] == "zhang.wei"
    now_listed = await ok(await credit.get("/v1/red-list/reviews", params={
        "month": tomorrow[:7]}), 200)
    [mine] = [e for e in now_listed["entries"] if e["exemption_id"] == f"RL{uid}"]
    assert [h["action"] for h in mine["history"]] == ["add", "renew"]
    shown = creditctl(services, "red-list", "reviews", "--month", tomorrow[:7], "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert f"RL{uid}" in [e["exemption_id"] for e in json.loads(shown.stdout)["entries"]]

    # The day after its review date it lapses, audited; a re-run lapses nothing more.
    lapse_at = f"{(today + timedelta(days=2)).isoformat()}T01:00:00+08:00"
    r = await operator.post("/v1/red-list/lapse", json={"as_of": lapse_at})
    assert r.status_code == 200, r.text
    assert f"RL{uid}" in [e["exemption_id"] for e in r.json()["lapsed"]]
    again = await ok(await operator.post("/v1/red-list/lapse", json={"as_of": lapse_at}), 200)
    assert f"RL{uid}" not in [e["exemption_id"] for e in again["lapsed"]]
    exemptions = await ok(await credit.get("/v1/exemptions",
                                           params={"customer_id": customer}), 200)
    [gone] = [e for e in exemptions if e["exemption_id"] == f"RL{uid}"] or [None]
    assert gone is None or gone["removed_by"] == "red-list-review"
    profile = await ok(await credit.get(f"/v1/profiles/{customer}"), 200)
    assert profile["suspension_exempt"] is False
    # The lapse is announced for the customer's product, as a removal by hand would be.
    async with db.connect() as conn:
        said = (await conn.execute(text(
            "SELECT payload::jsonb -> 'payload' FROM credit.outbox_messages "
            "WHERE key = :k AND event_type = 'credit.exemption_changed' "
            "AND payload::jsonb -> 'payload' ->> 'exemption_id' = :e ORDER BY event_id"),
            {"k": group["account_id"], "e": f"RL{uid}"})).scalars().all()
    # (The entry's own announcement came before the product was known to credit-control
    # or after it: the balance event of its charge races the request.)
    assert said and said[-1]["product_id"] == product["product_id"]
    assert said[-1]["suspension_exempt"] is False
    assert datetime.fromisoformat(said[-1]["as_of"].replace("Z", "+00:00")) == \
        datetime.fromisoformat(lapse_at)
    audit = await ok(await credit.get("/v1/audit", params={"entity_id": customer}), 200)
    actions = [a["action"] for a in audit if a["entity"] == "red_list"]
    assert sorted(actions) == ["add", "lapse", "renew"]
    # A lapsed entry is not renewed: a new one is added instead.
    r = await admin.post(f"/v1/red-list/RL{uid}/renew", json={"note": "x"})
    assert r.status_code == 409, r.text
