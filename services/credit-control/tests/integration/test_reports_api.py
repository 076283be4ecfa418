"""Reports against a hand calculation, with the data loaded through billing's API and the
figures read back through credit-control's `/v1/reports/...` (which asks billing, the notifier
and the gateway over HTTP). Each test takes a bill-month year no other test uses."""

import csv
import io
from datetime import date
from typing import Any

import httpx
import pytest

from common.testing.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# Seed 000, 效果检查 (fen): receivables and arrears of Sep, Oct, Nov 2011 → 0.39 / 0.36 / 0.38 %.
SEED_000 = (("09", 1_713_618_718, 6_683_113), ("10", 1_762_938_333, 6_346_578),
            ("11", 1_408_456_579, 5_352_135))
MAS_MONTHLY = 20_000_000  # the MAS customer's bill each month, paid in full


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


class Billing:
    """Builds customers, bills and payments through billing-events' API."""

    def __init__(self, client: httpx.AsyncClient, uid: str) -> None:
        self.client, self.uid = client, uid

    async def customer(self, tag: str, tier: str, region: str | None = None) -> str:
        cid = f"G{tag}{self.uid}"
        await ok(await self.client.post("/v1/customers", json={
            "customer_id": cid, "name": f"集团{tag}", "tier": tier,
            "account_manager": {"name": "客户经理", "phone": "13900000000"},
            "contacts": [{"name": "联系人", "phone": "13800000000"}], "region": region}))
        await ok(await self.client.post("/v1/accounts", json={
            "account_id": f"A{tag}{self.uid}", "customer_id": cid}))
        return f"A{tag}{self.uid}"

    async def product(self, tag: str, account: str, family: str, channel: str,
                      vendor: str | None = None) -> str:
        pid = f"{self.uid}-P{tag}"
        await ok(await self.client.post("/v1/products", json={
            "product_id": pid, "account_id": account, "cpno": f"CP{tag}{self.uid}",
            "name": f"产品{tag}", "family": family, "vendor": vendor, "channel": channel}))
        return pid

    async def charge(self, account: str, product: str, month: str, fen: int) -> None:
        await ok(await self.client.post("/v1/charges", json={
            "charge_id": f"C{product}{month}", "account_id": account, "product_id": product,
            "bill_month": month, "amount_fen": fen}))

    async def bill_run(self, month: str, as_of: str) -> None:
        await ok(await self.client.post("/v1/bill-runs", json={
            "bill_run_id": f"BR{month}{self.uid}", "bill_month": month, "as_of": as_of}))

    async def pay(self, pid: str, account: str, fen: int, paid_at: str) -> None:
        await ok(await self.client.post("/v1/payments", json={
            "payment_id": f"{pid}{self.uid}", "account_id": account, "amount_fen": fen,
            "paid_at": paid_at}))


def next_month(year: int, month: str) -> str:
    m = int(month)
    return f"{year + 1}-01" if m == 12 else f"{year}-{m + 1:02d}"


