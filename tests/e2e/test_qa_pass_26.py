"""QA pass 26: collections, promises, red-list review, reports and odd staff inputs, through
the running services' HTTP APIs (and, where a route is bounded by the service's own clock,
the same `/v1` routes in process on a clock the test sets, as
services/credit-control/tests/integration/test_collections_worklists.py does).

Year test_year + 1 is this module's: 03-05 the escalation cases, 06-07 the worklist
entries and the arrears report. (A refresh of the worklists runs over the whole base: an early year
keeps it from stamping the suite's later accounts.)"""

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import TokenGrant
from common.clock import FixedClock
from common.http import create_app
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.polling import eventually
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.entrypoints.http import router
from credit_control.service_layer.context import CreditContext

from .test_product_amounts import (
    add_product,
    charge,
    credit_of,
    delivered,
    ok,
    open_account,
    sweep,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STAFF = {"operator-token": TokenGrant(subject="wang.fang", role="operator"),
         "admin-token": TokenGrant(subject="zhang.wei", role="credit-admin")}


@contextlib.asynccontextmanager
async def _no_runtime(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _ready() -> dict[str, Any]:
    return {}


@contextlib.asynccontextmanager
async def in_process(db: AsyncEngine, clock: FixedClock) -> AsyncIterator[
        dict[str, httpx.AsyncClient]]:
    """credit-control's `/v1` routes on `clock` (the running service's clock is the
    machine's, centuries before the suite's bill months): role → client."""
    settings = Settings(api_tokens=STAFF)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys), clock,
                        settings=settings)
    app = create_app(title="credit-control", lifespan=_no_runtime, readiness=_ready)
    app.include_router(router(ctx, settings))
    transport = httpx.ASGITransport(app=app)
    async with contextlib.AsyncExitStack() as stack:
        yield {grant.role.value: await stack.enter_async_context(httpx.AsyncClient(
            transport=transport, base_url="http://credit-control",
            headers={"Authorization": f"Bearer {token}"})) for token, grant in STAFF.items()}


async def bill_run(billing: httpx.AsyncClient, run_id: str, month: str, at: str) -> None:
    """The month's bill run; another session's run of the same month closed it as well."""
    r = await billing.post("/v1/bill-runs", json={"bill_run_id": run_id, "bill_month": month,
                                                  "as_of": at})
    assert r.status_code in (201, 409), r.text


async def state_of(credit: httpx.AsyncClient, product_id: str) -> str | None:
    found = await credit_of(credit, product_id)
    return found["state"] if found else None


async def call_entry(local: httpx.AsyncClient, account_id: str) -> dict[str, Any]:
    found = await ok(await local.get("/v1/worklists", params={"account_id": account_id,
                                                              "kind": "call"}), 200)
    assert len(found) == 1, found
    entry: dict[str, Any] = found[0]
    return entry


# --- 1. collections cases in phase 2: a promise to pay, a red list --------------------------

