"""Receivables and arrears per bill month against a hand computation built on seed 000's
Sep–Nov 2011 figures: 183,818.26 yuan owed of 48,850,136.30 receivable = 0.38%."""

import httpx
import pytest

from .helpers import post

pytestmark = [pytest.mark.integration]

MONTHS = ("09", "10", "11")


async def customer_with_product(
    billing: httpx.AsyncClient, uid: str, tag: str, tier: str, family: str,
    vendor: str | None = None,
) -> dict[str, str]:
    ids = {"account": f"A{tag}{uid}", "product": f"P{tag}{uid}"}
    await post(billing, "/v1/customers", {
        "customer_id": f"G{tag}{uid}", "name": f"集团{tag}", "tier": tier,
        "account_manager": {"name": "客户经理", "phone": "13900000000"},
        "contacts": [{"name": "联系人", "phone": "13800000000"}]})
    await post(billing, "/v1/accounts", {"account_id": ids["account"],
                                         "customer_id": f"G{tag}{uid}"})
    await post(billing, "/v1/products", {
        "product_id": ids["product"], "account_id": ids["account"], "cpno": f"CP{tag}{uid}",
        "name": f"产品{tag}", "family": family, "vendor": vendor, "channel": f"渠道{tag}"})
    return ids


async def test_arrears_rate_matches_the_hand_computation(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year + 1
    a = await customer_with_product(billing, uid, "a", "high", "ADC")
    b = await customer_with_product(billing, uid, "b", "mid", "MAS", "huawei")
    c = await customer_with_product(billing, uid, "c", "low", "WORK_ORDER")
    bills = {  # fen per month Sep, Oct, Nov
        "a": (a, (1_600_000_500, 1_600_000_000, 1_600_000_000)),
        "b": (b, (20_000_000, 20_000_000, 20_000_000)),
        "c": (c, (8_381_826, 8_000_000, 8_631_804)),
    }
    for tag, (ids, fens) in bills.items():
        for month, fen in zip(MONTHS, fens, strict=True):
            await post(billing, "/v1/charges", {
                "charge_id": f"C{tag}{month}{uid}", "account_id": ids["account"],
                "product_id": ids["product"], "bill_month": f"{y}-{month}", "amount_fen": fen})
    for month in MONTHS:
        await post(billing, "/v1/bill-runs", {
            "bill_run_id": f"BR{month}{uid}", "bill_month": f"{y}-{month}",
            "as_of": f"{y}-{int(month) + 1:02d}-02T09:00:00+08:00" if month != "11"
            else f"{y}-12-02T09:00:00+08:00"})
    # A's September bill was 500 fen too high: a credit note after the bill run.
    await post(billing, "/v1/adjustments", {
        "adjustment_id": f"ADJa{uid}", "account_id": a["account"], "product_id": a["product"],
        "bill_month": f"{y}-09", "amount_fen": -500, "reason": "多收退费"})
    pays = [  # (account, id, fen, day in December)
        (a, "pa", 4_800_000_100, "05"),  # everything and 1 yuan more: credit, not others' arrears
        (b, "pb", 50_000_000, "06"),  # Sep, Oct, and half of Nov
        (c, "pc1", 16_631_804, "07"),  # a cheque that bounces on the 10th
        (c, "pc2", 16_631_804, "20"),  # paid again
    ]
    for ids, pid, fen, day in pays:
        await post(billing, "/v1/payments", {
            "payment_id": f"{pid}{uid}", "account_id": ids["account"], "amount_fen": fen,
            "paid_at": f"{y}-12-{day}T10:00:00+08:00"})
    await post(billing, "/v1/reversals", {
        "reversal_id": f"Rc{uid}", "payment_id": f"pc1{uid}", "reason": "退票",
        "reversed_at": f"{y}-12-10T11:00:00+08:00"})

    # By hand. Receivables: Sep 1,600,000,000 + 20,000,000 + 8,381,826 = 1,628,381,826;
    # Oct 1,628,000,000; Nov 1,628,631,804; together 4,885,013,630 (48,850,136.30 yuan).
    # Arrears, oldest month first: A none. B paid 50,000,000 of 60,000,000: Nov 10,000,000.
    # C paid 16,631,804 net: Sep 8,381,826 and Oct 8,000,000 cleared, 249,978 to Nov, so
    # Nov 8,631,804 − 249,978 = 8,381,826. Nov: 18,381,826 (183,818.26 yuan).
    r = await billing.get("/v1/receivables", params={
        "bill_month": f"{y}-09", "through": f"{y}-11", "by": "family"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(m["bill_month"], m["receivables_fen"], m["arrears_fen"]) for m in body["months"]] == [
        (f"{y}-09", 1_628_381_826, 0), (f"{y}-10", 1_628_000_000, 0),
        (f"{y}-11", 1_628_631_804, 18_381_826)]
    assert body["total"] == {"receivables_fen": 4_885_013_630, "arrears_fen": 18_381_826,
                             "written_off_fen": 0, "arrears_rate": "0.003763",
                             "arrears_rate_percent": "0.38"}
    assert [(g["key"], g["receivables_fen"], g["arrears_fen"]) for g in body["groups"]] == [
        ("ADC", 4_800_000_000, 0), ("MAS", 60_000_000, 10_000_000),
        ("WORK_ORDER", 25_013_630, 8_381_826)]
    assert body["groups"][2]["arrears_rate_percent"] == "33.51"  # 8,381,826 / 25,013,630

    # As of 15 December the cheque had bounced and C had not paid again: C owes all of its
    # 25,013,630 (Sep 8,381,826, Oct 8,000,000, Nov 8,631,804); B owes Nov 10,000,000.
    mid = (await billing.get("/v1/receivables", params={
        "bill_month": f"{y}-09", "through": f"{y}-11", "as_of": f"{y}-12-15"})).json()
    assert [m["arrears_fen"] for m in mid["months"]] == [8_381_826, 8_000_000, 18_631_804]
    assert mid["total"]["arrears_fen"] == 35_013_630
    assert mid["total"]["arrears_rate_percent"] == "0.72"
    # As of 8 December the cheque had not bounced yet: the same as today.
    early = (await billing.get("/v1/receivables", params={
        "bill_month": f"{y}-11", "as_of": f"{y}-12-08"})).json()
    assert early["total"]["arrears_fen"] == 18_381_826

    # The account positions say the same per month.
    dues = [(await billing.get(f"/v1/accounts/{ids['account']}")).json()["dues"]
            for ids in (a, b, c)]
    assert dues == [[], [{"bill_month": f"{y}-11", "amount_due_fen": 10_000_000}],
                    [{"bill_month": f"{y}-11", "amount_due_fen": 8_381_826}]]
    by_tier = (await billing.get("/v1/receivables", params={
        "bill_month": f"{y}-11", "by": "tier"})).json()
    assert {g["key"]: g["arrears_fen"] for g in by_tier["groups"]} == {
        "high": 0, "low": 8_381_826, "mid": 10_000_000}


@pytest.mark.parametrize("params", [
    {"bill_month": "2011-13"}, {"bill_month": "201109"}, {},
    {"bill_month": "2011-09", "by": "colour"}, {"bill_month": "2011-09", "through": "2011-08"},
    {"bill_month": "2011-09", "as_of": "yesterday"},
])
async def test_bad_report_requests_get_a_clear_4xx(
    clients: dict[str, httpx.AsyncClient], params: dict[str, str]
) -> None:
    r = await clients["billing-events"].get("/v1/receivables", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"] in ("validation_error", "unprocessable")
