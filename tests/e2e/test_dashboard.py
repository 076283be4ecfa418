"""The dashboard in a real browser (Debian's headless Chromium driven by selenium): the
arrears-rate trend against the 0.5% target, the states, and "why was it suspended?" on a
product's timeline. Screenshots are kept in test-artifacts/ (dashboard.png, timeline.png)."""

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from common.testing.stack import stack_required
from credit_control.adapters import tables as t
from credit_control.collections.service_layer import collections
from credit_control.reports.entrypoints.labels import label
from credit_control.service_layer.context import CreditContext

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STAFF_TOKEN = "admin-token"  # a credit-admin's staff token (conftest), not the service token


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        message = ("Debian's chromium and chromium-driver are needed for the dashboard test: "
                   "run scripts/bootstrap.sh")
        if stack_required():
            pytest.fail(message)
        pytest.skip(message)
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1800", "--lang=zh-CN"):
        options.add_argument(arg)
    made = webdriver.Chrome(service=Service(driver), options=options)
    yield made
    made.quit()


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def customer(billing: httpx.AsyncClient, uid: str, tag: str, tier: str) -> str:
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"G{tag}{uid}", "name": f"仪表集团{tag}", "tier": tier,
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": f"A{tag}{uid}", "customer_id": f"G{tag}{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": f"P{tag}{uid}", "account_id": f"A{tag}{uid}", "cpno": f"CP{tag}{uid}",
        "name": "集团手机报", "family": "ADC", "channel": "直销"}))
    return f"A{tag}{uid}"


async def test_dashboard_shows_the_trend_and_a_suspension_timeline(
    clients: dict[str, httpx.AsyncClient], browser: webdriver.Chrome, uid: str, test_year: int,
    db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + 9
    # A high-tier customer billed 10,000 yuan a month, paid in full the next month; a low-tier
    # one billed 500 yuan for October that never pays: suspended at the end of November.
    big, late = await customer(billing, uid, "b", "high"), await customer(billing, uid, "s", "low")
    for month in ("08", "09", "10"):
        await ok(await billing.post("/v1/charges", json={
            "charge_id": f"Cb{month}{uid}", "account_id": big, "product_id": f"Pb{uid}",
            "bill_month": f"{y}-{month}", "amount_fen": 1_000_000}))
        if month == "10":
            await ok(await billing.post("/v1/charges", json={
                "charge_id": f"Cs{uid}", "account_id": late, "product_id": f"Ps{uid}",
                "bill_month": f"{y}-10", "amount_fen": 50_000}))
        following = f"{y}-{int(month) + 1:02d}"
        await ok(await billing.post("/v1/bill-runs", json={
            "bill_run_id": f"BR{month}{uid}", "bill_month": f"{y}-{month}",
            "as_of": f"{following}-02T09:00:00+08:00"}))
        await ok(await billing.post("/v1/payments", json={
            "payment_id": f"PAYb{month}{uid}", "account_id": big, "amount_fen": 1_000_000,
            "paid_at": f"{following}-20T10:00:00+08:00"}))
    await eventually(lambda: credit.get(f"/v1/products/Ps{uid}/credit"),
                     lambda r: r.status_code == 200 and r.json()["decisions"],
                     what="the bill notice")
    for day in (25, 30):  # the suspension warning first: notice before suspension
        await notices_heard(db)
        await ok(await credit.post("/v1/sweeps", json={
            "sweep_id": f"S{y}11{day}{uid}", "as_of": f"{y}-11-{day}T20:00:00+08:00"}))
    explained = await eventually(lambda: credit.get(f"/v1/products/Ps{uid}/credit"),
                                 lambda r: r.json()["state"] == "suspended", what="suspended")
    suspend = next(d for d in explained.json()["decisions"] if d["decision"] == "suspend")

    base = str(credit.base_url).rstrip("/")
    # Signed out, the page asks for a token on its form and then goes where it was asked.
    browser.delete_all_cookies()
    browser.get(f"{base}/dashboard?month={y}-10&as_of={y}-12-31")
    sign_in(browser, STAFF_TOKEN)
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "arrears-trend"))
    assert browser.current_url.endswith(f"/dashboard?month={y}-10&as_of={y}-12-31")
    assert "token" not in browser.current_url
    assert not any(c["name"] == "creditctl_token" and not c.get("httpOnly")
                   for c in browser.get_cookies())
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.ID, "arrears-trend").get_attribute("data-rendered") == "true")
    datasets = browser.execute_script(
        "return window.arrearsTrend.data.datasets.map(d => [d.label, d.data]);")
    (rate_label, rates), (target_label, target) = datasets
    assert "欠费率" in rate_label and "target" in target_label
    assert len(rates) == 12 and rates[:9] == [None] * 9
    # Aug and Sep paid in full; October 500 of 10,500 yuan unpaid = 4.76%.
    assert rates[9:11] == [0, 0] and rates[11] == pytest.approx(500 / 10_500 * 100, abs=1e-3)
    assert target == [0.5] * 12
    assert browser.find_element(By.ID, "arrears-trend").size["height"] > 50
    assert "4.76" in browser.find_element(By.ID, "trend-table").text
    kpis = browser.find_element(By.ID, "kpis").text
    assert "reminder timeliness" in kpis and "emos cross month" in kpis
    assert "missed suspensions" in kpis and "overdue work orders" in kpis
    suspended_row = browser.find_element(By.CSS_SELECTOR, '#states tr[data-state="suspended"]')
    assert int(suspended_row.text.split()[-1]) >= 1
    assert browser.find_element(By.ID, "collections-worklists")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    search = browser.find_element(By.ID, "product-search")
    search.send_keys(f"Ps{uid}")
    search.submit()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "timeline"))
    assert browser.find_element(By.ID, "product-state").text == "已停机 suspended"
    # The suspension once: its state change folded into its row, not repeated as a second.
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tr.decision.what-suspend")
    assert len(rows) == 1
    row = rows[0]
    assert row.get_attribute("data-decision") == suspend["decision_id"]
    assert suspend["rule_id"] in row.text and "停机 suspend" in row.text
    assert f"{label(suspend['state_before'])} → {label(suspend['state_after'])}" in row.text
    moved = f"{label(suspend['state_before'])} → {label(suspend['state_after'])}"
    assert not [r for r in browser.find_elements(By.CSS_SELECTOR, "#timeline tr.state")
                if moved in r.text]
    # Money in yuan: 500 yuan owed, quoted so in the reason; no fen anywhere on the timeline.
    assert "500.00 元" in row.text
    assert " fen" not in browser.find_element(By.ID, "timeline").text
    browser.save_screenshot(str(ARTIFACTS / "timeline.png"))

    # Its account: the product with its state and amount, linked back to its timeline.
    browser.find_element(By.ID, "account-link").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "account-products"))
    product_row = browser.find_element(By.CSS_SELECTOR, f'tr[data-product="Ps{uid}"]')
    assert "已停机 suspended" in product_row.text and "500.00" in product_row.text
    assert "500.00 元" in browser.find_element(By.ID, "account-amount-due").text

    # Sign out: the cookie is gone and the dashboard asks for a token again.
    browser.find_element(By.ID, "signout").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "signin-form"))
    browser.get(f"{base}/dashboard")
    assert "Sign in" in browser.find_element(By.TAG_NAME, "h1").text
    assert not browser.find_elements(By.ID, "signout")
    # A wrong token is refused (401, the form again), and lets nothing in.
    sign_in(browser, "not-a-token")
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "signin-refused"))
    assert not browser.find_elements(By.ID, "arrears-trend")
    assert not any(c["name"] == "creditctl_token" for c in browser.get_cookies())


