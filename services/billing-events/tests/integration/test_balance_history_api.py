"""GET /v1/balance-history against real PostgreSQL: the history says what the account's
balance events said (compared with billing's own outbox), pages, the channel filter, accounts
that never owed left out. Read-only: nothing is written by asking."""

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.integration]
YEAR_OFFSET = 34  # h19w's years: test_year + 33..35 (the e2e bills 33 and 35)


async def ok(r: httpx.Response, status: int = 201) -> Any:
    assert r.status_code == status, r.text
    return r.json()


async def account(billing: httpx.AsyncClient, uid: str, tag: str, channel: str,
                  y: int) -> str:
    c, a, p = f"HG{tag}{uid}", f"HA{tag}{uid}", f"HP{tag}{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": c, "name": f"历史集团{tag}", "tier": "low",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "联系人", "phone": "13800000003"}]}))
    await ok(await billing.post("/v1/accounts", json={"account_id": a, "customer_id": c}))
    for n in (1, 2):  # two products: the allocation pays the first before the second
        await ok(await billing.post("/v1/products", json={
            "product_id": f"{p}-{n}", "account_id": a, "cpno": f"CP{tag}{n}{uid}",
            "name": "企信通", "family": "ADC", "channel": channel}))
        await ok(await billing.post("/v1/charges", json={
            "charge_id": f"HC{tag}{n}{uid}", "account_id": a, "product_id": f"{p}-{n}",
            "bill_month": f"{y}-09", "amount_fen": 50_00}))
    return a


async def events(db: AsyncEngine, account_id: str) -> list[tuple[str, int, int]]:
    """The account's balance events in billing's outbox: (cause, balance, amount due)."""
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT payload::jsonb #>> '{payload,cause}', "
            "(payload::jsonb #>> '{payload,balance_fen}')::bigint, "
            "(payload::jsonb #>> '{payload,amount_due_fen}')::bigint "
            "FROM billing.outbox WHERE key = :a ORDER BY id"), {"a": account_id})
        return [(r[0], r[1], r[2]) for r in rows if r[0] not in ("master_data", "charge")]


async def test_the_history_says_what_the_balance_events_said(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int,
) -> None:
    billing = clients["billing-events"]
    y = test_year + YEAR_OFFSET
    channel = f"history-{uid}"
    a = await account(billing, uid, "a", channel, y)
    b = await account(billing, uid, "b", channel, y)
    c = await account(billing, uid, "c", channel, y)
    other = await account(billing, uid, "d", f"other-{uid}", y)
    # b pays everything before the bill run: it never owes, so it is left out.
    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"HPB{uid}", "account_id": b, "amount_fen": 100_00,
        "paid_at": f"{y}-09-20T10:00:00+08:00"}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"HBR{uid}", "bill_month": f"{y}-09",
        "as_of": f"{y}-10-01T02:00:00+08:00"}))
    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"HPA{uid}", "account_id": a, "amount_fen": 60_00,
        "paid_at": f"{y}-10-05T10:00:00+08:00"}))
    await ok(await billing.post("/v1/reversals", json={
        "reversal_id": f"HRA{uid}", "payment_id": f"HPA{uid}", "reason": "bounced cheque",
        "reversed_at": f"{y}-10-08T10:00:00+08:00"}))
    await ok(await billing.post("/v1/adjustments", json={
        "adjustment_id": f"HJC{uid}", "account_id": c, "product_id": f"HPc{uid}-2",
        "bill_month": f"{y}-09", "amount_fen": -30_00, "reason": "billing error",
        "as_of": f"{y}-10-10T10:00:00+08:00"}))
    outbox_before = await _outbox_size(db)

    found, after, pages = [], "", 0
    while True:  # one account a page: the pages chain, b's page is empty but goes on
        page = await ok(await billing.get("/v1/balance-history", params={
            "month": f"{y}-10", "warmup_months": 3, "limit": 1, "after": after,
            "channel": channel}), 200)
        pages += 1
        found += page["accounts"]
        if not page["next_after"]:
            break
        after = page["next_after"]
    assert [x["account_id"] for x in found] == [a, c]  # b never owed, d is another channel
    assert pages >= 3
    assert other not in {x["account_id"] for x in found}

    history_a = found[0]
    assert history_a["points"][0]["cause"] == "opening"
    assert history_a["points"][0]["amount_due_fen"] == 0
    assert [(p["cause"], p["balance_fen"], p["amount_due_fen"])
            for p in history_a["points"][1:]] == await events(db, a)
    assert [(p["cause"], p["amount_due_fen"]) for p in history_a["points"][1:]] == [
        ("bill_run", 100_00), ("payment", 40_00), ("reversal", 100_00)]
    paid = history_a["points"][2]
    assert {d["product_id"]: d["amount_due_fen"] for d in paid["product_dues"]} == {
        f"HPa{uid}-1": 0, f"HPa{uid}-2": 40_00}  # the first product paid first
    # …and per bill month, as the balance events' product_dues say (the what-if's deduction
    # notices follow which product a collection pays: oldest month first).
    assert {d["product_id"]: d["dues"] for d in paid["product_dues"]} == {
        f"HPa{uid}-1": [], f"HPa{uid}-2": [{"bill_month": f"{y}-09", "amount_due_fen": 40_00}]}
    assert history_a["points"][1]["closed_bill_month"] == f"{y}-09"
    history_c = found[1]
    assert [(p["cause"], p["balance_fen"], p["amount_due_fen"])
            for p in history_c["points"][1:]] == await events(db, c)

    assert await _outbox_size(db) == outbox_before  # asking wrote nothing
    bad = await billing.get("/v1/balance-history", params={"month": "2026-13"})
    assert bad.status_code == 422 and "message" in bad.json()
    too_much = await billing.get("/v1/balance-history", params={"month": f"{y}-10",
                                                                 "warmup_months": 4})
    assert too_much.status_code == 422


async def _outbox_size(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text("SELECT coalesce(max(id), 0) FROM billing.outbox"))
                   or 0)