@pytest.fixture(scope="module")
async def phase2(clients: dict[str, httpx.AsyncClient], test_year: int) -> dict[str, Any]:
    """Two accounts (customers `pa` and `rb`), each suspended at the end of y-04 for 600 yuan
    of y-03 with a sibling product added after the bill (owing nothing itself); the daily
    collections runs of 05-01 and 05-11 open a case for each and move it into phase 2."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    y, uid = test_year + 1, uuid.uuid4().hex[:10]
    got: dict[str, Any] = {"y": y, "uid": uid}
    for key in ("pa", "rb"):
        group = await open_account(billing, uid, key)
        owing = await add_product(billing, group, f"P{uid}-{key}own", "集团手机报")
        await charge(billing, group, owing, f"{y}-03", 60_000)
        got[key] = {"group": group, "owing": owing}
    await bill_run(billing, f"BRq26{uid}03", f"{y}-03", f"{y}-04-02T09:00:00+08:00")
    for key in ("pa", "rb"):
        one = got[key]
        await eventually(partial(credit_of, credit, one["owing"]["product_id"]),
                         lambda c: c is not None and c["facts"]["amount_due_fen"] == 60_000,
                         what="the bill run reached credit-control", timeout=120)
        one["sibling"] = await add_product(billing, one["group"], f"P{uid}-{key}sib", "集团V网")
        await eventually(partial(credit_of, credit, one["sibling"]["product_id"]),
                         lambda c: c is not None and c["facts"]["product_amount_due_fen"] == 0,
                         what="the sibling is known", timeout=120)
    for day in ("10", "25"):
        await sweep(credit, f"Sq26{uid}{day}", f"{y}-04-{day}T20:00:00+08:00")
    await delivered(credit, got["pa"]["owing"], got["rb"]["owing"])
    await sweep(credit, f"Sq26{uid}30", f"{y}-04-30T20:00:00+08:00")
    accounts = [got[k]["group"]["account_id"] for k in ("pa", "rb")]
    for key in ("pa", "rb"):
        await eventually(partial(state_of, credit, got[key]["owing"]["product_id"]),
                         lambda s: s == "suspended", what="suspended at month end", timeout=120)
    for at in (f"{y}-05-01T20:00:00+08:00", f"{y}-05-11T20:00:00+08:00"):
        await ok(await credit.post("/v1/collections/run", json={
            "as_of": at, "account_ids": accounts}), 200)
    for key in ("pa", "rb"):
        [case] = await ok(await credit.get("/v1/collections/cases", params={
            "account_id": got[key]["group"]["account_id"]}), 200)
        assert (case["status"], case["phase"]) == ("open", 2), case
        got[key]["case"] = case
    return got


async def test_associated_suspension_does_not_cut_off_an_account_with_a_standing_promise(
    phase2: dict[str, Any], clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], db: AsyncEngine,
) -> None:
    """An account suspended for 600 yuan is in a collections case, phase 2; its account
    manager records a promise to pay (the whole debt, in 9 days) on the call list; the next
    morning a credit-admin approves associated suspension (关联停机) of the case.

    Expected: while the promise stands, nothing of the promised account is suspended. The
    sibling product in the same account (owing nothing itself) stays normal; the approval is
    refused (422, nothing written). docs/collections.md "Promises to pay": "a promise to pay
    makes that appointment binding for the ladder: while it stands, the account is not
    suspended, and if it is broken the ladder resumes at once"; the product promise: never
    cut off a customer by mistake, never a threat that will not be carried out (the manager
    just agreed that paying by the 20th keeps the service).

    Found by the pass: `association_refusal` (collections/domain/escalation.py) checked only
    the case's status and phase, the arrears and the exemptions: the approval succeeded
    (200) and the sibling of the promised account was suspended (its 停机通知 A/B to the
    customer and the manager). It now refuses while a promise of the account stands."""
    credit = clients["credit-control"]
    admin = role_clients["credit-admin"]["credit-control"]
    y, uid, one = phase2["y"], phase2["uid"], phase2["pa"]
    account = one["group"]["account_id"]
    # The manager reaches the customer that evening: 600 yuan promised for the 20th.
    async with in_process(db, FixedClock(datetime.fromisoformat(
            f"{y}-05-11T21:00:00+08:00"))) as local:
        await ok(await local["operator"].post("/v1/worklists/refresh",
                                              json={"as_of": f"{y}-05-11T21:00:00+08:00"}), 200)
        entry = await call_entry(local["operator"], account)
        promise = await ok(await local["operator"].post(
            f"/v1/worklists/{entry['entry_id']}/promises", json={
                "promise_id": f"PRq26{uid}", "promised_date": f"{y}-05-20",
                "amount_fen": 60_000, "reason": "财务月中付款",
                "at": f"{y}-05-11T21:00:00+08:00"}))
        assert promise["status"] == "open", promise

    r = await admin.post(f"/v1/collections/cases/{one['case']['case_id']}/associated-suspension",
                         json={"note": "关联停机", "as_of": f"{y}-05-12T10:00:00+08:00"})
    assert await state_of(credit, one["sibling"]["product_id"]) == "normal"
    assert r.status_code == 422, r.text


async def test_back_dated_associated_suspension_does_not_cut_off_a_red_listed_customer(
    phase2: dict[str, Any], clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]],
) -> None:
    """A case in phase 2; the customer is put on the red list (红名单) now; a credit-admin then
    approves associated suspension with an `as_of` earlier than the red-list entry (the body
    allows a past moment to date the decisions: "as_of dates the decisions").

    Pinned (fine): refused (422, nothing written) because the customer is exempt when the
    suspension is carried out: docs/collections.md "Associated suspension": "everything is
    re-checked at execution (… the customer is not exempt (active red list or emergency
    no-suspension))"; docs/rules.md: an active red list stops every automatic sanction;
    never cut off a customer by mistake. (A back-dated `as_of` does not get round it: the red
    list counts from its creation onwards, whatever moment the decisions are dated.)"""
    credit = clients["credit-control"]
    admin = role_clients["credit-admin"]["credit-control"]
    uid, one = phase2["uid"], phase2["rb"]
    added = await ok(await admin.post("/v1/exemptions", json={
        "exemption_id": f"EXq26{uid}rb", "customer_id": one["group"]["customer_id"],
        "kind": "red_list", "reason": "重点保障客户", "approver": "li.si"}))
    assert added["removed_at"] is None
    # Pinned: approved as of now, the red list refuses it.
    case_id = one["case"]["case_id"]
    r = await admin.post(f"/v1/collections/cases/{case_id}/associated-suspension",
                         json={"note": "关联停机"})
    assert r.status_code == 422, r.text
    r = await admin.post(f"/v1/collections/cases/{case_id}/associated-suspension",
                         json={"note": "关联停机", "as_of": "2026-01-05T10:00:00+08:00"})
    assert await state_of(credit, one["sibling"]["product_id"]) == "normal"
    assert r.status_code == 422, r.text


# --- 2. red-list review date beyond any business time -----------------------------------------

async def test_red_list_renewal_refuses_a_review_date_beyond_business_time(
    clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str,
) -> None:
    """A credit-admin renews a red-list entry with `review_on` 9999-12-31.

    Expected: 422 naming `review_on`, nothing changed. docs/operations.md "Business time":
    nothing after year 8999 (the ceiling, `common.clock.SIMULATION_CEILING`); the brief's
    rule: business times outside sane bounds are refused. The red list exempts the customer
    from every automatic suspension and is there to be "reviewed and cleaned regularly"
    (domain.md, seed 002 对红名单客户持续清理); a review date in year 9999 makes the entry
    permanent: the monthly review list never shows it and it never lapses (a customer in
    arrears never cut off).

    Found by the pass: 200, `review_on` 9999-12-31 stored (and a later renewal without a
    date then failed on the year-10000 arithmetic). A renewal now sets the next review at
    most 12 months ahead."""
    billing = clients["billing-events"]
    admin = role_clients["credit-admin"]["credit-control"]
    group = await open_account(billing, uid, "rl")
    added = await ok(await admin.post("/v1/exemptions", json={
        "exemption_id": f"EXq26{uid}", "customer_id": group["customer_id"],
        "kind": "red_list", "reason": "重要客户", "approver": "li.si"}))
    exemption_id = added["exemption_id"]
    # Pinned: a date not after today and an unknown entry are refused.
    r = await admin.post(f"/v1/red-list/{exemption_id}/renew",
                         json={"note": "续期", "review_on": "2000-01-01"})
    assert r.status_code == 422, r.text
    r = await admin.post(f"/v1/red-list/EXnope{uid}/renew", json={"note": "续期"})
    assert r.status_code == 404, r.text

    r = await admin.post(f"/v1/red-list/{exemption_id}/renew",
                         json={"note": "永久保留", "review_on": "9999-12-31"})
    assert r.status_code == 422, r.text


# --- 3. the June accounts: worklist entries and the arrears report -----------------------------

@pytest.fixture(scope="module")
async def june(clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
               test_year: int) -> dict[str, Any]:
    """Three accounts billed for y-06 (one bill run): two owing 600 yuan (on the call list
    as of 07-05), one with an ADC and a MAS product (100 and 200 yuan) that pays 150 yuan on
    07-05; the call entries come from a refresh as of 07-05 21:00."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    y, uid = test_year + 1, uuid.uuid4().hex[:10]
    got: dict[str, Any] = {"y": y, "uid": uid}
    for key in ("at", "pr"):
        group = await open_account(billing, uid, key)
        product = await add_product(billing, group, f"P{key}{uid}", "集团手机报")
        await charge(billing, group, product, f"{y}-06", 60_000)
        got[key] = group
    mixed = await open_account(billing, uid, "mx")
    adc = await add_product(billing, mixed, f"P{uid}-1a", "集团手机报")
    mas = {"product_id": f"P{uid}-2b", "cpno": f"CP{uid}-2b", "name": "企业信息机"}
    await ok(await billing.post("/v1/products", json={
        **mas, "account_id": mixed["account_id"], "family": "MAS", "vendor": "huawei"}))
    await charge(billing, mixed, adc, f"{y}-06", 10_000)
    await charge(billing, mixed, mas, f"{y}-06", 20_000)
    got["mx"], got["adc"], got["mas"] = mixed, adc, mas
    await bill_run(billing, f"BRq26{uid}06", f"{y}-06", f"{y}-07-02T09:00:00+08:00")
    got["payment"] = await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAYq26{uid}", "account_id": mixed["account_id"], "amount_fen": 15_000,
        "paid_at": f"{y}-07-05T10:00:00+08:00"}))
    for key in ("at", "pr"):
        await eventually(partial(credit_of, credit, f"P{key}{uid}"),
                         lambda c: c is not None and c["facts"]["amount_due_fen"] == 60_000,
                         what="the bill run reached credit-control", timeout=120)
    async with in_process(db, FixedClock(datetime.fromisoformat(
            f"{y}-07-05T21:00:00+08:00"))) as local:
        await ok(await local["operator"].post("/v1/worklists/refresh",
                                              json={"as_of": f"{y}-07-05T21:00:00+08:00"}), 200)
        for key in ("at", "pr"):
            got[f"{key}_entry"] = await call_entry(local["operator"], got[key]["account_id"])
    return got


