"""Per-product amounts end to end, through the four running services' HTTP APIs only:

- a whole billing cycle of one account with three products of different amounts and a
  partial payment: every SMS quotes the product's OWN amount (the seed's texts speak of one
  product), the payment clears products in the documented order (oldest bill month, then
  product id), and a product the payment cleared is neither warned nor suspended;
- a product added to an account that already owes is known to credit-control at once and,
  once it owes (billed late), is suspended with its sibling by the month-end sweep.

Year test_year + 12 (months 05-08) is this module's."""

from typing import Any

import httpx
import pytest

from common.testing.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def open_account(billing: httpx.AsyncClient, uid: str, key: str) -> dict[str, str]:
    group = {"customer_id": f"G{key}{uid}", "name": f"某某科技有限公司{key}{uid}",
             "account_id": f"A{key}{uid}", "contact": "13800138000", "manager": "13900139000"}
    await ok(await billing.post("/v1/customers", json={
        "customer_id": group["customer_id"], "name": group["name"], "tier": "low",
        "account_manager": {"name": "王经理", "phone": group["manager"]},
        "contacts": [{"name": "李联系人", "phone": group["contact"]}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": group["account_id"], "customer_id": group["customer_id"]}))
    return group


async def add_product(billing: httpx.AsyncClient, group: dict[str, str], pid: str,
                      name: str) -> dict[str, str]:
    product = {"product_id": pid, "cpno": f"CP{pid}", "name": name}
    await ok(await billing.post("/v1/products", json={
        **product, "account_id": group["account_id"], "family": "ADC"}))
    return product


async def charge(billing: httpx.AsyncClient, group: dict[str, str], product: dict[str, str],
                 month: str, fen: int) -> None:
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"C{product['product_id']}{month}", "account_id": group["account_id"],
        "product_id": product["product_id"], "bill_month": month, "amount_fen": fen}))


async def sweep(credit: httpx.AsyncClient, sweep_id: str, as_of: str) -> None:
    body = await ok(await credit.post("/v1/sweeps", json={"sweep_id": sweep_id, "as_of": as_of}))
    if body.get("held"):  # the mass-suspension guard (a shared test stack may trip it)
        await ok(await credit.post(f"/v1/sweeps/{sweep_id}/confirm", json={}), 200)


async def delivered(credit: httpx.AsyncClient, *products: dict[str, str]) -> None:
    """Wait until each product's suspension warning was delivered (the notifier's receipt,
    heard by credit-control)."""
    for p in products:
        await eventually(lambda p=p: credit_of(credit, p["product_id"]),
                         lambda c: c is not None
                         and c["ladder"]["notice"]["status"] == "delivered",
                         what=f"{p['product_id']}'s suspension warning delivered", timeout=120)


async def credit_of(credit: httpx.AsyncClient, product_id: str) -> dict[str, Any] | None:
    r = await credit.get(f"/v1/products/{product_id}/credit")
    return r.json() if r.status_code == 200 else None


async def own_due(credit: httpx.AsyncClient, product_id: str) -> int | None:
    found = await credit_of(credit, product_id)
    return found["facts"]["product_amount_due_fen"] if found else None


async def texts(notifier: httpx.AsyncClient, product_id: str) -> dict[str, list[str]]:
    """template → texts of the product's messages."""
    got = (await notifier.get("/v1/messages", params={"product_id": product_id})).json()
    by: dict[str, list[str]] = {}
    for m in got:
        by.setdefault(m["template"], []).append(m["text"])
    return by


def bill_notice(p: dict[str, str], yuan: str, pay_by: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品{p['name']}(产品编号:{p['cpno']})目前有{yuan}元"
            f"话费未缴清,请于{pay_by}前及时缴费以免影响您的集团产品服务。谢谢。")


def suspension_warning(p: dict[str, str], yuan: str, by: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品{p['name']}(产品编号:{p['cpno']})尚有{yuan}元"
            f"话费未缴清,请及时缴费。如在{by}前仍未缴清费用,将停用您的集团产品服务。")


def notice_a(p: dict[str, str], yuan: str, on: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品{p['name']}(产品编号:{p['cpno']})截至{on}"
            f"尚有{yuan}元欠费未缴纳,现已正式停用,请安排时间缴清费用以续用您的集团产品。"
            "如有其他事宜可咨询您的客户经理或10086,谢谢!")


def notice_b_with_total(group: dict[str, str], p: dict[str, str], yuan: str,
                        total: str) -> str:
    """The seed's B with the account's total (docs/notifier.md): the manager chases the
    whole account, the product's own amount stays where the seed puts it."""
    return (f"王经理,您好!您看管集团{group['name']}的集团产品{p['name']}(产品编号:{p['cpno']})"
            f"尚有{yuan}元欠费,现已被停用该集团产品服务(该账户合计欠费{total}元),"
            "请及时通知该集团产品联系人缴清欠费。")


async def test_a_billing_cycle_quotes_each_products_own_amount(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier = clients["notifier"]
    y = test_year + 12
    group = await open_account(billing, uid, "cy")
    p1 = await add_product(billing, group, f"P{uid}-1", "集团手机报")
    p2 = await add_product(billing, group, f"P{uid}-2", "企信通")
    p3 = await add_product(billing, group, f"P{uid}-3", "集团V网")
    for p, fen in ((p1, 12_345), (p2, 200_000), (p3, 28_380)):
        await charge(billing, group, p, f"{y}-05", fen)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}05", "bill_month": f"{y}-05",
        "as_of": f"{y}-06-02T09:00:00+08:00"}))
    for p, yuan in ((p1, "123.45"), (p2, "2000.00"), (p3, "283.80")):
        got = await eventually(lambda p=p: texts(notifier, p["product_id"]),
                               lambda t: "bill_notice" in t, what="bill notice", timeout=120)
        assert got["bill_notice"] == [bill_notice(p, yuan, "06月25日")]

    # A partial payment of 500.00 yuan: product 1 (123.45) in full, then product 2.
    paid = await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": group["account_id"], "amount_fen": 50_000,
        "paid_at": f"{y}-06-05T10:00:00+08:00"}))
    assert [(d["product_id"], d["amount_due_fen"]) for d in paid["account"]["products"]] == [
        (p1["product_id"], 0), (p2["product_id"], 162_345), (p3["product_id"], 28_380)]
    await eventually(lambda: own_due(credit, p2["product_id"]), lambda d: d == 162_345,
                     what="credit-control applied the payment", timeout=120)
    assert await own_due(credit, p1["product_id"]) == 0

    for day in ("10", "25"):
        await sweep(credit, f"S{uid}{day}", f"{y}-06-{day}T20:00:00+08:00")
    # Suspended only once the suspension warning reached the contact (docs/rules.md).
    await delivered(credit, p2, p3)
    await sweep(credit, f"S{uid}30", f"{y}-06-30T20:00:00+08:00")
    for p in (p2, p3):
        done = await eventually(lambda p=p: credit_of(credit, p["product_id"]),
                                lambda c: c is not None and c["state"] == "suspended",
                                what="suspended at month end", timeout=120)
        [suspension] = [d for d in done["decisions"] if d["decision"] == "suspend"]
        assert suspension["inputs"]["notice_status"] == "delivered"
        assert suspension["inputs"]["notice_reached_on"] == f"{y}-06-25"
    for p, yuan in ((p2, "1623.45"), (p3, "283.80")):
        got = await eventually(
            lambda p=p: texts(notifier, p["product_id"]),
            lambda t: {"suspension_warning", "suspension_notice_contact",
                       "suspension_notice_manager_account"} <= set(t),
            what="suspension warning and notices", timeout=120)
        assert got["suspension_warning"] == [suspension_warning(p, yuan, f"{y}年06月30日")]
        assert got["suspension_notice_contact"] == [notice_a(p, yuan, f"{y}年06月30日")]
        # The account owes more than this product: the manager's notice adds the total.
        assert got["suspension_notice_manager_account"] == [
            notice_b_with_total(group, p, yuan, "1907.25")]
        # every reminder after the payment quotes what THIS product still owes
        for template, sent in got.items():
            if template != "bill_notice":
                assert all(f"{yuan}元" in text for text in sent), (template, sent)
    # Product 1 was paid by the partial payment: it left the ladder at once (back to normal,
    # so a reminder still waiting for it would be cancelled), no warning, no suspension.
    one = await credit_of(credit, p1["product_id"])
    assert one is not None and one["state"] == "normal"
    assert [d["decision"] for d in one["decisions"]] == ["bill_notice", "arrears_cleared"]
    assert list(await texts(notifier, p1["product_id"])) == ["bill_notice"]


