"""The walking skeleton, end to end through the four running services, real Kafka and
PostgreSQL: bill run → bill notice; month-end sweep → suspend → gateway blocks → suspension
SMS A and B; payment → restore → gateway open → restore SMS."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.notices import notices_heard
from common.testing.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def create_group(billing: httpx.AsyncClient, uid: str) -> dict[str, str]:
    group = {"customer_id": f"G{uid}", "name": f"某某科技有限公司{uid}",
             "contact": "13800138000", "manager": "13900139000"}
    await ok(await billing.post("/v1/customers", json={
        "customer_id": group["customer_id"], "name": group["name"], "tier": "low",
        "account_manager": {"name": "王经理", "phone": group["manager"]},
        "contacts": [{"name": "李联系人", "phone": group["contact"]}],
    }))
    return group


async def add_product(
    billing: httpx.AsyncClient, customer_id: str, uid: str, family: str, name: str,
    vendor: str | None = None,
) -> dict[str, str]:
    account_id, product_id, cpno = f"A{family}{uid}", f"P{family}{uid}", f"CP{family}{uid}"
    await ok(await billing.post("/v1/accounts", json={
        "account_id": account_id, "customer_id": customer_id}))
    await ok(await billing.post("/v1/products", json={
        "product_id": product_id, "account_id": account_id, "cpno": cpno, "name": name,
        "family": family, "vendor": vendor}))
    return {"account_id": account_id, "product_id": product_id, "cpno": cpno, "name": name}


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    return (await notifier.get("/v1/messages", params={"product_id": product_id})).json()


async def credit_state(credit: httpx.AsyncClient, product_id: str) -> str | None:
    r = await credit.get(f"/v1/products/{product_id}/credit")
    return r.json()["state"] if r.status_code == 200 else None


async def submit(gateway: httpx.AsyncClient, product_id: str) -> httpx.Response:
    return await gateway.post("/v1/gateway/submit", json={
        "product_id": product_id, "recipient": "13700137000", "text": "会议通知"})


async def test_suspend_and_restore_through_the_chain(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int, db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier, gateway = clients["notifier"], clients["gateway-adapter"]
    y = test_year
    group = await create_group(billing, uid)
    mas = await add_product(billing, group["customer_id"], uid, "MAS", "华为CRM-MAS", "huawei")
    adc = await add_product(billing, group["customer_id"], uid, "ADC", "集团手机报")
    for product, fen in ((mas, 12345), (adc, 5000)):
        await ok(await billing.post("/v1/charges", json={
            "charge_id": f"C{product['product_id']}", "account_id": product["account_id"],
            "product_id": product["product_id"], "bill_month": f"{y}-10", "amount_fen": fen}))

    # Bill run: the account owes → bill notice to the group contact.
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{y}10{uid}", "bill_month": f"{y}-10",
        "as_of": f"{y}-11-02T09:00:00+08:00"}))
    bill = await eventually(lambda: messages(notifier, mas["product_id"]),
                            lambda ms: len(ms) >= 1, what="bill notice")
    assert [m["text"] for m in bill] == [
        f"尊敬的中国移动客户,您好!您的集团产品华为CRM-MAS(产品编号:{mas['cpno']})目前有123.45元"
        "话费未缴清,请于11月25日前及时缴费以免影响您的集团产品服务。谢谢。"]
    assert bill[0]["recipient"] == group["contact"]
    assert (await submit(gateway, mas["product_id"])).status_code == 200

    # The 25th: the suspension warning (notice before suspension, docs/rules.md).
    await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": f"S{y}1125{uid}", "as_of": f"{y}-11-25T20:00:00+08:00"}))
    await notices_heard(db)  # suspended only once the warning reached the contact
    # Month-end sweep: suspend. MAS goes through BOSS → EMOS → gateway; ADC flips at once.
    await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": f"S{y}1130{uid}", "as_of": f"{y}-11-30T20:00:00+08:00"}))
    await eventually(lambda: credit_state(credit, mas["product_id"]),
                     lambda s: s == "suspended", what="MAS suspended after the chain confirmed")
    assert await credit_state(credit, adc["product_id"]) == "suspended"
    refused = await submit(gateway, mas["product_id"])
    assert refused.status_code == 403
    assert refused.json()["error"] == "product_blocked"
    chain = (await gateway.get(f"/v1/products/{mas['product_id']}/chain")).json()
    assert chain["boss"]["status"] == "arrears_suspended"
    assert chain["gateway"]["blocked"] is True
    assert [o["status"] for o in chain["emos"]["orders"]] == ["closed"]

    sent = await eventually(lambda: messages(notifier, mas["product_id"]),
                            lambda ms: len(ms) >= 4, what="suspension notices A and B")
    by_template = {m["template"]: m for m in sent}
    assert by_template["suspension_notice_contact"]["text"] == (
        f"尊敬的中国移动客户,您好!您的集团产品华为CRM-MAS(产品编号:{mas['cpno']})截至{y}年11月30日"
        "尚有123.45元欠费未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。"
        "如有其他事宜可咨询您的客户经理或10086,谢谢!")
    assert by_template["suspension_notice_contact"]["recipient"] == group["contact"]
    assert by_template["suspension_notice_manager"]["text"] == (
        f"王经理,您好!您看管集团{group['name']}的集团产品华为CRM-MAS(产品编号:{mas['cpno']})"
        "尚有123.45元欠费,现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。")
    assert by_template["suspension_notice_manager"]["recipient"] == group["manager"]
    async def smsc_texts() -> list[str]:
        got = await notifier.get("/v1/smsc/messages", params={"recipient": group["manager"]})
        return [r["text"] for r in got.json()]

    await eventually(smsc_texts, lambda texts: by_template["suspension_notice_manager"]["text"]
                     in texts, what="the manager's notice reached the SMSC")

    # Re-running the sweep is harmless: no second decision, no second SMS.
    await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": f"S{y}1130b{uid}", "as_of": f"{y}-11-30T21:00:00+08:00"}))

    # Payment in full: restore through the chain, the gateway accepts again.
    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": mas["account_id"], "amount_fen": 12345,
        "paid_at": f"{y}-12-01T10:00:00+08:00"}))
    await eventually(lambda: credit_state(credit, mas["product_id"]),
                     lambda s: s == "normal", what="MAS restored")
    assert (await submit(gateway, mas["product_id"])).status_code == 200
    final = await eventually(lambda: messages(notifier, mas["product_id"]),
                             lambda ms: len(ms) >= 5, what="restore notice")
    assert sorted(m["template"] for m in final) == sorted([
        "bill_notice", "suspension_warning", "suspension_notice_contact",
        "suspension_notice_manager", "restore_notice"])
    assert final[-1]["text"] == (
        f"尊敬的中国移动客户,您好!您的集团产品华为CRM-MAS(产品编号:{mas['cpno']})已可正常使用,"
        "如有疑问可咨询您的客户经理或10086,谢谢!")
    history = (await credit.get(f"/v1/products/{mas['product_id']}/credit")).json()
    assert [h["state_after"] for h in history["state_history"]] == [
        "warned", "suspension_warned", "suspend_requested", "suspended", "restore_requested",
        "normal"]
    assert [d["decision"] for d in history["decisions"]] == [
        "bill_notice", "suspension_warning", "suspend", "restore"]
    # The ADC account still owes: it stays suspended, its notices were sent once each.
    adc_sent = await eventually(lambda: messages(notifier, adc["product_id"]),
                                lambda ms: len(ms) >= 4, what="the ADC product's notices")
    assert sorted(m["template"] for m in adc_sent) == [
        "bill_notice", "suspension_notice_contact", "suspension_notice_manager",
        "suspension_warning"]
    assert await credit_state(credit, adc["product_id"]) == "suspended"