async def test_attempt_with_a_promised_date_beyond_business_time_is_refused(
    june: dict[str, Any], db: AsyncEngine,
) -> None:
    """An operator logs a phone attempt `promised` with `promised_date` 9999-12-31.

    Expected: 422 naming the field, the entry unchanged: docs/operations.md "Business time"
    (nothing after year 8999), the brief (business times outside sane bounds are refused).
    The entry's promised date drives the dashboard's `broken_promises` (promised entries
    whose date passed) and the manager's follow-up: a date in 9999 is never broken, so the
    account silently drops out of the chase while showing `promised`. (A promise to pay on
    the same entry is limited to 15 days, 30 with a credit-admin: docs/collections.md.)

    Found by the pass: 201, the entry `promised` until 9999-12-31. A promised date is now at
    most the promise policy's longest (a credit-admin's, 30 days) after the attempt.

    Pinned on the way: a promised date before the attempt's day is 422; the same attempt id
    and body answer the first answer again; the same id with another body is 409."""
    y, entry = june["y"], june["at_entry"]
    at = f"{y}-07-06T10:00:00+08:00"
    async with in_process(db, FixedClock(datetime.fromisoformat(at))) as local:
        op = local["operator"]
        path = f"/v1/worklists/{entry['entry_id']}/attempts"
        r = await op.post(path, json={"attempt_id": f"ATq26{june['uid']}a", "channel": "phone",
                                      "outcome": "promised", "promised_date": f"{y}-07-01",
                                      "at": at})
        assert r.status_code == 422, r.text
        first = {"attempt_id": f"ATq26{june['uid']}b", "channel": "phone",
                 "outcome": "no_answer", "at": at}
        answered = await ok(await op.post(path, json=first))
        again = await ok(await op.post(path, json=first))
        assert again == answered
        r = await op.post(path, json={**first, "outcome": "reached"})
        assert r.status_code == 409, r.text

        r = await op.post(path, json={"attempt_id": f"ATq26{june['uid']}c", "channel": "phone",
                                      "outcome": "promised", "promised_date": "9999-12-31",
                                      "at": at})
        now = await ok(await op.get(f"/v1/worklists/{entry['entry_id']}"), 200)
        assert now["promised_date"] != "9999-12-31", now
        assert r.status_code == 422, r.text