async def test_a_product_added_to_an_owing_account_is_known_and_suspended_with_its_sibling(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier = clients["notifier"]
    y = test_year + 12
    group = await open_account(billing, uid, "nw")
    old = await add_product(billing, group, f"P{uid}-old", "集团手机报")
    await charge(billing, group, old, f"{y}-07", 10_000)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}07", "bill_month": f"{y}-07",
        "as_of": f"{y}-08-02T09:00:00+08:00"}))

    # The account owes; a product is added. credit-control knows it at once, with the
    # account's facts, before any money moves on it.
    new = await add_product(billing, group, f"P{uid}-new", "企信通")
    known = await eventually(lambda: credit_of(credit, new["product_id"]),
                             lambda c: c is not None, what="the new product is known",
                             timeout=60)
    assert known["account_id"] == group["account_id"]
    assert known["facts"]["amount_due_fen"] == 10_000  # the account's debt
    assert known["facts"]["product_amount_due_fen"] == 0  # none of it is the new product's

    # Its first bill comes late, as an adjustment to the closed month.
    await ok(await billing.post("/v1/adjustments", json={
        "adjustment_id": f"ADJ{uid}", "account_id": group["account_id"],
        "product_id": new["product_id"], "bill_month": f"{y}-07", "amount_fen": 5_000,
        "reason": "late bill of a product activated in July"}))
    await eventually(lambda: own_due(credit, new["product_id"]), lambda d: d == 5_000,
                     what="credit-control applied the late bill", timeout=120)

    await sweep(credit, f"S{uid}25", f"{y}-08-25T20:00:00+08:00")
    await delivered(credit, old, new)
    await sweep(credit, f"S{uid}31", f"{y}-08-31T20:00:00+08:00")
    for p, yuan in ((old, "100.00"), (new, "50.00")):
        await eventually(lambda p=p: credit_of(credit, p["product_id"]),
                         lambda c: c is not None and c["state"] == "suspended",
                         what=f"{p['product_id']} suspended at month end", timeout=120)
        got = await eventually(lambda p=p: texts(notifier, p["product_id"]),
                               lambda t: "suspension_notice_contact" in t,
                               what="suspension notice", timeout=120)
        assert got["suspension_notice_contact"] == [notice_a(p, yuan, f"{y}年08月31日")]
        assert got["suspension_warning"] == [suspension_warning(p, yuan, f"{y}年08月31日")]