async def test_seed_000_sep_to_nov_figures_come_out_of_the_report(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    billing, credit, y = Billing(clients["billing-events"], uid), clients["credit-control"], \
        test_year + 7
    # High-tier ADC pays in full; mid-tier MAS pays in full; the low-tier work-order
    # product never pays: each month's arrears are exactly its bill (seed 000: the
    # work-order-flow products carried the arrears).
    adc_acc = await billing.customer("h", "high")
    adc = await billing.product("h", adc_acc, "ADC", "直销")
    mas_acc = await billing.customer("m", "mid")
    mas = await billing.product("m", mas_acc, "MAS", "代理商", "huawei")
    wo_acc = await billing.customer("w", "low")
    wo = await billing.product("w", wo_acc, "WORK_ORDER", "直销")
    for month, receivables, arrears in SEED_000:
        bm = f"{y}-{month}"
        await billing.charge(adc_acc, adc, bm, receivables - arrears - MAS_MONTHLY)
        await billing.charge(mas_acc, mas, bm, MAS_MONTHLY)
        await billing.charge(wo_acc, wo, bm, arrears)
        await billing.bill_run(bm, f"{next_month(y, month)}-02T09:00:00+08:00")
        await billing.pay(f"ph{month}", adc_acc, receivables - arrears - MAS_MONTHLY,
                          f"{next_month(y, month)}-20T10:00:00+08:00")
        await billing.pay(f"pm{month}", mas_acc, MAS_MONTHLY,
                          f"{next_month(y, month)}-21T10:00:00+08:00")

    report = await ok(await credit.get("/v1/reports/arrears", params={
        "month": f"{y}-09", "through": f"{y}-11", "as_of": f"{y}-12-31"}), 200)
    assert [(m["bill_month"], m["receivables_fen"], m["arrears_fen"], m["arrears_rate_percent"])
            for m in report["months"]] == [
        (f"{y}-09", 1_713_618_718, 6_683_113, "0.39"),
        (f"{y}-10", 1_762_938_333, 6_346_578, "0.36"),
        (f"{y}-11", 1_408_456_579, 5_352_135, "0.38")]
    assert report["total"] == {"receivables_fen": 4_885_013_630, "arrears_fen": 18_381_826,
                               "arrears_rate": "0.003763", "arrears_rate_percent": "0.38",
                               "meets_target": True}
    family = {g["key"]: (g["receivables_fen"], g["arrears_fen"]) for g in report["by"]["family"]}
    assert family == {"ADC": (4_885_013_630 - 18_381_826 - 3 * MAS_MONTHLY, 0),
                      "MAS": (3 * MAS_MONTHLY, 0), "WORK_ORDER": (18_381_826, 18_381_826)}
    # On 12-19 neither the ADC (12-20) nor the MAS (12-21) payment for November had come.
    early = await ok(await credit.get("/v1/reports/arrears", params={
        "month": f"{y}-11", "as_of": f"{y}-12-19"}), 200)
    assert early["months"][0]["arrears_fen"] == 1_408_456_579
    assert early["months"][0]["measured_on"] == f"{y}-12-19"
    # The same question later gives the same answer: the figure is reproducible.
    again = await ok(await credit.get("/v1/reports/arrears", params={
        "month": f"{y}-09", "through": f"{y}-11", "as_of": f"{y}-12-31"}), 200)
    assert again == report


async def test_a_small_month_by_family_tier_channel_and_region_recovery_aging_and_csv(
    clients: dict[str, httpx.AsyncClient], role_clients: dict[str, dict[str, httpx.AsyncClient]],
    uid: str, test_year: int,
) -> None:
    billing, credit, y = Billing(clients["billing-events"], uid), clients["credit-control"], \
        test_year + 8
    a1 = await billing.customer("1", "high", "南城")
    p1 = await billing.product("1", a1, "ADC", "直销")
    a2 = await billing.customer("2", "mid", "南城")
    p2 = await billing.product("2", a2, "MAS", "代理商A", "huawei")
    a3 = await billing.customer("3", "low", "虎门")
    p3a = await billing.product("3a", a3, "ADC", "直销")  # product ids order within the month
    p3b = await billing.product("3b", a3, "SMS_DIRECT", "代理商A")
    a4 = await billing.customer("4", "low")
    p4 = await billing.product("4", a4, "WORK_ORDER", "直销")
    march, april = f"{y}-03", f"{y}-04"
    for acc, pid, fen in ((a1, p1, 100_000), (a2, p2, 50_000), (a3, p3a, 20_000),
                          (a3, p3b, 30_000), (a4, p4, 80_000)):
        await billing.charge(acc, pid, march, fen)
    await billing.bill_run(march, f"{y}-04-02T09:00:00+08:00")
    await billing.charge(a4, p4, april, 10_000)
    await billing.bill_run(april, f"{y}-05-02T09:00:00+08:00")
    await billing.pay("q1", a1, 100_000, f"{y}-04-10T10:00:00+08:00")
    await billing.pay("q3", a3, 25_000, f"{y}-04-10T11:00:00+08:00")  # ADC first, 5,000 of SMS
    await billing.pay("q2", a2, 20_000, f"{y}-04-12T10:00:00+08:00")
    await billing.pay("q4", a4, 80_000, f"{y}-06-15T10:00:00+08:00")  # March, oldest first

    # By hand, March measured on 04-30 (end of the month its bill is collected in):
    # receivables 280,000; arrears MAS 30,000 + SMS 25,000 + work order 80,000 = 135,000.
    body = await ok(await credit.get("/v1/reports/arrears", params={
        "month": march, "as_of": f"{y}-04-30"}), 200)
    m = body["months"][0]
    assert (m["receivables_fen"], m["arrears_fen"], m["arrears_rate_percent"]) == (
        280_000, 135_000, "48.21")
    assert m["meets_target"] is False

    def groups(dim: str) -> dict[str, tuple[int, int]]:
        return {g["key"]: (g["receivables_fen"], g["arrears_fen"]) for g in m["by"][dim]}

    assert groups("family") == {"ADC": (120_000, 0), "MAS": (50_000, 30_000),
                                "SMS_DIRECT": (30_000, 25_000), "WORK_ORDER": (80_000, 80_000)}
    assert groups("tier") == {"high": (100_000, 0), "mid": (50_000, 30_000),
                              "low": (130_000, 105_000)}
    assert groups("channel") == {"直销": (200_000, 80_000), "代理商A": (80_000, 55_000)}
    # By county branch (区县分公司); the fourth customer has none recorded.
    assert groups("region") == {"南城": (150_000, 30_000), "虎门": (50_000, 25_000),
                                "": (80_000, 80_000)}
    # On 04-11 the MAS customer had not paid yet: 50,000 + 25,000 + 80,000.
    mid = await ok(await credit.get("/v1/reports/arrears", params={
        "month": march, "as_of": f"{y}-04-11"}), 200)
    assert mid["total"]["arrears_fen"] == 155_000

    # Recovery: 当月 (by 04-30) 145,000 / 280,000; 三月内 (by 06-30) adds the 06-15 payment.
    rec = await ok(await credit.get("/v1/reports/recovery", params={
        "month": march, "as_of": f"{y}-08-01"}), 200)
    rates = {x["name"]: x for x in rec["rates"]}
    assert rates["current_month"]["deadline"] == f"{y}-04-30"
    assert (rates["current_month"]["collected_fen"],
            rates["current_month"]["recovery_rate_percent"]) == (145_000, "51.79")
    assert rates["current_month"]["complete"] is True
    assert rates["current_month"]["meets_target"] is False
    assert (rates["three_months"]["collected_fen"],
            rates["three_months"]["recovery_rate_percent"]) == (225_000, "80.36")
    so_far = await ok(await credit.get("/v1/reports/recovery", params={
        "month": march, "as_of": f"{y}-05-15"}), 200)
    assert so_far["rates"][1]["complete"] is False
    assert so_far["rates"][1]["collected_fen"] == 145_000

    # Aging on 05-20: March's 135,000 is one month overdue, April's 10,000 current.
    aging = await ok(await credit.get("/v1/reports/aging", params={
        "month": f"{y}-05", "as_of": f"{y}-05-20", "since": march}), 200)
    assert aging["buckets"] == {"current": 10_000, "one_month": 135_000, "two_months": 0,
                                "three_plus_months": 0}
    # At the end of June the work order's payment cleared its March bill (oldest first):
    # March (billed in April) is two months overdue, April (billed in May) one month.
    june = await ok(await credit.get("/v1/reports/aging", params={
        "month": f"{y}-06", "as_of": f"{y}-06-30", "since": march}), 200)
    assert june["as_of_date"] == f"{y}-06-30"
    assert june["buckets"] == {"current": 0, "one_month": 10_000, "two_months": 55_000,
                               "three_plus_months": 0}

    # CSV download, by ?format=csv and by Accept; any role may read reports.
    viewer = role_clients["ops-viewer"]["credit-control"]
    for got in (await viewer.get("/v1/reports/arrears", params={
                    "month": march, "as_of": f"{y}-04-30", "format": "csv"}),
                await viewer.get("/v1/reports/arrears", params={
                    "month": march, "as_of": f"{y}-04-30"}, headers={"Accept": "text/csv"})):
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("text/csv")
        assert 'attachment; filename="arrears-' in got.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(got.text.lstrip("\ufeff"))))
        by_key = {(r["bill_month"], r["dimension"], r["key"]): r for r in rows}
        assert by_key[(march, "channel", "代理商A")]["arrears_fen"] == "55000"
        assert by_key[(march, "region", "虎门")]["arrears_fen"] == "25000"
        assert by_key[("total", "all", "")]["arrears_rate_percent"] == "48.21"

    await _states_follow_the_history(credit, uid, y, [p1, p2, p3a, p3b, p4])
    await _kpis_agree_with_their_owners(clients, uid, march, f"{y}-04-05")


