"""Per-product amounts through the API: an account with several products of different
amounts, a partial payment, a bounced payment, a credit note and a write-off; every balance
event carries each product's dues, adding up to the account's per month and in total; the
CSV bulk path gives the same per-product figures as the per-command path.
Year test_year + 12 is this module's (months 01-02)."""

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.billing import BalanceChanged
from common.envelope import convert
from common.testing.stack import Stack

from .helpers import events, post
from .test_import_csv import run

pytestmark = [pytest.mark.integration]

AMOUNTS = {"1": 12_345, "2": 200_000, "3": 28_380}  # 123.45 / 2000.00 / 283.80 yuan


async def open_group(billing: httpx.AsyncClient, uid: str, key: str) -> dict[str, str]:
    """A customer, one account, products -0 (never charged) and -1, -2, -3."""
    account = f"A{key}{uid}"
    await post(billing, "/v1/customers", {
        "customer_id": f"G{key}{uid}", "name": f"多产品集团{uid}", "tier": "low",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "联系人", "phone": "13800000003"}]})
    await post(billing, "/v1/accounts", {"account_id": account, "customer_id": f"G{key}{uid}"})
    for n in ("0", *AMOUNTS):
        await post(billing, "/v1/products", {
            "product_id": f"P{key}{uid}-{n}", "account_id": account, "cpno": f"CP{key}{uid}-{n}",
            "name": f"产品{n}", "family": "ADC"})
    return {"account": account, "product": f"P{key}{uid}-"}


def dues_of(event: dict[str, Any]) -> dict[str, tuple[int, list[tuple[str, int]]]]:
    """product suffix → (amount due, [(bill month, due)])."""
    return {d["product_id"].rsplit("-", 1)[1]: (
        d["amount_due_fen"], [(m["bill_month"], m["amount_due_fen"]) for m in d["dues"]])
        for d in event["product_dues"]}


def assert_adds_up(event: dict[str, Any]) -> None:
    parsed = convert(event, BalanceChanged)  # the contract reads it
    assert sum(p.amount_due_fen for p in parsed.product_dues) == parsed.amount_due_fen
    assert sum(p.unbilled_fen for p in parsed.product_dues) == parsed.unbilled_fen
    per_month: dict[str, int] = {}
    for p in parsed.product_dues:
        assert p.amount_due_fen == sum(d.amount_due_fen for d in p.dues)
        for d in p.dues:
            per_month[d.bill_month] = per_month.get(d.bill_month, 0) + d.amount_due_fen
    assert per_month == {d.bill_month: d.amount_due_fen for d in parsed.dues}
    assert [p.product_id for p in parsed.product_dues] == sorted(
        p.product_id for p in parsed.products)


