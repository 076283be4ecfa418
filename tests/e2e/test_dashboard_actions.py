"""The dashboard's actions in a real browser (headless Chromium), per role (issue 20): each
done by a role that may, from the page, with its confirmation step where it is irreversible;
absent for a role that may not, and refused (403, nothing changed) when that role forges the
POST, or when a form carries no token of the session. Screenshots in test-artifacts/."""

import calendar
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.notices import notices_heard
from common.testing.polling import eventually
from credit_control.reports.entrypoints import csrf
from tests.e2e.test_dashboard import ARTIFACTS, ok, sign_in
from tests.e2e.test_dashboard import browser as browser  # the fixture, re-exported

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

YEAR_OFFSET = 17  # a year of its own: other tests use test_year + 0..14


async def owing_product(billing: httpx.AsyncClient, uid: str, tag: str, family: str,
                        y: int, month: int, vendor: str | None = None) -> tuple[str, str]:
    """A low-tier customer whose product owes 300 yuan for `month`, never paid."""
    customer, account, product = f"GA{tag}{uid}", f"AA{tag}{uid}", f"PA{tag}{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": customer, "name": f"动作集团{tag}", "tier": "low",
        "account_manager": {"name": "赵经理", "phone": "13900139011"},
        "contacts": [{"name": "周联系人", "phone": "13800138011"}]}))
    await ok(await billing.post("/v1/accounts", json={"account_id": account,
                                                      "customer_id": customer}))
    await ok(await billing.post("/v1/products", json={
        "product_id": product, "account_id": account, "cpno": f"CP{tag}{uid}",
        "name": "集团彩铃", "family": family, **({"vendor": vendor} if vendor else {})}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"CA{tag}{uid}", "account_id": account, "product_id": product,
        "bill_month": f"{y}-{month:02d}", "amount_fen": 30_000}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRA{tag}{uid}", "bill_month": f"{y}-{month:02d}",
        "as_of": f"{y}-{month + 1:02d}-02T09:00:00+08:00"}))
    return customer, product


async def sweep(credit: httpx.AsyncClient, db: AsyncEngine, sweep_id: str, as_of: str,
                confirm_held: bool = True) -> dict[str, Any]:
    await notices_heard(db)
    swept: dict[str, Any] = await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": sweep_id, "as_of": as_of}))
    if swept.get("held") and confirm_held:
        # Earlier tests' unpaid products fall due in this year too: the guard may hold it.
        await ok(await credit.post(f"/v1/sweeps/{sweep_id}/confirm", json={}), 200)
    return swept


async def suspend_sweeps(credit: httpx.AsyncClient, db: AsyncEngine, uid: str, tag: str,
                         product: str, y: int, month: int, hold_last: bool = False
                         ) -> dict[str, Any]:
    """The 25th's sweep (the suspension warning), then the month end's (the suspension)."""
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.status_code == 200 and r.json()["decisions"],
                     what="the bill notice")
    due = month + 1
    await sweep(credit, db, f"SA{tag}1{uid}", f"{y}-{due:02d}-25T20:00:00+08:00")
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.json()["ladder"]["notice"]["status"] == "delivered",
                     what="the suspension warning delivered", timeout=120)
    end = calendar.monthrange(y, due)[1]
    return await sweep(credit, db, f"SA{tag}2{uid}", f"{y}-{due:02d}-{end}T20:00:00+08:00",
                       confirm_held=not hold_last)


def as_role(browser: webdriver.Chrome, base: str, token: str, page: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{base}{page}")
    sign_in(browser, token)
    WebDriverWait(browser, 30).until(lambda b: not b.find_elements(By.ID, "signin-form"))


def outcome(browser: webdriver.Chrome) -> tuple[bool, str]:
    found = WebDriverWait(browser, 90).until(lambda b: b.find_elements(By.ID, "outcome"))
    return found[0].get_attribute("data-ok") == "true", found[0].text


def confirm_page(browser: webdriver.Chrome) -> None:
    """An irreversible action asks first; the page's own button does it."""
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "confirm-yes"))
    assert browser.find_element(By.ID, "confirm-what").text
    browser.find_element(By.ID, "confirm-yes").click()