async def _states_follow_the_history(credit: httpx.AsyncClient, uid: str, y: int,
                                     products: list[str]) -> None:
    """Products per credit state on a past day equal what each product's own history says."""
    async def histories() -> dict[str, dict[str, Any]]:
        found = {}
        for pid in products:
            r = await credit.get(f"/v1/products/{pid}/credit")
            found[pid] = r.json() if r.status_code == 200 else {}
        return found

    # billing's last event per account applied: the amount due credit-control holds is
    # billing's (A1 0, A2 30,000, A3 25,000, A4 10,000).
    want_due = {products[0]: 0, products[1]: 30_000, products[2]: 25_000,
                products[3]: 25_000, products[4]: 10_000}
    seen = await eventually(histories, lambda h: all(
        h[p] and h[p]["facts"]["amount_due_fen"] == due for p, due in want_due.items()),
        what="credit-control applied every balance event")
    for day in (f"{y}-03-31", f"{y}-04-05", f"{y}-04-11", f"{y}-06-30"):
        expected: dict[str, int] = {}
        for body in seen.values():
            state = _state_on(body["state_history"], body["state"], day)
            expected[state] = expected.get(state, 0) + 1
        got = await ok(await credit.get("/v1/reports/states", params={
            "month": day[:7], "as_of": day, "product_prefix": uid}), 200)
        assert {k: v for k, v in got["states"].items() if v} == expected, day
        assert got["products"] == len(products)
    assert expected == {"normal": len(products)} or day != f"{y}-03-31"  # before the bill run