async def test_promise_key_reused_with_another_body_or_amount_out_of_range_changes_nothing(
    june: dict[str, Any], db: AsyncEngine,
) -> None:
    """Promises to pay (docs/collections.md "Promises to pay"): `promise_id` is the
    idempotency key (same id and body → the first answer; another body → 409); an amount
    above the arrears, a huge one, or instalments that do not add up are 422; one open
    promise per account (409); every refusal writes nothing."""
    y, entry, uid = june["y"], june["pr_entry"], june["uid"]
    at = f"{y}-07-06T11:00:00+08:00"
    async with in_process(db, FixedClock(datetime.fromisoformat(at))) as local:
        op = local["operator"]
        path = f"/v1/worklists/{entry['entry_id']}/promises"
        base = {"promise_id": f"PRq26{uid}x", "promised_date": f"{y}-07-15",
                "amount_fen": 60_000, "reason": "月中付款", "at": at}
        for bad in ({"amount_fen": 60_001}, {"amount_fen": 10**30}, {"amount_fen": 0},
                    {"promised_date": f"{y}-08-30"}, {"promised_date": "9999-12-31"},
                    {"instalments": [{"due_on": f"{y}-07-10", "amount_fen": 10_000}]},
                    {"instalments": [{"due_on": f"{y}-07-15", "amount_fen": 10_000},
                                     {"due_on": f"{y}-07-10", "amount_fen": 50_000}]}):
            r = await op.post(path, json={**base, **bad})
            assert r.status_code == 422, (bad, r.text)
        # Nothing was written: the key is free, the entry not promised.
        listed = await ok(await op.get("/v1/promises", params={"entry_id": entry["entry_id"]}),
                          200)
        assert listed == [], listed
        first = await ok(await op.post(path, json=base))
        assert first["status"] == "open" and first["amount_fen"] == 60_000, first
        assert await ok(await op.post(path, json=base)) == first
        r = await op.post(path, json={**base, "amount_fen": 50_000})
        assert r.status_code == 409, r.text
        r = await op.post(path, json={**base, "promise_id": f"PRq26{uid}y"})
        assert r.status_code == 409, r.text  # one open promise per account
        shown = await ok(await op.get(f"/v1/promises/{first['promise_id']}"), 200)
        assert shown["amount_fen"] == 60_000 and shown["promised_date"] == f"{y}-07-15"
        entry_now = await ok(await op.get(f"/v1/worklists/{entry['entry_id']}"), 200)
        assert (entry_now["status"], entry_now["promised_date"]) == ("promised", f"{y}-07-15")


