"""A product's timeline shows what became of each SMS (issue 15): a bill notice decided at
night is held by the quiet hours, the customer pays before it may leave, the notifier cancels
it at once with the reason, and credit-control's timeline (API and dashboard data) shows the
cancelled message beside the decisions. Year test_year + 13 is this module's."""

from typing import Any

import httpx
import pytest

from common.testing.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def timeline(credit: httpx.AsyncClient, product_id: str) -> dict[str, Any] | None:
    r = await credit.get(f"/v1/products/{product_id}/timeline")
    return r.json() if r.status_code == 200 else None


async def test_a_reminder_cancelled_by_a_payment_shows_in_the_products_timeline(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + 13
    customer, account, product = f"Gtl{uid}", f"Atl{uid}", f"Ptl{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": customer, "name": f"夜间科技{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={"account_id": account,
                                                      "customer_id": customer}))
    await ok(await billing.post("/v1/products", json={
        "product_id": product, "cpno": f"CP{uid}", "name": "集团手机报", "account_id": account,
        "family": "ADC"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"Ctl{uid}", "account_id": account, "product_id": product,
        "bill_month": f"{y}-03", "amount_fen": 12_345}))
    # Decided at 22:30 business time: inside the quiet hours (21:00-08:00), so it is held.
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRtl{uid}", "bill_month": f"{y}-03",
        "as_of": f"{y}-04-01T22:30:00+08:00"}))
    held = await eventually(lambda: timeline(credit, product),
                            lambda t: t is not None and any(
                                m["template"] == "bill_notice" for m in t["messages"]),
                            what="the bill notice in the timeline", timeout=120)
    assert held is not None
    assert [m["status"] for m in held["messages"] if m["template"] == "bill_notice"] == ["held"]

    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAYtl{uid}", "account_id": account, "amount_fen": 12_345,
        "paid_at": f"{y}-04-01T23:10:00+08:00"}))
    got = await eventually(lambda: timeline(credit, product),
                           lambda t: t is not None and any(
                               m["status"] == "cancelled" for m in t["messages"]),
                           what="the held bill notice cancelled", timeout=120)
    assert got is not None
    cancelled = [m for m in got["messages"] if m["status"] == "cancelled"]
    assert [m["template"] for m in cancelled] == ["bill_notice"]
    assert cancelled[0]["status_reason"], cancelled  # why it never left
    assert cancelled[0]["cancelled_at"] is not None
    # The decisions beside it: the bill notice and the clearance that made it stale.
    assert [d["decision"] for d in got["decisions"]] == ["bill_notice", "arrears_cleared"]
    assert "messages_unavailable" not in got
    # No phone number or text leaves through the timeline.
    assert all("recipient" not in m and "text" not in m for m in got["messages"])
