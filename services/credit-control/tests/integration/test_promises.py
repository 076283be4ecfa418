"""Promises to pay (issue 19) through the running services: balance events over Kafka, the
sweeps and their previews through credit-control's HTTP API; the worklist refresh and the
promises through the same `/v1` routes in process, on a clock the test moves along its story
(the running services' clock is years before the test's business dates, and a promise may
not be stamped after the service's clock).

ADC mid tier owing 600 yuan for March (above the call list's 500): warning 1 on 10 April,
the suspension warning on 25 May (naming the 31st), the suspension on 31 May — unless a
promise defers it. Business year: `test_year + 30`."""

import contextlib
import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import TokenGrant
from common.clock import FixedClock
from common.contracts.billing import BalanceCause as C
from common.contracts.snapshots import Person
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from credit_control.collections.domain.promises import Promise, PromiseStatus, schedule
from credit_control.credit.adapters import sweep_sql
from credit_control.reports.entrypoints.promise_pages import router as promise_pages_router
from credit_control.reports.service_layer.reports import ReportContext

from .helpers import CreditApi, Ledger, at, ledger, new_uid
from .staff_clients import staff_clients

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

YEAR_OFFSET = 30
BILL_FEN = 60_000
STAFF = {"operator-token": TokenGrant(subject="wang.fang", role="operator"),
         "admin-token": TokenGrant(subject="zhang.admin", role="credit-admin"),
         "viewer-token": TokenGrant(subject="li.na", role="ops-viewer")}


def in_process(db: AsyncEngine, clock: FixedClock) -> contextlib.AbstractAsyncContextManager[
        dict[str, httpx.AsyncClient]]:
    """credit-control's `/v1` routes on `clock`: role → client; with the promises' page (it
    reads credit-control's own tables only: no peers needed)."""
    return staff_clients(db, clock, STAFF, lambda ctx, settings: [promise_pages_router(
        ReportContext(ctx, None), settings.token_table())])  # type: ignore[arg-type]


def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _owing_since_march(api: CreditApi, uid: str, name: str, y: int) -> Ledger:
    lg = ledger(uid, name, F.ADC, T.MID)
    # A manager of the test's own: the report per manager counts this run's promises only.
    lg.customer = msgspec.structs.replace(lg.customer, account_manager=Person(
        name=f"王经理{uid}", phone="13900139000"))
    m3 = f"{y}-03"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 4, 1), 9), [(m3, BILL_FEN)], m3)))
    return lg


async def _entry(client: httpx.AsyncClient, lg: Ledger) -> dict[str, Any]:
    found = ok(await client.get("/v1/worklists", params={"account_id": lg.account_id,
                                                         "status": "all"}), 200)
    assert [e["kind"] for e in found] == ["call"], found
    entry: dict[str, Any] = found[0]
    return entry


async def _preview(api: CreditApi, day: date, lg: Ledger) -> list[tuple[str, str]]:
    r = await api.http.get("/v1/sweeps/preview", params={
        "as_of": at(day).isoformat(), "account_id": lg.account_id})
    assert r.status_code == 200, r.text
    return [(i["product_id"], i["decision"]) for i in r.json()["items"]]


async def _decided_on(api: CreditApi, lg: Ledger, day: date) -> list[tuple[str, str]]:
    return [(lg.product_id, d) for d, _, on in await api.decisions(lg.product_id) if on == day]