async def test_arrears_report_by_family_follows_billings_product_allocation(
    june: dict[str, Any], clients: dict[str, httpx.AsyncClient],
) -> None:
    """The arrears-rate report per product family (docs/reports.md) is billing's allocation to
    the fen: an account with an ADC product (100 yuan) and a MAS product (200 yuan) pays 150
    yuan; billing allocates oldest month first, then product id (docs/billing.md
    "Allocation"): the ADC product is paid, the MAS one owes 150. The family figures add up
    to the total, equal billing's receivables, and the dashboard's KPI quotes the same rate."""
    credit, billing = clients["credit-control"], clients["billing-events"]
    y = june["y"]
    dues = {p["product_id"]: p["amount_due_fen"]
            for p in june["payment"]["account"]["products"]}
    assert dues == {june["adc"]["product_id"]: 0, june["mas"]["product_id"]: 15_000}, dues
    params = {"month": f"{y}-06", "as_of": f"{y}-07-10"}
    report = await ok(await credit.get("/v1/reports/arrears", params=params), 200)
    [month] = report["months"]
    theirs = await ok(await billing.get("/v1/receivables", params={
        "bill_month": f"{y}-06", "as_of": f"{y}-07-10", "by": "family"}), 200)
    assert (month["receivables_fen"], month["arrears_fen"]) == (
        theirs["total"]["receivables_fen"], theirs["total"]["arrears_fen"])
    families = {g["key"]: (g["receivables_fen"], g["arrears_fen"]) for g in month["by"]["family"]}
    assert sum(r for r, _ in families.values()) == month["receivables_fen"]
    assert sum(a for _, a in families.values()) == month["arrears_fen"]
    # This module's June: three accounts of its own (another session could add more).
    assert families.get("MAS") == (20_000, 15_000), families
    assert families.get("ADC") == (130_000, 120_000), families
    for dim in ("tier", "channel", "region"):
        assert sum(g["arrears_fen"] for g in month["by"][dim]) == month["arrears_fen"], dim
    csv_text = (await credit.get("/v1/reports/arrears",
                                 params={**params, "format": "csv"})).text
    assert "1500.00" in csv_text or "150.00" in csv_text or "15000" in csv_text, csv_text[:400]


