"""Several months of one account through the four running services, the SMS each step sends
checked to the cent (exploratory QA of the deposit, deductions and the manager's notices).

Year test_year + 30 is this module's (one year per test: + 30, + 31, ...): a bill run closes
a month for every account and a sweep acts on every product, so each test takes its own."""

import calendar
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def open_account(billing: httpx.AsyncClient, uid: str, key: str,
                       tier: str) -> dict[str, str]:
    group = {"customer_id": f"G{key}{uid}", "name": f"某某科技有限公司{key}{uid}",
             "account_id": f"A{key}{uid}"}
    await ok(await billing.post("/v1/customers", json={
        "customer_id": group["customer_id"], "name": group["name"], "tier": tier,
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": group["account_id"], "customer_id": group["customer_id"]}))
    return group


async def add_product(billing: httpx.AsyncClient, group: dict[str, str], pid: str, name: str,
                      month: str, fen: int) -> dict[str, str]:
    """An ADC product charged `fen` in `month`."""
    product = {"product_id": pid, "cpno": f"CP{pid}", "name": name}
    await ok(await billing.post("/v1/products", json={
        **product, "account_id": group["account_id"], "family": "ADC"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"C{pid}{month}", "account_id": group["account_id"], "product_id": pid,
        "bill_month": month, "amount_fen": fen}))
    return product


async def sweep(credit: httpx.AsyncClient, sweep_id: str, as_of: str) -> None:
    body = await ok(await credit.post("/v1/sweeps", json={"sweep_id": sweep_id, "as_of": as_of}))
    if body.get("held"):  # the mass-suspension guard (a shared test stack may trip it)
        await ok(await credit.post(f"/v1/sweeps/{sweep_id}/confirm", json={}), 200)


async def credit_of(credit: httpx.AsyncClient, product_id: str) -> dict[str, Any] | None:
    r = await credit.get(f"/v1/products/{product_id}/credit")
    return r.json() if r.status_code == 200 else None


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    return list((await notifier.get("/v1/messages", params={"product_id": product_id})).json())


def deduction_notice(p: dict[str, str], on: str, yuan: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品{p['name']}(产品编号:{p['cpno']})"
            f"的欠费已根据约定于{on}从您的预存款中划扣{yuan}元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!")


async def deduct_on_the_15th(billing: httpx.AsyncClient, credit: httpx.AsyncClient,
                             db: AsyncEngine, account_id: str, uid: str, y: int,
                             deposit_fen: int) -> dict[str, int]:
    """Once credit-control has the deposit (it rides on the balance event), the sweep of
    y-03-15 (arrears month 2 of January); when billing has collected it all: what each
    product owes then."""
    async def deposit_seen() -> int | None:
        async with db.connect() as conn:
            held: int | None = await conn.scalar(text(
                "SELECT deposit_fen FROM credit.account_positions WHERE account_id = :a"),
                {"a": account_id})
            return held
    await eventually(deposit_seen, lambda d: d == deposit_fen, what="the deposit", timeout=120)
    await sweep(credit, f"S{uid}15", f"{y}-03-15T20:00:00+08:00")
    account = await eventually(
        lambda: billing.get(f"/v1/accounts/{account_id}"),
        lambda r: r.json()["deposit_fen"] == 0, what="billing collected the deposit",
        timeout=120)
    return {p["product_id"]: p["amount_due_fen"] for p in account.json()["products"]}


async def test_products_of_one_account_share_its_deposit_in_their_deduction_notices(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    """A deposit of 20.00 yuan and two ADC products owing 100.00 and 50.00 (mid tier): the
    deduction of the 15th of arrears month 2 takes the 20.00 once. Each product's deduction
    asked for the whole deposit, so billing collected 20.00 and the contact was told of two
    deductions of 20.00 each (40.00, twice what was taken), one of them for a product whose
    own debt did not move."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier = clients["notifier"]
    y = test_year + 30
    group = await open_account(billing, uid, "dd", "mid")
    p1 = await add_product(billing, group, f"P{uid}-1", "集团手机报", f"{y}-01", 10_000)
    p2 = await add_product(billing, group, f"P{uid}-2", "集团V网", f"{y}-01", 5_000)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}01", "bill_month": f"{y}-01",
        "as_of": f"{y}-02-02T09:00:00+08:00"}))
    await ok(await billing.post("/v1/deposits", json={
        "deposit_id": f"D{uid}", "account_id": group["account_id"], "amount_fen": 2_000,
        "received_at": f"{y}-02-03T09:00:00+08:00"}))
    await eventually(lambda: credit_of(credit, p2["product_id"]),
                     lambda c: c is not None and c["facts"]["amount_due_fen"] == 15_000,
                     what="credit-control knows the account", timeout=120)
    owed = await deduct_on_the_15th(billing, credit, db, group["account_id"], uid, y, 2_000)
    assert owed == {p1["product_id"]: 8_000, p2["product_id"]: 5_000}

    asked: dict[str, int] = {}
    for p in (p1, p2):
        found = await credit_of(credit, p["product_id"])
        assert found is not None
        for d in found["decisions"]:
            if d["decision"] == "deduction":
                asked[p["product_id"]] = d["amount_fen"]
    # what was asked for adds up to the deposit, and only where the money went
    assert asked == {p1["product_id"]: 2_000}

    sent = await eventually(lambda: messages(notifier, p1["product_id"]),
                            lambda ms: any(m["template"] == "deduction_notice" for m in ms),
                            what="the deduction notice", timeout=120)
    assert [m["text"] for m in sent if m["template"] == "deduction_notice"] == [
        deduction_notice(p1, f"{y}年03月15日", "20.00")]
    # Warning 2's day (arrears month 2), its first warning: sent with the first warning's
    # text (no "此为第二次" without a first: ladder.reminder_level).
    other = await eventually(lambda: messages(notifier, p2["product_id"]),
                             lambda ms: any(m["template"] == "warning_1" for m in ms),
                             what="product 2's warning", timeout=120)
    assert [m for m in other if m["template"] == "deduction_notice"] == []


def bill_notice(p: dict[str, str], yuan: str, pay_by: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品{p['name']}(产品编号:{p['cpno']})目前有{yuan}元"
            f"话费未缴清,请于{pay_by}前及时缴费以免影响您的集团产品服务。谢谢。")


async def test_a_held_reminder_quotes_what_the_product_owes_after_a_partial_payment(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    """A bill notice decided at 22:30 is held by the quiet hours (21:00-08:00). At 23:10 the
    customer pays 100.00 of the 123.45 yuan: the product still owes 23.45, so the notice is
    still due, but it must say 23.45 when it leaves, not 123.45."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier = clients["notifier"]
    y = test_year + 31
    group = await open_account(billing, uid, "hp", "low")
    p1 = await add_product(billing, group, f"P{uid}-1", "集团手机报", f"{y}-03", 12_345)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}03", "bill_month": f"{y}-03",
        "as_of": f"{y}-04-01T22:30:00+08:00"}))
    held = await eventually(lambda: messages(notifier, p1["product_id"]),
                            lambda ms: any(m["template"] == "bill_notice" for m in ms),
                            what="the bill notice", timeout=120)
    assert [m["status"] for m in held] == ["held"]
    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": group["account_id"], "amount_fen": 10_000,
        "paid_at": f"{y}-04-01T23:10:00+08:00"}))
    await eventually(lambda: credit_of(credit, p1["product_id"]),
                     lambda c: c is not None and c["facts"]["product_amount_due_fen"] == 2_345,
                     what="credit-control applied the payment", timeout=120)
    waiting = [m for m in await messages(notifier, p1["product_id"])
               if m["status"] in ("held", "pending")]
    assert [m["text"] for m in waiting] == [bill_notice(p1, "23.45", "04月25日")]


