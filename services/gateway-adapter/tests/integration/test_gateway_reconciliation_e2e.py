"""Reconciliation against the real credit-control: its `GET /v1/provisioning/desired` and the
gateway's state after a month-end suspension went through the chain."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.gateway import ProvisioningAction
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from gateway_adapter.adapters.credit_control import DesiredChainSource
from gateway_adapter.service_layer import reconcile
from gateway_adapter.service_layer.context import GatewayContext

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_a_suspension_through_the_chain_reconciles_with_credit_control(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int,
    in_process: GatewayContext, db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    gateway = clients["gateway-adapter"]
    product, account, y = f"gwe2e{uid}", f"Agwe2e{uid}", test_year
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"G{uid}", "name": f"对账测试集团{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": account, "customer_id": f"G{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": product, "account_id": account, "cpno": f"CP{uid}",
        "name": "嘉讯CRM-MAS", "family": "MAS", "vendor": "jiaxun"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"C{product}", "account_id": account, "product_id": product,
        "bill_month": f"{y}-09", "amount_fen": 8800}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{y}09{uid}", "bill_month": f"{y}-09",
        "as_of": f"{y}-10-02T09:00:00+08:00"}))
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.status_code == 200 and r.json()["state"] == "warned",
                     what="credit-control applied the bill run (the product's master data "
                     "alone makes it known, in state normal: a sweep then would find nothing)")
    for day in (25, 31):  # the suspension warning first: notice before suspension
        await notices_heard(db)
        await ok(await credit.post("/v1/sweeps", json={
            "sweep_id": f"S{y}10{day}{uid}", "as_of": f"{y}-10-{day}T20:00:00+08:00"}))
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.json()["state"] == "suspended", timeout=60,
                     what="suspended once the chain confirmed")
    assert (await gateway.post("/v1/gateway/submit", json={
        "product_id": product, "recipient": "13700137000", "text": "通知"})).status_code == 403

    token = credit.headers["Authorization"].removeprefix("Bearer ")
    source = DesiredChainSource(str(credit.base_url), token)
    wanted = [d for d in await source.fetch_all() if d.product_id == product]
    assert [(d.desired, d.sequence > 0) for d in wanted] == [(ProvisioningAction.SUSPEND, True)]
    report = await reconcile.reconcile(in_process, prefix=product, source=source)
    assert (report.products_compared, report.total) == (1, 0), report.differences


async def test_only_a_whole_network_run_becomes_the_latest_reconciliation(
    clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str,
) -> None:
    """A reader's narrowed GET must not replace the stored run credit-control's missed-suspensions
    KPI reads; storing a run is a credit-admin's POST (or the scheduled job)."""
    viewer = role_clients["ops-viewer"]["gateway-adapter"]
    admin = role_clients["credit-admin"]["gateway-adapter"]
    stored = await ok(await admin.post("/v1/reconciliation/runs"))
    assert stored["products_compared"] > 0
    narrowed = await ok(await viewer.get("/v1/reconciliation",
                                         params={"product_prefix": f"NOPE{uid}"}), 200)
    assert narrowed["products_compared"] == 0
    assert await ok(await viewer.get("/v1/reconciliation/latest"), 200) == stored
    refused = await viewer.post("/v1/reconciliation/runs")
    assert refused.status_code == 403, refused.text
    # The service token may run it too (the scheduled job's equivalent over HTTP).
    again = await ok(await clients["gateway-adapter"].post("/v1/reconciliation/runs"))
    assert await ok(await viewer.get("/v1/reconciliation/latest"), 200) == again