async def test_odd_inputs_on_staff_reads_and_writes_are_4xx_never_5xx(
    clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str,
) -> None:
    """Bad or extreme input on the staff endpoints gets a clear 4xx (or an honest empty
    answer), never a 500 (the brief; docs/operations.md "Errors a client can rely on").
    Only writes that are refused are sent: nothing here changes shared state."""
    credit = clients["credit-control"]
    admin = role_clients["credit-admin"]["credit-control"]
    far, huge = "8999-12", str(10**30)
    reads = [
        ("/v1/worklists", {"limit": huge}), ("/v1/worklists", {"limit": "0"}),
        ("/v1/worklists", {"status": "nope"}), ("/v1/worklists", {"as_of": "9899-12-31"}),
        ("/v1/reports/arrears", {"month": far}),
        ("/v1/reports/arrears", {"month": "2000-01", "through": far}),
        ("/v1/reports/arrears", {"month": "2026-10", "through": "2026-09"}),
        ("/v1/reports/recovery", {"month": far}), ("/v1/reports/aging", {"month": far}),
        ("/v1/reports/aging", {"month": "2026-10", "since": far}),
        ("/v1/reports/kpis", {"month": far}), ("/v1/reports/states", {"month": far}),
        ("/v1/reports/states", {"month": "2026-10", "as_of": "9899-12-31"}),
        ("/v1/reports/arrears-causes", {"month": far}),
        ("/v1/reports/promises", {"from": "2026-12-01", "to": "2026-01-01"}),
        ("/v1/reports/promises", {"from": "0001-01-01", "to": "9999-12-31"}),
        ("/v1/reports/suspension-time", {"month": far}),
        ("/v1/reports/emergency-recovery", {"month": far}),
        ("/v1/reports/churn-rate", {"month": far}),
        ("/v1/reports/credit-multiples", {"check_date": "9999-12-31"}),
        ("/v1/credit-multiples", {"check_date": "9999-12-31"}),
        ("/v1/red-list/reviews", {"month": far}),
        ("/v1/red-list/reviews", {"as_of": "9899-12-31T00:00:00+08:00"}),
        ("/v1/collections/cases", {"phase": "9"}), ("/v1/collections/cases", {"limit": huge}),
        ("/v1/promises", {"limit": huge}), ("/v1/promises", {"status": "nope"}),
        ("/v1/work-orders", {"overdue_at": "9899-12-31T00:00:00+08:00"}),
        ("/v1/churn/entries", {"limit": "0"}),
        ("/v1/notices/unheard", {"as_of": "9899-12-31"}),
        ("/v1/sweeps/preview", {"as_of": "9899-12-31T20:00:00+08:00", "limit": "1"}),
        ("/dashboard", {"month": far}), ("/dashboard/rating", {"month": far}),
        ("/dashboard/promises", {"from": "2026-12-01", "to": "2026-01-01"}),
    ]
    writes = [
        ("/v1/ratings/runs", {"model": "basic", "as_of": "9999-01-01T00:00:00+08:00"}),
        ("/v1/ratings/runs", {"model": "nope"}),
        (f"/v1/ratings/G{uid}/overrides", {
            "override_id": f"OV{uid}", "star_level": 5, "limit_fen": 10**30, "reason": "x",
            "expires_at": "2099-01-01T00:00:00+08:00"}),
        ("/v1/clock/advance", {"move_id": f"M{uid}", "days": -1, "reason": "back"}),
        ("/v1/clock/advance", {"move_id": f"M{uid}", "to": "9999-01-01T00:00:00Z",
                               "reason": "far"}),
        ("/v1/rules/what-if", {"month": far}), ("/v1/rules/what-if", {"month": "2000-01"}),
        ("/v1/rules/what-if", {"month": "2026-10", "version": 10**12}),
        ("/v1/collections/run", {"as_of": "2026-12-01T20:00:00+08:00",
                                 "account_ids": [f"A{uid}-{i}" for i in range(1001)]}),
        ("/v1/worklists/refresh", {"as_of": "9999-01-01T00:00:00+08:00"}),
        (f"/v1/collections/cases/CC-{uid}/associated-suspension",
         {"note": "x", "as_of": "9999-01-01T00:00:00+08:00"}),
        (f"/v1/credit-multiples/9999-12-31/G{uid}/review", {"note": "x"}),
        (f"/v1/churn/entries/churn:G{uid}:repeated:2026-12-01/revisit",
         {"outcome": "retained", "churn_reason": "price", "note": "x"}),
        (f"/v1/work-orders/WO-{uid}/done", {"note": "x"}),
        (f"/v1/reviews/RV-{uid}/decide", {"decision": "restore", "note": "x"}),
        ("/v1/exemptions", {"exemption_id": f"EX{uid}", "customer_id": f"G{uid}",
                            "kind": "emergency", "reason": "x", "approver": "li.si",
                            "until": "9999-12-31T00:00:00+08:00"}),
    ]
    server_errors: list[tuple[object, ...]] = []
    for path, params in reads:
        r = await admin.get(path, params=params)
        if r.status_code >= 500:
            server_errors.append(("GET", path, params, r.status_code, r.text[:300]))
    for path, body in writes:
        r = await admin.post(path, json=body)
        if r.status_code >= 500 or r.status_code < 400:
            server_errors.append(("POST", path, body if len(str(body)) < 300 else "…",
                                  r.status_code, r.text[:300]))
    assert not server_errors, "\n".join(map(str, server_errors))
    assert (await credit.get("/v1/clock")).json()["simulation_clock"] is False