async def test_the_pre_cancellation_worklist_gives_each_line_its_own_amount(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    """Two products of one account, 100.00 and 50.00 yuan, suspended at the end of February
    and pre-cancelled 90 days later: the worklist staff cancel lines from showed 150.00 (the
    account's total) on each line, 300.00 if summed. Each line owes its own amount; the
    account's total is there beside it."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + 32
    group = await open_account(billing, uid, "pc", "low")
    p1 = await add_product(billing, group, f"P{uid}-1", "集团手机报", f"{y}-01", 10_000)
    p2 = await add_product(billing, group, f"P{uid}-2", "集团V网", f"{y}-01", 5_000)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}01", "bill_month": f"{y}-01",
        "as_of": f"{y}-02-02T09:00:00+08:00"}))
    await eventually(lambda: credit_of(credit, p2["product_id"]),
                     lambda c: c is not None and c["facts"]["amount_due_fen"] == 15_000,
                     what="credit-control knows the account", timeout=120)
    await sweep(credit, f"S{uid}25", f"{y}-02-25T20:00:00+08:00")
    for p in (p1, p2):
        await eventually(lambda p=p: credit_of(credit, p["product_id"]),
                         lambda c: c is not None
                         and c["ladder"]["notice"]["status"] == "delivered",
                         what="the suspension warning delivered", timeout=120)
    # February's last day (the suspension), then the retention's 90 days on: the test's year
    # may be a leap year (2232 was: 02-28 suspended nothing).
    last = date(y, 2, calendar.monthrange(y, 2)[1])
    await sweep(credit, f"S{uid}28", f"{last.isoformat()}T20:00:00+08:00")
    retained = last + timedelta(days=91)
    await sweep(credit, f"S{uid}0530", f"{retained.isoformat()}T20:00:00+08:00")
    for p in (p1, p2):
        await eventually(lambda p=p: credit_of(credit, p["product_id"]),
                         lambda c: c is not None and c["state"] == "pre_cancel",
                         what="pre-cancelled after 90 days", timeout=120)
    listed = await ok(await credit.get("/v1/pre-cancellations", params={
        "account_id": group["account_id"]}), 200)
    assert {(p["product_id"], p["amount_due_fen"], p["account_amount_due_fen"])
            for p in listed["pre_cancelled"]} == {
        (p1["product_id"], 10_000, 15_000), (p2["product_id"], 5_000, 15_000)}


async def test_a_deduction_notice_names_the_product_whose_bill_the_money_paid(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    """A deposit of 20.00 yuan; product 1 owes February's 100.00, product 2 January's 50.00
    (mid tier). The deduction of the 15th of arrears month 2 is asked for product 1 (first in
    id order), but billing pays the account's oldest bill first: product 2's January. The
    notice tells product 2 of the 20.00 that paid its arrears, and product 1 of nothing: the
    notice says billing's fact (credit.deduction_collected), not the decision's ask.
    Year test_year + 36 (test_whatif.py takes + 33 to + 35)."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier = clients["notifier"]
    y = test_year + 36
    group = await open_account(billing, uid, "dp", "mid")
    p2 = await add_product(billing, group, f"P{uid}-2", "集团V网", f"{y}-01", 5_000)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}01", "bill_month": f"{y}-01",
        "as_of": f"{y}-02-02T09:00:00+08:00"}))
    p1 = await add_product(billing, group, f"P{uid}-1", "集团手机报", f"{y}-02", 10_000)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}02", "bill_month": f"{y}-02",
        "as_of": f"{y}-03-02T09:00:00+08:00"}))
    await ok(await billing.post("/v1/deposits", json={
        "deposit_id": f"D{uid}", "account_id": group["account_id"], "amount_fen": 2_000,
        "received_at": f"{y}-03-03T09:00:00+08:00"}))
    owed = await deduct_on_the_15th(billing, credit, db, group["account_id"], uid, y, 2_000)
    assert owed == {p1["product_id"]: 10_000, p2["product_id"]: 3_000}
    asked = [(p["product_id"], d["amount_fen"]) for p in (p1, p2)
             for d in ((await credit_of(credit, p["product_id"])) or {}).get("decisions", [])
             if d["decision"] == "deduction"]
    assert asked == [(p1["product_id"], 2_000)]

    told = await eventually(lambda: messages(notifier, p2["product_id"]),
                            lambda ms: any(m["template"] == "deduction_notice" for m in ms),
                            what="product 2's deduction notice", timeout=120)
    assert [m["text"] for m in told if m["template"] == "deduction_notice"] == [
        deduction_notice(p2, f"{y}年03月15日", "20.00")]
    assert [m for m in await messages(notifier, p1["product_id"])
            if m["template"] == "deduction_notice"] == []