async def test_partial_payment_is_spread_oldest_month_then_product_id(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year + 12
    ids = await open_group(billing, uid, "pd")
    a, p = ids["account"], ids["product"]
    for n, fen in AMOUNTS.items():
        await post(billing, "/v1/charges", {"charge_id": f"C{uid}-{n}", "account_id": a,
                                            "product_id": p + n, "bill_month": f"{y}-01",
                                            "amount_fen": fen})
    await post(billing, "/v1/charges", {"charge_id": f"C{uid}-feb", "account_id": a,
                                        "product_id": p + "1", "bill_month": f"{y}-02",
                                        "amount_fen": 7_000})
    await post(billing, "/v1/bill-runs", {"bill_run_id": f"BR{uid}01", "bill_month": f"{y}-01",
                                          "as_of": f"{y}-02-02T09:00:00+08:00"})
    await post(billing, "/v1/payments", {"payment_id": f"PA{uid}", "account_id": a,
                                         "amount_fen": 50_000,
                                         "paid_at": f"{y}-02-05T10:00:00+08:00"})
    await post(billing, "/v1/payments", {"payment_id": f"PB{uid}", "account_id": a,
                                         "amount_fen": 100_000,
                                         "paid_at": f"{y}-02-06T10:00:00+08:00"})
    await post(billing, "/v1/reversals", {"reversal_id": f"R{uid}", "payment_id": f"PB{uid}",
                                          "reason": "退票",  # after the payment it bounces
                                          "reversed_at": f"{y}-02-07T10:00:00+08:00"})
    await post(billing, "/v1/adjustments", {
        "adjustment_id": f"ADJ{uid}", "account_id": a, "product_id": p + "3",
        "bill_month": f"{y}-01", "amount_fen": -380, "reason": "credit note"})
    await post(billing, "/v1/write-offs", {"write_off_id": f"W{uid}", "account_id": a,
                                           "amount_fen": 2_000, "reason": "核销",
                                           "as_of": f"{y}-02-08T10:00:00+08:00"})
    published = await events(db, a)
    for event in published:
        assert_adds_up(event)
    by_cause = {e["cause"]: e for e in published}  # the last of each cause
    jan = f"{y}-01"
    # bill run: each product owes its own bill; product 1's February charge is unbilled
    assert dues_of(by_cause["bill_run"]) == {
        "0": (0, []), "1": (12_345, [(jan, 12_345)]), "2": (200_000, [(jan, 200_000)]),
        "3": (28_380, [(jan, 28_380)])}
    assert [d["unbilled_fen"] for d in by_cause["bill_run"]["product_dues"]] == [0, 7_000, 0, 0]
    # the rating model's inputs (docs/rating.md): what January billed, the customer's open date
    assert by_cause["bill_run"]["billed_fen"] == sum(AMOUNTS.values())
    assert all(e.get("billed_fen") is None for e in published if e["cause"] != "bill_run")
    assert all(e["customer"]["opened_on"] for e in published)
    # the reversal leaves 500.00 paid: product 1 in full, product 2 with the rest (product id
    # order within the oldest month), product 3 untouched
    assert dues_of(by_cause["reversal"]) == {
        "0": (0, []), "1": (0, []), "2": (162_345, [(jan, 162_345)]),
        "3": (28_380, [(jan, 28_380)])}
    # the credit note lowers product 3's bill; the write-off is a credit like a payment
    assert dues_of(by_cause["write_off"]) == {
        "0": (0, []), "1": (0, []), "2": (160_345, [(jan, 160_345)]),
        "3": (28_000, [(jan, 28_000)])}
    view = (await billing.get(f"/v1/accounts/{a}")).json()
    assert [(x["billed_fen"], x["credited_fen"], x["amount_due_fen"]) for x in view["products"]] \
        == [(0, 0, 0), (12_345, 12_345, 0), (200_000, 39_655, 160_345), (28_000, 0, 28_000)]
    assert view["amount_due_fen"] == 188_345
    # the receivables report allocates the same way: its arrears of the month (only this
    # account is billed in it) are the products' dues, to the fen
    report = (await billing.get("/v1/receivables", params={"bill_month": jan})).json()
    assert report["total"]["receivables_fen"] == 240_345
    assert report["total"]["arrears_fen"] == 188_345


async def test_bulk_load_gives_the_per_command_figures(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, stack: Stack, uid: str,
    test_year: int, tmp_path: Path,
) -> None:
    billing, y = clients["billing-events"], test_year + 12
    month = f"{y}-03"
    api = await open_group(billing, uid, "api")
    for n, fen in AMOUNTS.items():
        await post(billing, "/v1/charges", {
            "charge_id": f"Capi{uid}-{n}", "account_id": api["account"],
            "product_id": api["product"] + n, "bill_month": month, "amount_fen": fen})
    files = {
        "1_customers.csv": [("customer_id", "name", "tier", "star_level", "manager_name",
                             "manager_phone", "contacts"),
                            (f"Gcsv{uid}", f"多产品集团{uid}", "low", "", "周经理", "13900000003",
                             "联系人:13800000003")],
        "2_accounts.csv": [("account_id", "customer_id"), (f"Acsv{uid}", f"Gcsv{uid}")],
        "3_products.csv": [("product_id", "account_id", "cpno", "name", "family", "vendor",
                            "channel")] + [
            (f"Pcsv{uid}-{n}", f"Acsv{uid}", f"CPcsv{uid}-{n}", f"产品{n}", "ADC", "", "")
            for n in ("0", *AMOUNTS)],
        "4_charges.csv": [("charge_id", "account_id", "product_id", "bill_month",
                           "amount_fen")] + [
            (f"Ccsv{uid}-{n}", f"Acsv{uid}", f"Pcsv{uid}-{n}", month, str(fen))
            for n, fen in AMOUNTS.items()],
    }
    paths = []
    for name, rows in files.items():
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        paths.append(str(path))
    loaded = run(stack, "import-csv", *paths)
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    csv_events = await events(db, f"Acsv{uid}")
    # the product import published the new products (no product escapes credit-control)
    assert [e["cause"] for e in csv_events] == ["master_data", "charge"]
    await post(billing, "/v1/bill-runs", {"bill_run_id": f"BR{uid}03", "bill_month": month,
                                          "as_of": f"{y}-04-02T09:00:00+08:00"})
    await post(billing, "/v1/payments", {"payment_id": f"PAYapi{uid}",
                                         "account_id": api["account"], "amount_fen": 50_000,
                                         "paid_at": f"{y}-04-05T10:00:00+08:00"})
    pay = tmp_path / "5_payments.csv"
    with pay.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("payment_id", "account_id", "amount_fen", "paid_at"),
                                      (f"PAYcsv{uid}", f"Acsv{uid}", "50000",
                                       f"{y}-04-05T10:00:00+08:00")])
    assert run(stack, "import-csv", str(pay)).returncode == 0
    by_api, by_csv = await events(db, api["account"]), await events(db, f"Acsv{uid}")
    assert [e["cause"] for e in by_csv] == ["master_data", "charge", "bill_run", "payment"]
    for e_api, e_csv in zip(by_api[-3:], by_csv[-3:], strict=True):
        assert_adds_up(e_csv)
        assert dues_of(e_api) == dues_of(e_csv)
    assert dues_of(by_csv[-1]) == {"0": (0, []), "1": (0, []),
                                   "2": (162_345, [(month, 162_345)]),
                                   "3": (28_380, [(month, 28_380)])}