def _state_on(history: list[dict[str, Any]], current: str, day: str) -> str:
    end = date.fromisoformat(day)
    before = [h for h in history if _business_day(h["at"]) <= end]
    if before:
        return str(before[-1]["state_after"])
    return str(history[0]["state_before"]) if history else current


def _business_day(stamp: str) -> date:
    from datetime import datetime

    from common.clock import business_date
    return business_date(datetime.fromisoformat(stamp))


async def _kpis_agree_with_their_owners(clients: dict[str, httpx.AsyncClient], uid: str,
                                        month: str, day: str) -> None:
    credit = clients["credit-control"]

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        body = await ok(await credit.get("/v1/reports/kpis", params={
            "month": month, "as_of": day, "product_prefix": uid}), 200)
        reminders = (await clients["notifier"].get("/v1/kpis/reminder-timeliness",
                                                   params={"bill_month": month})).json()
        return {k["name"]: k for k in body["kpis"]}, reminders

    def same(got: tuple[dict[str, Any], dict[str, Any]]) -> bool:
        timeliness, reminders = got[0]["reminder_timeliness"], got[1]
        return bool((timeliness["decisions"], timeliness["timely"]) == (
            reminders["decisions"], reminders["timely"]))

    # The month's reminders may still be on their way to the SMSC: the two answers agree
    # once the notifier's figure stands still (a reminder submitted between the two calls
    # changes the second).
    kpis, _ = await eventually(both, same, what="the reminder KPI agrees with the notifier's")
    assert set(kpis) == {"arrears_rate", "reminder_timeliness", "emos_cross_month",
                         "missed_suspensions", "overdue_work_orders"}
    assert kpis["reminder_timeliness"]["target"] == "0.95"
    emos = (await clients["gateway-adapter"].get("/v1/kpis/emos-cross-month",
                                                 params={"month": month})).json()
    assert kpis["emos_cross_month"]["orders"] == emos["orders"] == 0
    assert kpis["emos_cross_month"]["meets_target"] is None  # no orders: nothing to judge
    assert (kpis["overdue_work_orders"]["value"], kpis["overdue_work_orders"]["open"]) == (0, 0)
    # Measured on the day asked for: on 04-05 nobody had paid for March yet.
    assert (kpis["arrears_rate"]["arrears_fen"], kpis["arrears_rate"]["measured_on"]) == (
        280_000, day)
    latest = await clients["gateway-adapter"].get("/v1/reconciliation/latest")
    missed = kpis["missed_suspensions"]
    if latest.status_code == 404:
        assert missed["value"] is None and missed["note"] == "no reconciliation has run yet"
    else:
        assert missed["value"] == latest.json()["missed_suspensions"]
    csv_kpis = await credit.get("/v1/reports/kpis", params={
        "month": month, "as_of": day, "product_prefix": uid, "format": "csv"})
    assert [r["name"] for r in csv.DictReader(io.StringIO(csv_kpis.text.lstrip("\ufeff")))] \
        == list(kpis)


@pytest.mark.parametrize(("path", "params"), [
    ("arrears", {"month": "2011-13"}), ("arrears", {"month": "201109"}), ("arrears", {}),
    ("arrears", {"month": "2011-09", "through": "2011-08"}),
    ("arrears", {"month": "2011-09", "through": "2015-09"}),
    ("recovery", {"month": "2011-09", "as_of": "yesterday"}),
    ("aging", {"month": "2011-09", "since": "2011-9"}),
    ("kpis", {"month": "2011-09", "format": "xls"}), ("states", {"month": "2011-00"}),
])
async def test_bad_report_requests_get_a_clear_4xx(
    clients: dict[str, httpx.AsyncClient], path: str, params: dict[str, str]
) -> None:
    r = await clients["credit-control"].get(f"/v1/reports/{path}", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] in ("validation_error", "unprocessable")


async def test_reports_need_a_token(clients: dict[str, httpx.AsyncClient]) -> None:
    url = f"{clients['credit-control'].base_url}/v1/reports/states"
    async with httpx.AsyncClient() as anonymous:
        r = await anonymous.get(url, params={"month": "2011-09"})
    assert r.status_code == 401