async def forged(base: str, token: str, path: str, form: dict[str, str],
                 with_token: bool = True) -> httpx.Response:
    """A POST made without the page: the session's cookie, and (if asked) a valid form
    token of that session, as a script of the signed-in caller could make it."""
    data = {**form, "confirmed": "yes"}
    if with_token:
        data[csrf.FIELD] = csrf.session_token(token)
    async with httpx.AsyncClient(base_url=base, timeout=90,
                                 cookies={"creditctl_token": token}) as web:
        return await web.post(path, data=data)


async def test_work_orders_are_taken_and_closed_by_an_operator_not_by_a_viewer(
    clients: dict[str, httpx.AsyncClient], browser: webdriver.Chrome, uid: str,
    test_year: int, db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + YEAR_OFFSET
    _, product = await owing_product(billing, uid, "w", "WORK_ORDER", y, 2)
    await suspend_sweeps(credit, db, uid, "w", product, y, 2)
    [order] = await ok(await credit.get("/v1/work-orders", params={"product_id": product}), 200)
    wo = order["work_order_id"]
    base = str(credit.base_url).rstrip("/")
    page = f"/dashboard/work-orders/{wo}"

    # A viewer sees the order and no button; forging the POST is refused, nothing changes.
    as_role(browser, base, "viewer-token", page)
    assert wo in browser.find_element(By.TAG_NAME, "h1").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#order-actions form")
    for action in ("take", "done", "fail"):
        refused = await forged(base, "viewer-token", f"/dashboard/actions/work-orders/{wo}/"
                               f"{action}", {"note": "伪造 forged"})
        assert refused.status_code == 403, refused.text
        assert "无权操作" in refused.text
    # Without the session's form token even an operator is refused.
    no_token = await forged(base, "operator-token", f"/dashboard/actions/work-orders/{wo}/take",
                            {}, with_token=False)
    assert no_token.status_code == 403 and "表单无效" in no_token.text
    after = await ok(await credit.get(f"/v1/work-orders/{wo}"), 200)
    assert (after["status"], after["assignee"]) == ("created", None)

    # An operator finds it on the front page's list by its product (the list shows the 50
    # most overdue of all; other tests' orders fall due sooner), takes it there and closes
    # it as done on its page.
    as_role(browser, base, "operator-token", "/dashboard")
    browser.find_element(By.ID, "orders-for").send_keys(product)
    browser.find_element(By.CSS_SELECTOR, "#orders-for-form button").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "orders-for-all"))
    assert browser.find_element(By.ID, "work-orders-count").text.startswith(
        f"{product} 的未结 1 张 open")
    row = browser.find_element(By.CSS_SELECTOR, f'#work-orders tr[data-work-order="{wo}"]')
    row.find_element(By.CSS_SELECTOR, "button.take-work-order").click()
    done, text = outcome(browser)
    assert done and "已接单" in text, text
    taken = await ok(await credit.get(f"/v1/work-orders/{wo}"), 200)
    assert (taken["status"], taken["assignee"]) == ("assigned", "wang.fang")
    browser.get(f"{base}{page}")
    # A note is required: the browser's own check, and the use case's 422 behind it.
    empty = await forged(base, "operator-token", f"/dashboard/actions/work-orders/{wo}/done",
                         {"note": ""})
    assert empty.status_code == 422 and "输入有误" in empty.text
    browser.find_element(By.ID, "done-note").send_keys("已在BOSS手工停机 suspended by hand")
    browser.find_element(By.ID, "done").click()
    confirm_page(browser)
    done, text = outcome(browser)
    assert done and "已办结" in text, text
    browser.save_screenshot(str(ARTIFACTS / "work-order-done.png"))
    closed = await ok(await credit.get(f"/v1/work-orders/{wo}"), 200)
    assert closed["status"] == "done"
    assert closed["steps"][-1]["by"] == "wang.fang"
    state = await ok(await credit.get(f"/v1/products/{product}/credit"), 200)
    assert state["state"] == "suspended"
    # Closed: no more buttons, and closing it again is refused with the reason (409).
    browser.get(f"{base}{page}")
    assert not browser.find_elements(By.ID, "order-actions")
    again = await forged(base, "operator-token", f"/dashboard/actions/work-orders/{wo}/fail",
                         {"note": "再次 again"})
    assert again.status_code == 409 and "未执行" in again.text


