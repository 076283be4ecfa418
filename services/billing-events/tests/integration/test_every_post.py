"""Every POST route: the same id and body replays the answer and writes nothing more; the
same id with another body is a 409; a rejected input leaves the tables and the outbox
(what the relay publishes) exactly as they were."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .helpers import charge_and_close, footprint, open_account, post

pytestmark = [pytest.mark.integration]

Body = Callable[[dict[str, str], str, int], tuple[str, dict[str, Any], str, Any]]

# Months of `test_year + 2` (01 stays open; 06, 09, 12 are closed here; 05 in test_money.py).
# route → (path, body, a field, another value for it) from (ids, uid, year)
ROUTES: dict[str, Body] = {
    "customers": lambda ids, u, y: ("/v1/customers", {
        "customer_id": f"GX{u}", "name": "新集团", "tier": "low",
        "account_manager": {"name": "经理", "phone": "13900000001"},
        "contacts": [{"name": "联系人", "phone": "13800000001"}]}, "tier", "high"),
    "accounts": lambda ids, u, y: ("/v1/accounts", {
        "account_id": f"AX{u}", "customer_id": ids["customer"]}, "customer_id", "other"),
    "products": lambda ids, u, y: ("/v1/products", {
        "product_id": f"PX{u}", "account_id": ids["account"], "cpno": f"CPX{u}",
        "name": "集团V网", "family": "ADC"}, "name", "集团彩铃"),
    "charges": lambda ids, u, y: ("/v1/charges", {
        "charge_id": f"CX{u}", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": f"{y + 2}-01", "amount_fen": 100}, "amount_fen", 101),
    "bill-runs": lambda ids, u, y: ("/v1/bill-runs", {
        "bill_run_id": f"BRX{u}", "bill_month": f"{y + 2}-09",
        "as_of": f"{y + 2}-10-02T09:00:00+08:00"}, "as_of", f"{y + 2}-10-03T09:00:00+08:00"),
    "payments": lambda ids, u, y: ("/v1/payments", {
        "payment_id": f"PAYX{u}", "account_id": ids["account"], "amount_fen": 100},
        "amount_fen", 99),
    "reversals": lambda ids, u, y: ("/v1/reversals", {
        "reversal_id": f"RX{u}", "payment_id": f"PAY0{u}", "reason": "退票"}, "reason", "错账"),
    "adjustments": lambda ids, u, y: ("/v1/adjustments", {
        "adjustment_id": f"ADJX{u}", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": f"{y + 2}-01", "amount_fen": 300, "reason": "补收"}, "amount_fen", -30),
    "write-offs": lambda ids, u, y: ("/v1/write-offs", {
        "write_off_id": f"WX{u}", "account_id": ids["account"], "amount_fen": 1,
        "reason": "核销", "as_of": f"{y + 3}-01-10T10:00:00+08:00"}, "amount_fen", 2),
    "deposits": lambda ids, u, y: ("/v1/deposits", {
        "deposit_id": f"DX{u}", "account_id": ids["account"], "amount_fen": 100},
        "amount_fen", 200),
}


async def _prepared(
    billing: httpx.AsyncClient, uid: str, year: int, route: str
) -> dict[str, str]:
    """An account with a payment to reverse and, for a write-off, money owed."""
    ids = await open_account(billing, uid)
    await post(billing, "/v1/payments", {"payment_id": f"PAY0{uid}",
                                         "account_id": ids["account"], "amount_fen": 1})
    if route == "write-offs":
        await charge_and_close(billing, ids, f"{year + 2}-12", 500, uid)
    return ids


@pytest.mark.parametrize("route", list(ROUTES))
async def test_retry_replays_and_other_body_is_a_conflict(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int,
    route: str,
) -> None:
    billing = clients["billing-events"]
    ids = await _prepared(billing, uid, test_year, route)
    path, body, field, other = ROUTES[route](ids, uid, test_year)
    first = await billing.post(path, json=body)
    assert first.status_code == 201, first.text
    after_first = await footprint(db, ids["account"])
    again = await billing.post(path, json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    assert await footprint(db, ids["account"]) == after_first
    clash = await billing.post(path, json={**body, field: other})
    assert clash.status_code == 409, clash.text
    assert clash.json()["error"] == "conflict"
    assert "different request body" in clash.json()["message"]
    assert await footprint(db, ids["account"]) == after_first


# route → (a rejected change of the valid body, the status it gets)
REJECTED: list[tuple[str, dict[str, Any], int]] = [
    ("customers", {"contacts": [{"name": "联系人", "phone": "1380000000"}]}, 422),
    ("customers", {"account_manager": {"name": "经理", "phone": "+8613900000001"}}, 422),
    ("customers", {"tier": "gold"}, 422),
    ("accounts", {"customer_id": "no-such-customer"}, 404),
    ("products", {"account_id": "no-such-account"}, 404),
    ("products", {"family": "MAS"}, 422),  # a MAS product without its vendor
    ("products", {"vendor": "zte"}, 422),
    ("charges", {"amount_fen": -100}, 422),
    ("charges", {"amount_fen": 1.5}, 422),
    ("charges", {"account_id": "no-such-account"}, 404),
    ("charges", {"bill_month": "CLOSED"}, 409),
    ("bill-runs", {"as_of": "2000-01-02T09:00:00+08:00"}, 422),  # the month is not over
    ("payments", {"amount_fen": 0}, 422),
    ("payments", {"account_id": "no-such-account"}, 404),
    ("reversals", {"payment_id": "no-such-payment"}, 404),
    ("adjustments", {"amount_fen": 0}, 422),
    ("adjustments", {"amount_fen": -101}, 422),  # more than the month was billed
    ("write-offs", {"amount_fen": 1_000_000}, 422),  # more than is owed
    ("deposits", {"amount_fen": -5}, 422),
    ("deposits", {"account_id": "no-such-account"}, 404),
]


@pytest.mark.parametrize(("route", "change", "status"), REJECTED,
                         ids=[f"{r}-{'-'.join(c)}" for r, c, _ in REJECTED])
async def test_rejected_input_changes_nothing(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int,
    route: str, change: dict[str, Any], status: int,
) -> None:
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    await post(billing, "/v1/charges", {
        "charge_id": f"C0{uid}", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": f"{test_year + 2}-01", "amount_fen": 100})
    await post(billing, "/v1/payments", {"payment_id": f"PAY0{uid}",
                                         "account_id": ids["account"], "amount_fen": 1})
    path, body, _, _ = ROUTES[route](ids, uid, test_year)
    if change.get("bill_month") == "CLOSED":
        change = {"bill_month": f"{test_year + 2}-06"}
        await charge_and_close(billing, await open_account(billing, uid + "c"),
                               f"{test_year + 2}-06", 1, uid)
    before = await footprint(db, ids["account"])
    async with db.connect() as conn:
        keys_before = await conn.scalar(text("SELECT count(*) FROM billing.idempotency_keys"))
    r = await billing.post(path, json={**body, **change})
    assert r.status_code == status, r.text
    assert r.json()["error"] in ("validation_error", "not_found", "conflict", "unprocessable")
    assert r.json()["message"]
    assert await footprint(db, ids["account"]) == before
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM billing.idempotency_keys")) == (
            keys_before)
    # The id was not used up: with the valid body it goes through.
    if route not in ("bill-runs", "write-offs"):
        assert (await billing.post(path, json=body)).status_code == 201
