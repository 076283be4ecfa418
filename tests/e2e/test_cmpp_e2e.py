"""A MAS server talking CMPP 2.0 to the running industry gateway, end to end: it sends while
the enterprise is in service, the month-end sweep suspends the MAS product through BOSS →
EMOS → gateway, the client's next CMPP_SUBMIT is refused (Result 9) within the chain's
latency, the customer pays, the chain restores, and the client sends again — with the
library client and with `creditctl mas-send`."""

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from common.cmpp.client import CmppClient
from common.cmpp.codec import SubmitResult
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from creditctl.main import app as creditctl

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
SECRET = "mas-Secret9"
PHONE = "13700137000"


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def cmpp_port(services: ServiceProcesses) -> int:
    env = dict(services.specs["gateway-adapter"].extra_env)
    return int(env["GATEWAY_CMPP_PORT"])


async def credit_state(credit: httpx.AsyncClient, product_id: str) -> str | None:
    r = await credit.get(f"/v1/products/{product_id}/credit")
    return r.json()["state"] if r.status_code == 200 else None


def mas_send(port: int, source: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(creditctl, [
        "mas-send", "--port", str(port), "--source-addr", source, "--secret", SECRET,
        "--to", PHONE, "--text", "会议通知:明天九点开会", "--output", "json", *extra])
    return result.exit_code, json.loads(result.stdout)


async def setup_owing_mas(billing: httpx.AsyncClient, uid: str, y: int) -> dict[str, str]:
    customer, account, product = f"G{uid}", f"ACM{uid}", f"PCM{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": customer, "name": f"某某信息机用户{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": account, "customer_id": customer}))
    await ok(await billing.post("/v1/products", json={
        "product_id": product, "account_id": account, "cpno": f"CPCM{uid}",
        "name": "华为CRM-MAS", "family": "MAS", "vendor": "huawei"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"C{product}", "account_id": account, "product_id": product,
        "bill_month": f"{y}-10", "amount_fen": 12345}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRCM{y}10{uid}", "bill_month": f"{y}-10",
        "as_of": f"{y}-11-02T09:00:00+08:00"}))
    return {"account_id": account, "product_id": product}


async def test_cmpp_client_refused_while_suspended_and_sending_after_restore(
    clients: dict[str, httpx.AsyncClient], role_clients: dict[str, dict[str, httpx.AsyncClient]],
    services: ServiceProcesses, uid: str, test_year: int, db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    gateway = clients["gateway-adapter"]
    y = test_year + 15
    port, source = cmpp_port(services), uid[:6]
    mas = await setup_owing_mas(billing, uid, y)

    async def owed() -> int | None:
        r = await credit.get(f"/v1/products/{mas['product_id']}/credit")
        return int(r.json()["facts"]["amount_due_fen"]) if r.status_code == 200 else None

    # The bill run reaches credit-control over Kafka: the sweeps below must come after it.
    await eventually(owed, lambda due: due == 12345, timeout=60,
                     what="credit-control applied the bill run")
    await ok(await role_clients["credit-admin"]["gateway-adapter"].put(
        f"/v1/cmpp/accounts/{source}", json={
            "shared_secret": SECRET, "product_id": mas["product_id"]}), 200)

    client = await CmppClient.connect("127.0.0.1", port, source, SECRET, timeout=30)
    try:
        sent = await client.submit([PHONE], "会议通知", registered_delivery=1)
        assert [r.result for r in sent] == [SubmitResult.OK]
        report = await asyncio.wait_for(client.reports.get(), 30)
        assert (report.msg_id, report.stat) == (sent[0].msg_id, "DELIVRD")

        await ok(await credit.post("/v1/sweeps", json={
            "sweep_id": f"SCM{y}1125{uid}", "as_of": f"{y}-11-25T20:00:00+08:00"}))
        await notices_heard(db)
        swept = time.monotonic()
        await ok(await credit.post("/v1/sweeps", json={
            "sweep_id": f"SCM{y}1130{uid}", "as_of": f"{y}-11-30T20:00:00+08:00"}))

        async def next_submit() -> int:
            return (await client.submit([PHONE], "会议通知"))[0].result

        # The MAS server keeps sending; the first refusal comes once the chain has blocked.
        assert await eventually(next_submit, lambda r: r != SubmitResult.OK, timeout=60,
                                interval=0.1, what="a CMPP_SUBMIT refused") \
            == SubmitResult.PRODUCT_BLOCKED
        refused_after = time.monotonic() - swept
        assert await credit_state(credit, mas["product_id"]) in ("suspend_requested",
                                                                 "suspended")
        await eventually(lambda: credit_state(credit, mas["product_id"]),
                         lambda s: s == "suspended", what="suspension confirmed")
        assert await next_submit() == SubmitResult.PRODUCT_BLOCKED
        assert refused_after < 60
    finally:
        await client.terminate()

    code, view = await asyncio.to_thread(mas_send, port, source)
    assert code == 1 and view["accepted"] == 0
    assert view["refused"] == {"9 product_blocked": 1}

    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAYCM{uid}", "account_id": mas["account_id"], "amount_fen": 12345,
        "paid_at": f"{y}-12-01T10:00:00+08:00"}))
    await eventually(lambda: credit_state(credit, mas["product_id"]),
                     lambda s: s == "normal", what="MAS restored")
    code, view = await asyncio.to_thread(mas_send, port, source, "--count", "5", "--report")
    assert code == 0, view
    assert (view["submits"], view["accepted"], view["reports"]) == (5, 5, 5)

    # Every submit, CMPP and HTTP alike, is in the gateway's record with its judgement.
    log = (await gateway.get("/v1/gateway/submits",
                             params={"product_id": mas["product_id"]})).json()
    assert {s["channel"] for s in log} == {"cmpp"}
    refused = [s for s in log if not s["accepted"]]
    assert len(refused) >= 3 and log[0]["accepted"] and all(s["accepted"] for s in log[-5:])
    assert (await gateway.get(f"/v1/cmpp/accounts/{source}")).json() == {
        "source_addr": source, "product_id": mas["product_id"], "max_connections": 4,
        "max_rate_per_s": 200.0}
