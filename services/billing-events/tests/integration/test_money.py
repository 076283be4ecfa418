"""Payments (partial, over, reversed), adjustments, write-offs and deposits against real
PostgreSQL: exact to the fen, oldest bill month first, one balance event per change.

Bill months of `test_year` used by billing's tests (a bill run closes a month for everyone):
01–02 test_billing_api, 03 and 10 tests/e2e, 04–05 partial/over-payment, 06 reversal,
07 adjustments, 08 deposit, 09 idempotent bill run, 11 deduction, 12 rejected inputs;
`test_year + 2`: 05 a bill run dated before a charge.
The receivables test takes the whole of `test_year + 1`."""

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .helpers import charge_and_close, events, footprint, open_account, post

pytestmark = [pytest.mark.integration]


async def test_partial_then_over_payment_leaves_credit_and_ages_the_dues(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{y}-04", 10_000, uid)
    await charge_and_close(billing, ids, f"{y}-05", 20_000, uid)
    partial = await post(billing, "/v1/payments", {
        "payment_id": f"PA{uid}", "account_id": ids["account"], "amount_fen": 12_345,
        "paid_at": f"{y}-06-03T10:00:00+08:00"})
    assert partial["account"]["dues"] == [{"bill_month": f"{y}-05", "amount_due_fen": 17_655}]
    view = (await billing.get(f"/v1/accounts/{ids['account']}",
                              params={"as_of": f"{y}-07-10"})).json()
    # May's bill went out in June: one month overdue in July.
    assert view["aging"] == {"current_fen": 0, "one_month_fen": 17_655, "two_months_fen": 0,
                             "three_plus_months_fen": 0}
    assert view["last_payment_at"] == f"{y}-06-03T02:00:00+00:00"
    over = await post(billing, "/v1/payments", {
        "payment_id": f"PB{uid}", "account_id": ids["account"], "amount_fen": 20_000,
        "paid_at": f"{y}-06-04T10:00:00+08:00"})
    assert over["account"]["balance_fen"] == 2_345  # credit on the account
    assert over["account"]["dues"] == [] and over["account"]["amount_due_fen"] == 0
    causes = [e["cause"] for e in await events(db, ids["account"])]
    assert causes == ["master_data", "charge", "bill_run", "charge", "bill_run", "payment",
                      "payment"]  # master_data: the product was added
    assert [e["sequence"] for e in await events(db, ids["account"])] == [1, 2, 3, 4, 5, 6, 7]


async def test_bounced_payment_reopens_the_months_it_paid(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{y}-06", 30_000, uid)
    await post(billing, "/v1/payments", {"payment_id": f"PC{uid}", "account_id": ids["account"],
                                         "amount_fen": 30_000})
    await post(billing, "/v1/payments", {"payment_id": f"PD{uid}", "account_id": ids["account"],
                                         "amount_fen": 5_000})
    body = {"reversal_id": f"R{uid}", "payment_id": f"PC{uid}", "reason": "银行退票",
            "reversed_at": f"{y}-07-20T15:00:00+08:00"}
    # A cheque bounces after it was paid in: a reversal dated before the payment is refused,
    # nothing written, its id free again.
    untouched = await footprint(db, ids["account"])
    early = await billing.post("/v1/reversals", json={
        **body, "reversed_at": "2020-01-01T00:00:00+08:00"})
    assert early.status_code == 422 and "before payment" in early.json()["message"], early.text
    assert early.json()["field"] == "reversed_at"
    assert await footprint(db, ids["account"]) == untouched
    reversed_ = await post(billing, "/v1/reversals", body)
    assert reversed_["account"]["dues"] == [{"bill_month": f"{y}-06", "amount_due_fen": 25_000}]
    assert reversed_["amount_fen"] == 30_000
    last = (await events(db, ids["account"]))[-1]
    assert (last["cause"], last["amount_due_fen"], last["balance_fen"]) == (
        "reversal", 25_000, -25_000)
    before = await footprint(db, ids["account"])
    again = await billing.post("/v1/reversals", json={**body, "reversal_id": f"R2{uid}"})
    assert again.status_code == 409 and "already reversed" in again.json()["message"]
    unknown = await billing.post("/v1/reversals", json={**body, "reversal_id": f"R3{uid}",
                                                        "payment_id": "no-such-payment"})
    assert unknown.status_code == 404
    assert await footprint(db, ids["account"]) == before


async def test_adjustments_change_the_bill_and_write_offs_clear_dues(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{y}-07", 50_000, uid)
    adj = {"adjustment_id": f"ADJ{uid}", "account_id": ids["account"],
           "product_id": ids["product"], "bill_month": f"{y}-07", "amount_fen": -8_000,
           "reason": "资费错配退费"}
    credited = await post(billing, "/v1/adjustments", adj)
    assert credited["account"]["amount_due_fen"] == 42_000
    before = await footprint(db, ids["account"])
    too_far = await billing.post("/v1/adjustments", json={
        **adj, "adjustment_id": f"ADJ2{uid}", "amount_fen": -42_001})
    assert too_far.status_code == 422 and too_far.json()["billed_fen"] == 42_000
    too_much = await billing.post("/v1/write-offs", json={
        "write_off_id": f"W0{uid}", "account_id": ids["account"], "amount_fen": 42_001,
        "reason": "恶意欠费"})
    assert too_much.status_code == 422 and too_much.json()["amount_due_fen"] == 42_000
    assert await footprint(db, ids["account"]) == before
    # Bad debt is written off after it was billed: dated before July's bill run (2 August),
    # the account owed nothing then; refused naming the dates, nothing written.
    early = await billing.post("/v1/write-offs", json={
        "write_off_id": f"W1{uid}", "account_id": ids["account"], "amount_fen": 40_000,
        "reason": "恶意欠费, 法务无果", "as_of": f"{y}-07-31T10:00:00+08:00"})
    assert early.status_code == 422, early.text
    assert "before the debt it writes off existed" in early.json()["message"]
    assert early.json()["field"] == "as_of" and early.json()["owed_fen_as_of"] == 0
    assert early.json()["billed_at"] == {f"{y}-07": f"{y}-08-02T01:00:00+00:00"}
    assert await footprint(db, ids["account"]) == before
    written = await post(billing, "/v1/write-offs", {
        "write_off_id": f"W1{uid}", "account_id": ids["account"], "amount_fen": 40_000,
        "reason": "恶意欠费, 法务无果", "as_of": f"{y}-08-20T10:00:00+08:00"})
    assert written["account"]["dues"] == [{"bill_month": f"{y}-07", "amount_due_fen": 2_000}]
    assert [e["cause"] for e in await events(db, ids["account"])][-2:] == [
        "adjustment", "write_off"]


async def test_a_bill_run_dated_before_a_charge_of_its_month_is_refused(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    """May's charge recorded on 3 June: a bill run of May dated 2 June would close the month
    before the charge came in (its event said "unbilled" after the run's said "billed").
    Refused naming both moments, nothing written; dated after the charge it runs."""
    billing, y = clients["billing-events"], test_year + 2  # its month 05: only here
    ids = await open_account(billing, uid)
    await post(billing, "/v1/charges", {
        "charge_id": f"CL{uid}", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": f"{y}-05", "amount_fen": 7_700, "as_of": f"{y}-06-03T10:00:00+08:00"})
    untouched = await footprint(db, ids["account"])
    run = {"bill_run_id": f"BRL{uid}", "bill_month": f"{y}-05",
           "as_of": f"{y}-06-02T09:00:00+08:00"}
    early = await billing.post("/v1/bill-runs", json=run)
    assert early.status_code == 422, early.text
    assert early.json()["field"] == "as_of" and early.json()["charge_id"] == f"CL{uid}"
    assert early.json()["charged_at"] == f"{y}-06-03T02:00:00+00:00"
    assert "before charge" in early.json()["message"]
    assert await footprint(db, ids["account"]) == untouched
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM billing.bill_runs "
                                      "WHERE bill_run_id = :r"), {"r": f"BRL{uid}"}) == 0
    closed = await post(billing, "/v1/bill-runs", {**run, "as_of": f"{y}-06-03T12:00:00+08:00"})
    assert closed["accounts_billed"] >= 1
    last = (await events(db, ids["account"]))[-1]
    assert (last["cause"], last["amount_due_fen"]) == ("bill_run", 7_700)


async def test_deposit_is_held_apart_from_the_balance(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{y}-08", 9_900, uid)
    held = await post(billing, "/v1/deposits", {
        "deposit_id": f"DEP{uid}", "account_id": ids["account"], "amount_fen": 50_000})
    assert held["account"]["deposit_fen"] == 50_000
    assert held["account"]["balance_fen"] == -9_900  # a deposit pays nothing by itself
    last = (await events(db, ids["account"]))[-1]
    assert (last["cause"], last["deposit_fen"], last["amount_due_fen"]) == (
        "deposit", 50_000, 9_900)


async def test_master_data_change_publishes_a_new_snapshot_with_the_same_money(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str
) -> None:
    billing = clients["billing-events"]
    ids = await open_account(billing, uid, family="MAS", vendor="huawei")
    customer = {"name": f"新名集团{uid}", "tier": "high", "star_level": 5,
                "account_manager": {"name": "吴经理", "phone": "13700000009"},
                "contacts": [{"name": "财务", "phone": "15000000001"},
                             {"name": "老板", "phone": "18600000002"}]}
    r = await billing.put(f"/v1/customers/{ids['customer']}", json=customer)
    assert r.status_code == 200 and r.json()["changed"] is True
    same = await billing.put(f"/v1/customers/{ids['customer']}", json=customer)
    assert same.json()["changed"] is False
    product = {"name": "若雅CRM-MAS", "family": "MAS", "vendor": "ruoya", "channel": "渠道A"}
    assert (await billing.put(f"/v1/products/{ids['product']}", json=product)).status_code == 200
    bad_phone = await billing.put(f"/v1/customers/{ids['customer']}", json={
        **customer, "contacts": [{"name": "财务", "phone": "1500000000"}]})
    assert bad_phone.status_code == 422
    no_vendor = await billing.put(f"/v1/products/{ids['product']}", json={
        **product, "vendor": None})
    assert no_vendor.status_code == 422
    unknown = await billing.put("/v1/products/no-such-product", json=product)
    assert unknown.status_code == 404
    published = await events(db, ids["account"])
    # the first is the product's creation (POST /v1/products publishes it)
    assert [e["cause"] for e in published] == ["master_data"] * 3
    published = published[1:]
    first, second = published
    assert first["customer"]["name"] == f"新名集团{uid}" and first["customer"]["star_level"] == 5
    assert second["products"][0]["vendor"] == "ruoya"
    assert second["products"][0]["channel"] == "渠道A"
    assert first["balance_fen"] == second["balance_fen"] == 0


async def test_twenty_identical_concurrent_puts_change_once_and_publish_once(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str
) -> None:
    """The customer row is locked before the compare: without it several of the racing PUTs
    saw the old row, answered changed: true and each published a master_data event."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    customer = {"name": f"并发集团{uid}", "tier": "mid", "star_level": 3,
                "account_manager": {"name": "钱经理", "phone": "13700000011"},
                "contacts": [{"name": "财务", "phone": "15000000012"}]}
    answers = await asyncio.gather(*(
        billing.put(f"/v1/customers/{ids['customer']}", json=customer) for _ in range(20)))
    assert {r.status_code for r in answers} == {200}
    assert sorted(r.json()["changed"] for r in answers) == [False] * 19 + [True]
    product = {"name": f"并发产品{uid}", "family": "ADC", "channel": "渠道B"}
    answers = await asyncio.gather(*(
        billing.put(f"/v1/products/{ids['product']}", json=product) for _ in range(20)))
    assert {r.status_code for r in answers} == {200}
    # One for the product's creation, then one per real change (customer, product).
    assert [e["cause"] for e in await events(db, ids["account"])] == [
        "master_data", "master_data", "master_data"]


async def test_concurrent_charges_and_payments_of_one_account_all_land_in_sequence(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    """Found by the fault suite: two writes to one account used to deadlock (each insert
    key-share locked the account, then both asked for its row lock) and one answered 500."""
    billing, month = clients["billing-events"], f"{test_year + 3}-01"
    ids = await open_account(billing, uid)
    charges = [billing.post("/v1/charges", json={
        "charge_id": f"CC{uid}{i}", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": month, "amount_fen": 1_000 + i}) for i in range(8)]
    payments = [billing.post("/v1/payments", json={
        "payment_id": f"CP{uid}{i}", "account_id": ids["account"], "amount_fen": 500,
        "paid_at": f"{test_year + 3}-01-20T10:00:00+08:00"}) for i in range(4)]
    answers = await asyncio.gather(*charges, *payments)
    assert [r.status_code for r in answers] == [201] * 12, [r.text for r in answers]
    sequences = [e["sequence"] for e in await events(db, ids["account"])]
    assert sorted(sequences) == list(range(1, 14))  # 1: the product's master_data event
    view = (await billing.get(f"/v1/accounts/{ids['account']}")).json()
    assert view["unbilled_fen"] == sum(1_000 + i for i in range(8))