async def _promise(client: httpx.AsyncClient, promise_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(await client.get(f"/v1/promises/{promise_id}"), 200)
    return found


async def test_a_promise_defers_the_suspension_a_broken_one_resumes_it_a_kept_one_closes(
    api: CreditApi, db: AsyncEngine, test_year: int
) -> None:
    y, uid = test_year + YEAR_OFFSET, new_uid()
    broken, kept, plain = [await _owing_since_march(api, uid, n, y) for n in ("pb", "pk", "pn")]
    await api.sweep(date(y, 4, 10), f"op-pr{uid}-0410")
    await api.sweep(date(y, 5, 25), f"op-pr{uid}-0525")
    for lg in (broken, kept, plain):
        assert await api.state(lg.product_id) == "suspension_warned"

    clock = FixedClock(at(date(y, 5, 26), 10))
    async with in_process(db, clock) as staff:
        op, admin, viewer = staff["operator"], staff["credit-admin"], staff["ops-viewer"]
        ok(await op.post("/v1/worklists/refresh", json={"as_of": clock.now().isoformat()}),
           200)
        e_broken, e_kept = await _entry(op, broken), await _entry(op, kept)
        body = {"promise_id": f"PB{uid}", "promised_date": f"{y}-06-05",
                "amount_fen": BILL_FEN, "reason": "客户资金周转, 承诺6月5日前缴清"}
        made = ok(await op.post(f"/v1/worklists/{e_broken['entry_id']}/promises", json=body))
        assert (made["status"], made["recorded_by"], made["baseline_fen"],
                made["approved_by"]) == ("open", "wang.fang", BILL_FEN, None)
        # The same key and body: the same answer; another body: 409, nothing changed.
        assert ok(await op.post(f"/v1/worklists/{e_broken['entry_id']}/promises",
                                json=body)) == made
        r = await op.post(f"/v1/worklists/{e_broken['entry_id']}/promises",
                          json=body | {"amount_fen": 1})
        assert r.status_code == 409, r.text
        # One open promise per account.
        r = await op.post(f"/v1/worklists/{e_broken['entry_id']}/promises",
                          json=body | {"promise_id": f"PB2{uid}"})
        assert r.status_code == 409 and r.json()["error"], r.text
        assert (await _entry(op, broken))["status"] == "promised"

        # 16 days ahead: beyond what staff may promise; a credit-admin may approve it.
        parts = [{"due_on": f"{y}-05-30", "amount_fen": 20_000},
                 {"due_on": f"{y}-06-11", "amount_fen": 40_000}]
        long = {"promise_id": f"PK{uid}", "promised_date": f"{y}-06-11",
                "amount_fen": BILL_FEN, "instalments": parts, "reason": "分两期缴清"}
        r = await op.post(f"/v1/worklists/{e_kept['entry_id']}/promises", json=long)
        assert r.status_code == 422, r.text
        assert "credit-admin" in r.json()["problems"]["promised_date"]
        assert ok(await op.get("/v1/promises", params={"account_id": kept.account_id}),
                  200) == []
        r = await viewer.post(f"/v1/worklists/{e_kept['entry_id']}/promises", json=long)
        assert r.status_code == 403, r.text
        made_k = ok(await admin.post(f"/v1/worklists/{e_kept['entry_id']}/promises",
                                     json=long))
        assert made_k["approved_by"] == "zhang.admin" and len(made_k["instalments"]) == 2
        assert (await _promise(viewer, f"PK{uid}"))["deferred_until"] == f"{y}-05-30"
        audit = ok(await viewer.get("/v1/audit", params={"entity": "promise",
                                                          "entity_id": f"PK{uid}"}), 200)
        assert [a["action"] for a in audit] == ["record"]

    # The first instalment on the 29th.
    m3 = f"{y}-03"
    await api.deliver((kept, kept.event(C.PAYMENT, at(date(y, 5, 29), 11), [(m3, 40_000)])))

    # 31 May: the preview leaves the promised accounts out, and the sweep does as it said.
    day = date(y, 5, 31)
    previews = {lg.account_id: await _preview(api, day, lg) for lg in (broken, kept, plain)}
    assert previews == {broken.account_id: [], kept.account_id: [],
                        plain.account_id: [(plain.product_id, "suspend")]}
    await api.sweep(day, f"op-pr{uid}-0531")
    for lg in (broken, kept, plain):
        assert await _decided_on(api, lg, day) == previews[lg.account_id]
    assert await api.state(plain.product_id) == "suspended"
    assert await api.state(broken.product_id) == "suspension_warned"
    assert await api.state(kept.product_id) == "suspension_warned"

    # The rest on 4 June: kept, the entry closed.
    await api.sweep(date(y, 6, 1), f"op-pr{uid}-0601")
    assert await api.state(kept.product_id) == "suspension_warned"
    await api.deliver((kept, kept.event(C.PAYMENT, at(date(y, 6, 4), 11))))
    await api.sweep(date(y, 6, 5), f"op-pr{uid}-0605")  # broken's promised day: still held
    assert await api.state(broken.product_id) == "suspension_warned"

    clock.set(at(date(y, 6, 6), 21))
    async with in_process(db, clock) as staff:
        op, viewer = staff["operator"], staff["ops-viewer"]
        k = await _promise(viewer, f"PK{uid}")
        assert (k["status"], k["closed_on"], k["paid_fen"]) == ("kept", f"{y}-06-05", BILL_FEN)
        assert (await _entry(viewer, kept))["status"] in ("paid", "closed")

        # 6 June: the date passed unpaid. The preview already suspends; the sweep marks the
        # promise broken and suspends at once (the notice was given in May: no new period).
        day = date(y, 6, 6)
        assert await _preview(api, day, broken) == [(broken.product_id, "suspend")]
        await api.sweep(day, f"op-pr{uid}-0606")
        assert await api.state(broken.product_id) == "suspended"
        b = await _promise(viewer, f"PB{uid}")
        assert (b["status"], b["closed_on"], b["paid_fen"]) == ("broken", f"{y}-06-06", 0)
        audit = ok(await viewer.get("/v1/audit", params={"entity": "promise",
                                                          "entity_id": f"PB{uid}"}), 200)
        assert [a["action"] for a in audit] == ["broken", "record"]

        period = {"from": f"{y}-05-01", "to": f"{y}-06-30"}
        report = ok(await op.get("/v1/reports/promises", params=period), 200)
        mine = [r for r in report["rows"] if r["manager_name"] == f"王经理{uid}"]
        assert mine == [{"manager_name": f"王经理{uid}", "made": 2, "kept": 1, "broken": 1,
                         "open": 0, "promised_fen": 2 * BILL_FEN, "kept_fen": BILL_FEN}]
        assert report["total"]["made"] == sum(r["made"] for r in report["rows"])
        r = await op.get("/v1/reports/promises", params=period | {"format": "csv"})
        assert r.status_code == 200, r.text
        rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert rows[0][:4] == ["客户经理", "承诺数", "已兑现", "已违约"]
        assert [f"王经理{uid}", "2", "1", "1", "0", "1200.00", "600.00"] in rows
        assert rows[-1][0] == "合计"
        # A viewer sees the managers' names masked in the CSV.
        r = await viewer.get("/v1/reports/promises", params=period | {"format": "csv"})
        assert f"王经理{uid}" not in r.text

        # The dashboard's page: the broken promise listed, names masked for a viewer.
        page = await op.get("/dashboard/promises", params=period)
        assert page.status_code == 200, page.text
        broken_table = page.text.split('id="promises-broken"')[1]
        assert f"PB{uid}" in broken_table and f"王经理{uid}" in page.text
        page = await viewer.get("/dashboard/promises", params=period)
        assert page.status_code == 200 and f"王经理{uid}" not in page.text
        assert f"PB{uid}" in page.text


async def test_the_year_quota_is_kept_and_a_refusal_writes_nothing(
    api: CreditApi, db: AsyncEngine, test_year: int
) -> None:
    y, uid = test_year + YEAR_OFFSET + 1, new_uid()
    lg = await _owing_since_march(api, uid, "pq", y)
    clock = FixedClock(at(date(y, 5, 2), 10))
    async with in_process(db, clock) as staff:
        op = staff["operator"]
        ok(await op.post("/v1/worklists/refresh", json={"as_of": clock.now().isoformat()}),
           200)
        entry = (await _entry(op, lg))["entry_id"]
        async with db.begin() as conn:  # two earlier promises this year, both broken
            for n in (1, 2):
                await conn.execute(text(
                    "INSERT INTO credit.promises (promise_id, entry_id, account_id, customer_id,"
                    " manager, status, promised_date, amount_fen, schedule, instalments, "
                    "covered_through, baseline_fen, recorded_by, recorded_role, reason, "
                    "recorded_at, recorded_on, created_at, request, closed_on) VALUES "
                    "(:p, :e, :a, 'c', 'm', 'broken', :d, 1, '[]', false, '2000-01', 1, 'x', "
                    "'operator', 'r', :at, :d, now(), '{}', :d)"),
                    {"p": f"PQ{n}{uid}", "e": entry, "a": lg.account_id,
                     "d": date(y, 1, 10 * n), "at": at(date(y, 1, 10 * n))})
        r = await op.post(f"/v1/worklists/{entry}/promises", json={
            "promise_id": f"PQ3{uid}", "promised_date": f"{y}-05-10", "amount_fen": 100,
            "reason": "再次承诺"})
        assert r.status_code == 422 and "at most 2" in r.json()["message"], r.text
        assert (await op.get(f"/v1/promises/PQ3{uid}")).status_code == 404
        # A bad body is refused and its key is free for the corrected request.
        r = await op.post(f"/v1/worklists/{entry}/promises", json={
            "promise_id": f"PQ4{uid}", "promised_date": f"{y}-04-30", "amount_fen": 100,
            "reason": "日期在过去"})
        assert r.status_code == 422 and "promised_date" in r.json()["problems"], r.text
        clock.set(at(date(y + 1, 1, 11), 10))  # a year after the first: one slot again
        ok(await op.post("/v1/worklists/refresh", json={"as_of": clock.now().isoformat()}),
           200)
        entry = (await _entry(op, lg))["entry_id"]
        made = ok(await op.post(f"/v1/worklists/{entry}/promises", json={
            "promise_id": f"PQ4{uid}", "promised_date": f"{y + 1}-01-20", "amount_fen": 100,
            "reason": "日期已改正"}))
        assert made["status"] == "open"


# --- the sweep's test of a promise is the domain's ------------------------------------------

TODAY = date(9001, 6, 10)  # no test year comes near it
CASES = [  # (instalments or the promised date only, dues now, status)
    ([(date(9001, 6, 12), 600)], [("9001-03", 600)], "open"),
    ([(date(9001, 6, 10), 600)], [("9001-03", 600)], "open"),  # the promised day itself
    ([(date(9001, 6, 9), 600)], [("9001-03", 600)], "open"),  # passed unpaid: broken
    ([(date(9001, 6, 9), 600)], [("9001-03", 1)], "open"),  # 599 of 600
    ([(date(9001, 6, 9), 600)], [], "open"),  # paid: not broken
    ([(date(9001, 6, 9), 600)], [("9001-05", 900)], "open"),  # a later bill is not owed
    ([(date(9001, 6, 9), 600)], [("9001-03", 600)], "broken"),  # closed: holds nothing
    ([(date(9001, 6, 5), 200), (date(9001, 6, 20), 400)], [("9001-03", 400)], "open"),
    ([(date(9001, 6, 5), 200), (date(9001, 6, 20), 400)], [("9001-03", 401)], "open"),
]


@pytest.mark.parametrize("steps, dues, status", CASES)
async def test_the_sweeps_promise_test_is_the_domains(
    db: AsyncEngine, steps: list[tuple[date, int]], dues: list[tuple[str, int]], status: str
) -> None:
    account, recorded = f"PRPAR{new_uid()}", datetime(9001, 5, 20, tzinfo=UTC)
    amount = sum(f for _, f in steps)
    promise = Promise("p", account, PromiseStatus(status), steps[-1][0], amount,
                      schedule(steps[-1][0], amount, steps if len(steps) > 1 else []),
                      "9001-03", 600, recorded)
    sql = (f"WITH {sweep_sql._PROMISES_SQL} SELECT {sweep_sql._promised('x')} "
           "FROM (VALUES (CAST(:account AS text))) AS x(account_id) CROSS JOIN pr")
    async with db.connect() as conn:
        tx = await conn.begin()
        try:
            await conn.execute(text(
                "INSERT INTO credit.account_positions (account_id, sequence, balance_fen, "
                "amount_due_fen, dues, customer, cause, as_of) VALUES (:a, 1, 0, 0, "
                "CAST(:dues AS jsonb), '{}', 'payment', :at)"),
                {"a": account, "at": recorded, "dues": json.dumps(
                    [{"bill_month": m, "amount_due_fen": f} for m, f in dues])})
            await conn.execute(text(
                "INSERT INTO credit.promises (promise_id, entry_id, account_id, customer_id, "
                "manager, status, promised_date, amount_fen, schedule, instalments, "
                "covered_through, baseline_fen, recorded_by, recorded_role, reason, "
                "recorded_at, recorded_on, created_at, request) VALUES (:a, 'e', :a, 'c', "
                "'m', :s, :d, :amount, CAST(:sched AS jsonb), false, '9001-03', 600, 'x', "
                "'operator', 'r', :at, :d, now(), '{}')"),
                {"a": account, "s": status, "d": promise.promised_date, "amount": amount,
                 "at": recorded, "sched": json.dumps(
                     [{"due_on": s.due_on.isoformat(), "amount_fen": s.amount_fen,
                       "cumulative_fen": s.cumulative_fen} for s in promise.schedule])})
            for day in (TODAY, TODAY + timedelta(days=15)):
                found = (await conn.execute(text(sql), {
                    "account": account, "today": day,
                    "as_of": datetime.combine(day, datetime.min.time(), UTC)})).scalar()
                assert found == promise.defers(promise.paid_fen(dues), day), (day, promise)
        finally:
            await tx.rollback()
