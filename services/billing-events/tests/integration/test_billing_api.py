"""billing-events over HTTP against real PostgreSQL and Kafka: idempotent POSTs, clear 4xx
errors that change nothing, money exact to the fen."""

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.integration]


async def setup_account(billing: httpx.AsyncClient, uid: str) -> dict[str, str]:
    ids = {"customer": f"G{uid}", "account": f"A{uid}", "product": f"P{uid}"}
    for path, body in (
        ("/v1/customers", {"customer_id": ids["customer"], "name": "测试集团", "tier": "mid",
                           "account_manager": {"name": "周经理", "phone": "13900000003"},
                           "contacts": [{"name": "联系人", "phone": "13800000003"}]}),
        ("/v1/accounts", {"account_id": ids["account"], "customer_id": ids["customer"]}),
        ("/v1/products", {"product_id": ids["product"], "account_id": ids["account"],
                          "cpno": f"CP{uid}", "name": "企信通", "family": "ADC"}),
    ):
        r = await billing.post(path, json=body)
        assert r.status_code == 201, r.text
    return ids


async def outbox_count(db: AsyncEngine, account: str) -> int:
    """The account's money events (adding its product published one master_data event)."""
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM billing.outbox WHERE key = :a"
            " AND payload::jsonb #>> '{payload,cause}' <> 'master_data'"), {"a": account}) or 0)


async def test_same_id_same_body_replays_the_answer(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str
) -> None:
    billing = clients["billing-events"]
    ids = await setup_account(billing, uid)
    body = {"payment_id": f"PAY{uid}", "account_id": ids["account"], "amount_fen": 1234,
            "paid_at": "2026-11-10T10:00:00+08:00"}
    first = await billing.post("/v1/payments", json=body)
    again = await billing.post("/v1/payments", json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["account"]["balance_fen"] == 1234
    assert await outbox_count(db, ids["account"]) == 1  # one balance event, not two


async def test_same_id_other_body_is_a_conflict_and_changes_nothing(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str
) -> None:
    billing = clients["billing-events"]
    ids = await setup_account(billing, uid)
    body = {"payment_id": f"PAY{uid}", "account_id": ids["account"], "amount_fen": 500}
    assert (await billing.post("/v1/payments", json=body)).status_code == 201
    clash = await billing.post("/v1/payments", json={**body, "amount_fen": 501})
    assert clash.status_code == 409
    assert clash.json()["error"] == "conflict"
    account = (await billing.get(f"/v1/accounts/{ids['account']}")).json()
    assert account["balance_fen"] == 500


@pytest.mark.parametrize(("field", "value"), [
    ("amount_fen", -100), ("amount_fen", 0), ("amount_fen", 12.5), ("amount_fen", "100"),
    ("amount_fen", True), ("bill_month", "2026-13"), ("bill_month", "202610"),
])
async def test_bad_charges_are_refused_and_write_nothing(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, field: str, value: Any
) -> None:
    billing = clients["billing-events"]
    ids = await setup_account(billing, uid)
    body = {"charge_id": f"C{uid}", "account_id": ids["account"], "product_id": ids["product"],
            "bill_month": "2026-10", "amount_fen": 100, field: value}
    r = await billing.post("/v1/charges", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error"
    assert any(p["field"].endswith(field) for p in r.json()["problems"])
    assert await outbox_count(db, ids["account"]) == 0
    # The id was not used up: the same id with a good body still works.
    assert (await billing.post("/v1/charges", json={**body, field: {
        "amount_fen": 100, "bill_month": "2026-10"}[field]})).status_code == 201


async def test_unknown_account_and_foreign_product_are_refused(
    clients: dict[str, httpx.AsyncClient], uid: str
) -> None:
    billing = clients["billing-events"]
    ids = await setup_account(billing, uid)
    other = await setup_account(billing, uid + "x")
    unknown = await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": "nope", "amount_fen": 1})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    foreign = await billing.post("/v1/charges", json={
        "charge_id": f"C{uid}", "account_id": ids["account"], "product_id": other["product"],
        "bill_month": "2026-10", "amount_fen": 1})
    assert foreign.status_code == 409