async def test_exemptions_are_added_and_ended_by_a_credit_admin_not_by_an_operator(
    clients: dict[str, httpx.AsyncClient], browser: webdriver.Chrome, uid: str,
    test_year: int,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + YEAR_OFFSET
    customer, _ = await owing_product(billing, uid, "x", "ADC", y, 4)
    base = str(credit.base_url).rstrip("/")
    page = f"/dashboard/exemptions?customer_id={customer}"

    async def in_force() -> list[dict[str, Any]]:
        now = (await ok(await credit.get("/v1/exemptions", params={"customer_id": customer}),
                        200))
        return [e for e in now if e["removed_at"] is None]

    # An operator: the list, no form, no end button; a forged add is refused.
    as_role(browser, base, "operator-token", page)
    assert browser.find_elements(By.ID, "exemptions")
    assert not browser.find_elements(By.ID, "add-exemption")
    refused = await forged(base, "operator-token", "/dashboard/actions/exemptions", {
        "exemption_id": f"EXF{uid}", "customer_id": customer, "kind": "red_list",
        "reason": "伪造", "approver": "nobody"})
    assert refused.status_code == 403 and "无权操作" in refused.text
    assert await in_force() == []

    # A credit-admin adds a red-list entry on the page.
    as_role(browser, base, "admin-token", page)
    browser.find_element(By.ID, "ex-reason").send_keys("重要集团客户 key account")
    browser.find_element(By.ID, "ex-approver").send_keys("刘总")
    browser.find_element(By.ID, "ex-add").click()
    done, text = outcome(browser)
    assert done and "红名单" in text and customer in text, text
    [entry] = await in_force()
    assert (entry["kind"], entry["created_by"], entry["approver"]) == (
        "red_list", "zhang.wei", "刘总")
    # An emergency no-suspension without its end is refused (422), nothing stored.
    browser.get(f"{base}{page}")
    Select(browser.find_element(By.ID, "ex-kind")).select_by_value("emergency")
    browser.find_element(By.ID, "ex-reason").send_keys("抢险 emergency")
    browser.find_element(By.ID, "ex-approver").send_keys("刘总")
    browser.find_element(By.ID, "ex-add").click()
    done, text = outcome(browser)
    assert not done and "未执行" in text and "until" in text, text
    assert [e["exemption_id"] for e in await in_force()] == [entry["exemption_id"]]

    # The operator may not end it either; the admin ends it, after confirming.
    ending = f"/dashboard/actions/exemptions/{entry['exemption_id']}/end"
    assert (await forged(base, "operator-token", ending, {})).status_code == 403
    assert len(await in_force()) == 1
    browser.get(f"{base}{page}")
    row = browser.find_element(By.CSS_SELECTOR,
                               f'tr[data-exemption="{entry["exemption_id"]}"]')
    row.find_element(By.CSS_SELECTOR, "button.end-exemption").click()
    confirm_page(browser)
    done, text = outcome(browser)
    assert done and "已结束" in text, text
    assert await in_force() == []
    browser.save_screenshot(str(ARTIFACTS / "exemption-ended.png"))


async def test_a_held_sweep_is_confirmed_and_a_preview_approved_by_a_credit_admin_only(
    clients: dict[str, httpx.AsyncClient], browser: webdriver.Chrome, uid: str,
    test_year: int, db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + YEAR_OFFSET
    # A CRM-MAS product: its suspension goes BOSS → EMOS → the industry gateway.
    _, product = await owing_product(billing, uid, "h", "MAS", y, 6, vendor="huawei")
    guard = await ok(await credit.get("/v1/guard"), 200)
    # The guard set to hold any sweep that suspends anything; put back afterwards.
    await ok(await credit.put("/v1/guard", json={"enabled": True, "max_share": 1e-9,
                                                 "min_active": 0}), 200)
    try:
        swept = await suspend_sweeps(credit, db, uid, "h", product, y, 6, hold_last=True)
    finally:
        await ok(await credit.put("/v1/guard", json={
            k: guard[k] for k in ("enabled", "max_share", "min_active")}), 200)
    held = swept["sweep_id"]
    assert swept.get("held"), swept
    base = str(credit.base_url).rstrip("/")

    async def hold_status() -> str:
        holds = await ok(await credit.get("/v1/sweeps/holds"), 200)
        return str(next(h["status"] for h in holds if h["sweep_id"] == held))

    # An operator sees the held sweep, no confirm button; a forged confirmation is refused.
    as_role(browser, base, "operator-token", "/dashboard/sweeps/holds")
    row = browser.find_element(By.CSS_SELECTOR, f'#holds tr[data-sweep="{held}"]')
    assert not row.find_elements(By.CSS_SELECTOR, "button.confirm-sweep")
    refused = await forged(base, "operator-token", f"/dashboard/actions/sweeps/{held}/confirm",
                           {})
    assert refused.status_code == 403 and "无权操作" in refused.text
    assert await hold_status() == "held"

    # The credit-admin confirms it (with a confirmation step): the suspension is made.
    as_role(browser, base, "admin-token", "/dashboard/sweeps/holds")
    row = browser.find_element(By.CSS_SELECTOR, f'#holds tr[data-sweep="{held}"]')
    row.find_element(By.CSS_SELECTOR, "button.confirm-sweep").click()
    confirm_page(browser)
    done, text = outcome(browser)
    assert done and "已确认停机批次" in text, text
    assert await hold_status() == "confirmed"
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.json()["state"] == "suspended",
                     what="the confirmed suspension, made by the chain", timeout=120)
    # Its timeline: the suspension warning's SMS and the chain's steps of the suspension
    # (BOSS, EMOS, the gateway), in 北京时间, among the decisions.
    browser.get(f"{base}/dashboard/products/{product}")
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "timeline"))
    chain_rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tr.chain")
    shown = [r.text for r in chain_rows]
    for stage in ("BOSS 已处理", "EMOS 已派单至网关"):
        assert [t for t in shown if stage in t and "停机 suspend" in t], shown
    finished = [r for r in chain_rows if "chain finished" in r.text]
    assert len(finished) == 1 and "已生效 applied" in finished[0].text, shown
    assert all("北京时间" in r.text for r in chain_rows)
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline tr.sms")
    browser.save_screenshot(str(ARTIFACTS / "timeline-chain.png"))
    again = await forged(base, "admin-token", f"/dashboard/actions/sweeps/{held}/confirm", {})
    assert again.status_code == 409 and "未执行" in again.text

    # A sweep preview: the admin approves what it shows; an operator has no button.
    moment = f"{y}-09-01T20:00"
    browser.get(f"{base}/dashboard/sweeps/preview?as_of={moment}:00%2B08:00")
    WebDriverWait(browser, 300).until(lambda b: b.find_elements(By.ID, "fingerprint"))
    browser.find_element(By.ID, "approve").click()
    confirm_page(browser)
    done, text = outcome(browser)
    assert done and "已批准预览" in text, text
    audit = await ok(await credit.get("/v1/audit", params={"entity": "preview_approval"}), 200)
    assert audit and audit[0]["actor"] == "zhang.wei"
    as_role(browser, base, "operator-token", "/dashboard/sweeps/preview")
    assert not browser.find_elements(By.ID, "approve")
    refused = await forged(base, "operator-token", "/dashboard/actions/sweeps/preview/approve",
                           {"as_of": f"{moment}:00+08:00", "fingerprint": "0" * 64})
    assert refused.status_code == 403


async def test_signing_in_needs_the_forms_own_token(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    """Another site's form cannot sign a browser in (under its own token): the sign-in POST
    needs the token its form and cookie carry."""
    base = str(clients["credit-control"].base_url).rstrip("/")
    async with httpx.AsyncClient(base_url=base, timeout=90) as web:
        foreign = await web.post("/dashboard/signin", data={"token": "admin-token"})
        assert foreign.status_code == 403 and "creditctl_token" not in foreign.cookies
        form = await web.get("/dashboard/signin")
        nonce = form.cookies[csrf.SIGNIN_COOKIE]
        assert f'value="{nonce}"' in form.text
        signed = await web.post("/dashboard/signin", data={"token": "admin-token",
                                                           csrf.FIELD: nonce})
        assert signed.status_code == 303 and signed.cookies.get("creditctl_token")