def sign_in(browser: webdriver.Chrome, token: str) -> None:
    field = browser.find_element(By.ID, "signin-token")
    field.send_keys(token)
    browser.find_element(By.ID, "signin-submit").click()


async def test_dashboard_masks_personal_data_for_a_viewer_and_lists_collections(
    clients: dict[str, httpx.AsyncClient],
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """An ops-viewer's dashboard: the collections call list is there, with the account
    manager's name masked and no phone number or contact in full; a credit-admin sees the
    name. The CSV downloads work with the page's sign-in (no bearer header)."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = test_year + 9  # months 05-06: the trend test above uses 08-10
    manager, contact = f"钱经理{uid}", f"孙联系人{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"Gm{uid}", "name": f"仪表集团m{uid}", "tier": "mid",
        "account_manager": {"name": manager, "phone": "13900139077"},
        "contacts": [{"name": contact, "phone": "13800138077"}]}))
    await ok(await billing.post("/v1/accounts", json={"account_id": f"Am{uid}",
                                                "customer_id": f"Gm{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": f"Pm{uid}", "account_id": f"Am{uid}", "cpno": f"CPm{uid}",
        "name": "集团手机报", "family": "ADC"}))
    # Far more than any other test's arrears, so it is among the biggest entries shown.
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"Cm{uid}", "account_id": f"Am{uid}", "product_id": f"Pm{uid}",
        "bill_month": f"{y}-05", "amount_fen": 9_000_000_000}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR05m{uid}", "bill_month": f"{y}-05",
        "as_of": f"{y}-06-02T09:00:00+08:00"}))
    # The running service's clock is the machine's, years before these bill months: the
    # refresh (which may not be stamped after its clock) runs in process on a clock of the story.
    at = datetime.fromisoformat(f"{y}-06-20T12:00:00+08:00")
    local = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                          FixedClock(at))

    async def listed() -> list[dict[str, Any]]:
        await collections.refresh(local, at)
        return await collections.list_entries(local, None, None, None, at, f"Am{uid}", 10)

    await eventually(listed, lambda found: [e["kind"] for e in found] == ["call"],
                     what="the account on the call list")

    base = str(credit.base_url).rstrip("/")
    page = f"{base}/dashboard?month={y}-05&as_of={y}-06-20"
    async with httpx.AsyncClient(timeout=90) as browser:
        viewer = await browser.get(page, headers={"Authorization": "Bearer viewer-token"})
        admin = await browser.get(page, headers={"Authorization": "Bearer admin-token"})
        anonymous = await browser.get(f"{base}/dashboard/reports/arrears.csv",
                                      params={"month": f"{y}-05"})
        signed_in = await browser.get(f"{base}/dashboard?token=viewer-token")  # sets the cookie
        download = await browser.get(f"{base}/dashboard/reports/arrears.csv",
                                     params={"month": f"{y}-05", "as_of": f"{y}-06-20"})
    assert viewer.status_code == admin.status_code == 200
    assert 'id="collections-worklists"' in viewer.text and f"Am{uid}" in viewer.text
    assert "90000000.00" in viewer.text  # the arrears, in yuan
    assert manager not in viewer.text and manager[0] + "*" * (len(manager) - 1) in viewer.text
    for secret in ("13900139077", "13800138077", contact):
        assert secret not in viewer.text
    assert manager in admin.text
    assert signed_in.status_code == 303
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/csv")
    assert "receivables_fen" in download.text
    assert anonymous.status_code == 401