async def test_malformed_phone_and_unknown_fields_are_refused(
    clients: dict[str, httpx.AsyncClient], uid: str
) -> None:
    billing = clients["billing-events"]
    base = {"customer_id": f"G{uid}", "name": "集团", "tier": "low",
            "account_manager": {"name": "经理", "phone": "13900000004"},
            "contacts": [{"name": "联系人", "phone": "1380013800"}]}
    r = await billing.post("/v1/customers", json=base)
    assert r.status_code == 422
    assert "contacts.0.phone" in r.json()["problems"][0]["field"]
    extra = await billing.post("/v1/customers", json={**base, "contacts": [
        {"name": "联系人", "phone": "13800138000"}], "credit_limit": 5})
    assert extra.status_code == 422


async def test_no_token_no_entry(clients: dict[str, httpx.AsyncClient]) -> None:
    url = str(clients["billing-events"].base_url)
    async with httpx.AsyncClient(base_url=url) as anonymous:
        r = await anonymous.get("/v1/accounts/whatever")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"


async def test_bill_run_closes_the_month_and_payments_go_to_the_oldest_month(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int
) -> None:
    billing = clients["billing-events"]
    ids = await setup_account(billing, uid)
    year = test_year
    for month, fen in (("01", 30_000), ("02", 20_001)):
        r = await billing.post("/v1/charges", json={
            "charge_id": f"C{uid}{month}", "account_id": ids["account"],
            "product_id": ids["product"], "bill_month": f"{year}-{month}", "amount_fen": fen})
        assert r.status_code == 201, r.text
        run = await billing.post("/v1/bill-runs", json={
            "bill_run_id": f"BR{uid}{month}", "bill_month": f"{year}-{month}",
            "as_of": f"{year}-{int(month) + 1:02d}-02T09:00:00+08:00"})
        assert run.status_code == 201, run.text
    late = await billing.post("/v1/charges", json={
        "charge_id": f"C{uid}late", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": f"{year}-01", "amount_fen": 1})
    assert late.status_code == 409  # the month is closed
    paid = await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": ids["account"], "amount_fen": 35_000,
        "paid_at": f"{year}-03-05T10:00:00+08:00"})
    assert paid.json()["account"] == {
        "account_id": ids["account"], "balance_fen": -15_001, "amount_due_fen": 15_001,
        "unbilled_fen": 0, "dues": [{"bill_month": f"{year}-02", "amount_due_fen": 15_001}],
        "deposit_fen": 0, "last_payment_at": f"{year}-03-05T02:00:00+00:00",
        "products": [{"product_id": ids["product"], "amount_due_fen": 15_001,
                      "dues": [{"bill_month": f"{year}-02", "amount_due_fen": 15_001}],
                      "unbilled_fen": 0, "billed_fen": 50_001, "credited_fen": 35_000}]}


async def test_a_product_opened_in_the_past_is_published_as_of_its_opening(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str
) -> None:
    """A base loaded today whose history lies in the past gives its products their opening
    time: credit-control's product then starts normal then, and the history's back-dated
    decisions keep their dates (the demo's bill runs of 2026 were dated today without it, and
    the sweeps of those days left the products alone). Outside business time it is refused
    (the tests run in simulation mode: beyond its ceiling, year 9000)."""
    billing = clients["billing-events"]
    ids = await setup_account(billing, uid)
    body = {"product_id": f"P{uid}-2", "account_id": ids["account"], "cpno": f"CP{uid}2",
            "name": "集团V网", "family": "ADC", "as_of": "2026-04-01T09:00:00+08:00"}
    ahead = await billing.post("/v1/products", json={**body, "as_of": "9000-06-01T00:00:00Z"})
    assert ahead.status_code == 422 and "as_of" in ahead.text, ahead.text
    r = await billing.post("/v1/products", json=body)
    assert r.status_code == 201, r.text
    async with db.connect() as conn:
        published = await conn.scalar(text(
            "SELECT payload::jsonb #>> '{payload,as_of}' FROM billing.outbox WHERE key = :a "
            "AND payload::jsonb #>> '{payload,cause}' = 'master_data' ORDER BY id DESC "
            "LIMIT 1"), {"a": ids["account"]})
    assert published == "2026-04-01T01:00:00Z"
    async with db.connect() as conn:
        stored = await conn.scalar(text(
            "SELECT count(*) FROM billing.products WHERE product_id = :p"), {"p": f"P{uid}-2"})
    assert stored == 1
