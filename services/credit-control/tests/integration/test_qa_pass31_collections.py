"""QA pass 31: collections escalation and promises to pay under changing facts, through the
running services: balance events on Kafka as billing-events publishes them (helpers.Ledger),
sweeps, collections runs, associated suspension (关联停机) and freezes through
credit-control's HTTP API, the worklist refresh and the promises through the same `/v1`
routes in process on a clock the test sets (a promise may not be stamped after the service's
clock, which is centuries before these business dates), then decisions, case steps, promises
and the notifier's messages read back.

Year `test_year + 22` is this module's (`qa_year`, capped at 2999 as QA pass 30's). It posts
no bill run to billing-events, so it never moves a later session's `test_year` on.

One story for every customer (a module fixture, so the sweeps are shared): low tier, ADC,
January billed on 02-01. Warning 1 on 02-10; the suspension warning of 02-25 is decided at
07:59:40 business time, so the notifier holds it for the quiet hours (20 s of wall time in a
simulated year) and it reaches the customer at 08:00; the month-end sweep suspends; the
collections runs of 03-01 and 03-11 open a case per suspended account and move it into
phase 2."""

import contextlib
from datetime import date, datetime, time
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import TokenGrant
from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.billing import BalanceCause as C
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.testing.notices import notices_heard
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, month_end, new_uid
from .staff_clients import staff_clients

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

STAFF = {"operator-token": TokenGrant(subject="wang.fang", role="operator"),
         "admin-token": TokenGrant(subject="zhang.admin", role="credit-admin")}
BILL_FEN = 60_000  # above the call list's 500 yuan: every owing account gets a call entry


# --- helpers --------------------------------------------------------------------------------

def in_process(db: AsyncEngine, clock: FixedClock) -> contextlib.AbstractAsyncContextManager[
        dict[str, httpx.AsyncClient]]:
    """credit-control's `/v1` routes on `clock`: role → client."""
    return staff_clients(db, clock, STAFF)


def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def moment(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), BUSINESS_TZ)


async def sweep(api: CreditApi, key: str, when: datetime) -> None:
    """A sweep as of `when`, after the earlier suspension warnings were heard of; one the
    mass-suspension guard holds (a shared stack may trip it) is confirmed."""
    await notices_heard(api.db)
    body = ok(await api.http.post("/v1/sweeps", json={"sweep_id": key,
                                                       "as_of": when.isoformat()}))
    if body.get("held"):
        ok(await api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm", json={}), 200)


def second_account(lg: Ledger, suffix: str, family: F = F.ADC) -> Ledger:
    """Another account of `lg`'s customer, with one product of its own."""
    first = lg.products[0]
    product = msgspec.structs.replace(
        first, product_id=f"{first.product_id}{suffix}", cpno=f"{first.cpno}{suffix}",
        name=f"{first.name}{suffix}", family=family,
        vendor="huawei" if family is F.MAS else None)
    return Ledger(f"{lg.account_id}{suffix}", lg.customer, (product,))


async def case_of(api: CreditApi, account_id: str) -> dict[str, Any]:
    found = ok(await api.http.get("/v1/collections/cases", params={"account_id": account_id}),
               200)
    assert len(found) == 1, found
    case: dict[str, Any] = ok(await api.http.get(f"/v1/collections/cases/{found[0]['case_id']}"),
                              200)
    return case


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(await notifier.get(
        "/v1/messages", params={"product_id": product_id}), 200)
    return found


async def call_entry(client: httpx.AsyncClient, lg: Ledger) -> dict[str, Any]:
    found = ok(await client.get("/v1/worklists", params={"account_id": lg.account_id,
                                                         "kind": "call"}), 200)
    assert len(found) == 1, found
    entry: dict[str, Any] = found[0]
    return entry


# --- the story ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int) -> int:
    return min(test_year + 22, 2999)


@pytest.fixture(scope="module")
async def story(api: CreditApi, db: AsyncEngine, clients: dict[str, httpx.AsyncClient],
                qa_year: int) -> dict[str, Any]:
    y, uid = qa_year, new_uid()
    jan, feb_end = f"{y}-01", month_end(y, 2)
    got: dict[str, Any] = {"y": y, "uid": uid, "feb_end": feb_end}
    owing: list[Ledger] = []
    clean: list[Ledger] = []
    # Customers with a case: an owing account and a second account that owes nothing.
    for key in ("two", "frz", "back", "ret", "wo"):
        own = ledger(uid, f"q31{key}", F.ADC, T.LOW)
        other = second_account(own, "b", F.WORK_ORDER if key == "wo" else F.ADC)
        got[key] = {"own": own, "clean": other}
        owing.append(own)
        clean.append(other)
    # "two" has a third account, owing too: two cases of one customer.
    got["two"]["more"] = second_account(got["two"]["own"], "c")
    owing.append(got["two"]["more"])
    # Promise customers: one account each.
    for key in ("held", "part"):
        got[key] = {"own": ledger(uid, f"q31{key}", F.ADC, T.LOW)}
        owing.append(got[key]["own"])
    bill = moment(date(y, 2, 1), 9)
    await api.deliver(*((lg, lg.bill_run(jan, 30_000 if lg is got["two"]["more"] else BILL_FEN,
                                         bill)) for lg in owing),
                      *((lg, lg.event(C.MASTER_DATA, bill)) for lg in clean))
    await sweep(api, f"q31{uid}-0210", at(date(y, 2, 10)))
    clock = FixedClock(moment(date(y, 2, 25), 7))
    async with in_process(db, clock) as staff:
        ok(await staff["operator"].post("/v1/worklists/refresh",
                                        json={"as_of": clock.now().isoformat()}), 200)
        for key in ("held", "part"):
            got[key]["entry"] = await call_entry(staff["operator"], got[key]["own"])
        # The 25th's sweep at 07:59:40: every suspension warning is held by the quiet hours.
        await sweep(api, f"q31{uid}-0225", moment(date(y, 2, 25), 7, 59, 40))
        for lg in owing:
            assert await api.state(lg.product_id) == "suspension_warned", lg.product_id
        # Ten seconds later, the "held" customer's manager records a promise to pay: all
        # 600.00 yuan by 03-06 (a week after the suspension the held warning threatens).
        clock.set(moment(date(y, 2, 25), 7, 59, 50))
        got["held"]["promise"] = ok(await staff["operator"].post(
            f"/v1/worklists/{got['held']['entry']['entry_id']}/promises", json={
                "promise_id": f"PRq31h{uid}", "promised_date": f"{y}-03-06",
                "amount_fen": BILL_FEN, "reason": "财务3月6日前付款",
                "at": clock.now().isoformat()}))
        # The warning had reached the notifier and was waiting for the quiet hours' end.
        got["held"]["at_promise"] = await eventually(
            lambda: messages(clients["notifier"], got["held"]["own"].product_id),
            lambda ms: any(m["template"] == "suspension_warning" for m in ms),
            what="the held suspension warning", timeout=10)
        # The "part" customer's warning leaves when the quiet hours end (20 s after it was
        # received), before its promise: one recorded while it waits would cancel it (the
        # first test), and the broken promise would then be warned of again first.
        part = await eventually(
            lambda: messages(clients["notifier"], got["part"]["own"].product_id),
            lambda ms: any(m["template"] == "suspension_warning" and m["status"] not in (
                "held", "pending", "sending") for m in ms),
            what="the part customer's suspension warning sent", timeout=60)
        assert [m["status"] for m in part if m["template"] == "suspension_warning"] in (
            ["submitted"], ["delivered"]), part
        # The next day the "part" customer promises all of it by 03-06 too.
        clock.set(moment(date(y, 2, 26), 10))
        got["part"]["promise"] = ok(await staff["operator"].post(
            f"/v1/worklists/{got['part']['entry']['entry_id']}/promises", json={
                "promise_id": f"PRq31p{uid}", "promised_date": f"{y}-03-06",
                "amount_fen": BILL_FEN, "reason": "资金周转, 3月6日前缴清",
                "at": clock.now().isoformat()}))
    await sweep(api, f"q31{uid}-0228", at(feb_end))
    for key in ("two", "frz", "back", "ret", "wo"):
        for lg in (got[key]["own"], *([got[key]["more"]] if key == "two" else [])):
            assert await api.state(lg.product_id) == "suspended", lg.product_id
    accounts = [lg.account_id for lg in (*owing, *clean)]
    got["accounts"] = accounts
    for day in (date(y, 3, 1), date(y, 3, 11)):
        ok(await api.http.post("/v1/collections/run", json={
            "as_of": at(day).isoformat(), "account_ids": accounts}), 200)
    for key in ("two", "frz", "back", "ret", "wo"):
        got[key]["case"] = await case_of(api, got[key]["own"].account_id)
        assert (got[key]["case"]["status"], got[key]["case"]["phase"]) == ("open", 2)
    got["two"]["more_case"] = await case_of(api, got["two"]["more"].account_id)
    return got


# --- 1. promises to pay ---------------------------------------------------------------------

async def test_a_held_suspension_warning_is_not_sent_once_a_promise_defers_it(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """Low tier, ADC, January 600.00 yuan. The 02-25 sweep at 07:59:40 decides the
    suspension warning naming 02-28; the quiet hours hold it until 08:00. At 07:59:50 the
    account manager records a promise to pay: 600.00 yuan by 03-06.

    Expected: the held warning does not leave. docs/collections.md "What a promise defers":
    while the promise stands the account gets "no suspension warning: a warning would
    threaten a suspension that will not be carried out during the promise"; domain.md: the
    suspension warning "is sent only where suspension will really follow", and "a reminder
    whose reason has gone before it leaves is not sent" (the same re-check cancels a held
    warning when the customer becomes exempt, QA pass 28, or the ladder restarts, QA pass
    30). The product is indeed not suspended on 02-28 (pinned here)."""
    y, held = story["y"], story["held"]["own"]
    assert story["held"]["promise"]["status"] == "open"
    assert await api.state(held.product_id) == "suspension_warned"  # not suspended on 02-28
    # When the promise was recorded, the warning was waiting for the quiet hours' end.
    assert [m["status"] for m in story["held"]["at_promise"]
            if m["template"] == "suspension_warning"] == ["held"], story["held"]["at_promise"]

    async def warnings() -> list[dict[str, Any]]:
        return [m for m in await messages(clients["notifier"], held.product_id)
                if m["template"] == "suspension_warning"]

    [sent] = await eventually(warnings, lambda found: len(found) == 1 and found[0]["status"]
                              not in ("held", "pending", "sending"),
                              what="the held suspension warning settled", timeout=60)
    assert f"如在{y}年02月28日前" in sent["text"], sent["text"]
    # Fixed: recording the promise published credit.suspension_deferred; the notifier's
    # re-check cancelled the waiting warning.
    assert sent["status"] == "cancelled", (sent["status"], sent["text"])
    assert "a promise to pay deferred the suspension" in sent["status_reason"], sent


async def test_a_promise_paid_in_part_is_broken_and_the_suspension_quotes_what_is_left(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Low tier, ADC, January 600.00 yuan, suspension warning of 02-25 (naming 02-28)
    delivered. On 02-26 the customer promises all of it by 03-06; 02-28 passes without a
    suspension (the promise defers it). On 03-02 it pays 200.00 yuan; nothing more.

    Pinned: not suspended on 02-28; the promise shows 200.00 paid and defers to 03-06; on
    03-07 the check marks it broken (200.00 of 600.00 paid) and the day's sweep suspends
    (the notice was given before the promise, docs/collections.md "Broken"); the 停机通知
    quotes what the product still owes to the cent, 400.00 yuan, dated 03-07."""
    y, uid, lg = story["y"], story["uid"], story["part"]["own"]
    pid, promise_id = lg.product_id, story["part"]["promise"]["promise_id"]
    assert await api.state(pid) == "suspension_warned"
    assert [d for d, _, on in await api.decisions(pid) if on == story["feb_end"]] == []
    await api.deliver((lg, lg.event(C.PAYMENT, moment(date(y, 3, 2), 10),
                                    [(f"{y}-01", 40_000)])))
    shown = ok(await api.http.get(f"/v1/promises/{promise_id}"), 200)
    assert (shown["status"], shown["paid_fen_now"], shown["deferred_until"]) == (
        "open", 20_000, f"{y}-03-06"), shown
    await sweep(api, f"q31{uid}-0306", at(date(y, 3, 6)))
    assert await api.state(pid) == "suspension_warned"  # the promised day itself: held
    clock = FixedClock(at(date(y, 3, 7), 19))
    async with in_process(db, clock) as staff:
        checked = ok(await staff["operator"].post(
            "/v1/promises/check", json={"as_of": clock.now().isoformat()}), 200)
    assert promise_id in checked["broken"], checked
    await sweep(api, f"q31{uid}-0307", at(date(y, 3, 7)))
    assert await api.state(pid) == "suspended"
    shown = ok(await api.http.get(f"/v1/promises/{promise_id}"), 200)
    assert (shown["status"], shown["paid_fen"], shown["closed_on"]) == (
        "broken", 20_000, f"{y}-03-07"), shown
    got = await eventually(lambda: messages(clients["notifier"], pid),
                           lambda ms: any(m["template"] == "suspension_notice_contact"
                                          for m in ms), what="停机通知 A", timeout=60)
    [notice] = [m["text"] for m in got if m["template"] == "suspension_notice_contact"]
    assert f"截至{y}年03月07日尚有400.00元欠费未缴纳,现已正式停用" in notice, notice


# --- 2. associated suspension (关联停机) under changing facts ---------------------------------

async def test_two_cases_of_one_customer_one_paid_the_other_still_holds_the_association(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]],
    story: dict[str, Any],
) -> None:
    """One customer, three accounts: A owes January 600.00 yuan, C owes January 300.00
    yuan, both suspended on 02-28 and in cases in phase 2 since 03-11; B's product owes
    nothing. On 03-12 a credit-admin approves associated suspension for A's case (B's
    product suspended for A's arrears) and, five minutes later, for C's case. On 03-13 the
    customer pays A in full, not C.

    Expected: B's product stays suspended: C's case, open and approved for 关联停机 of the
    customer's other services (seed 002 phase 2), still owes 300.00 yuan; docs/collections.md:
    an associated product is held until "its arrears are paid". Case A closes as paid, and
    A's own product is restored by the payment (pinned)."""
    y, two = story["y"], story["two"]
    admin = role_clients["credit-admin"]["credit-control"]
    a, b, c = two["own"], two["clean"], two["more"]
    case_a, case_c = two["case"]["case_id"], two["more_case"]["case_id"]
    first = ok(await admin.post(f"/v1/collections/cases/{case_a}/associated-suspension", json={
        "note": "拒不缴费,关联停机", "as_of": moment(date(y, 3, 12), 10).isoformat()}), 200)
    assert [(x["product_id"], x["status"]) for x in first["associations"]] == [
        (b.product_id, "suspended")]
    second = ok(await admin.post(f"/v1/collections/cases/{case_c}/associated-suspension", json={
        "note": "第二个账户同样欠费,关联停机", "as_of": moment(date(y, 3, 12), 10, 5).isoformat()}),
        200)
    # Fixed: the second case holds the product too, with no second suspension decision.
    assert [(x["product_id"], x["status"], x["suspend_decision_id"])
            for x in second["associations"]] == [
        (b.product_id, "suspended", first["associations"][0]["suspend_decision_id"])]
    assert [x["reason"] for x in second["steps"]
            if x["step"] == "associated_suspension" and x["product_id"] == b.product_id] == [
        f"关联停机: already suspended by association for collections case {case_a}; "
        "held for this case too"], second
    assert await api.state(b.product_id) == "suspended"
    await api.deliver((a, a.event(C.PAYMENT, moment(date(y, 3, 13), 10))))
    ok(await api.http.post("/v1/collections/run", json={
        "as_of": at(date(y, 3, 13)).isoformat(), "account_ids": story["accounts"]}), 200)
    settled = await case_of(api, a.account_id)
    assert settled["status"] == "paid", settled
    assert [(x["product_id"], x["status"], x["restore_decision_id"])
            for x in settled["associations"]] == [(b.product_id, "released", None)]
    assert (await case_of(api, c.account_id))["status"] == "open"
    assert await api.state(a.product_id) == "normal"
    assert await api.state(c.product_id) == "suspended"
    assert await api.state(b.product_id) == "suspended"
    # The second case paid: nothing holds the product any more, and it is restored.
    await api.deliver((c, c.event(C.PAYMENT, moment(date(y, 3, 14), 10))))
    ok(await api.http.post("/v1/collections/run", json={
        "as_of": at(date(y, 3, 14)).isoformat(), "account_ids": story["accounts"]}), 200)
    closed = await case_of(api, c.account_id)
    assert closed["status"] == "paid", closed
    assert [(x["product_id"], x["status"]) for x in closed["associations"]] == [
        (b.product_id, "restored")]
    assert await api.state(b.product_id) == "normal"


async def test_associated_suspension_respects_a_freeze_of_the_customer(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]],
    story: dict[str, Any],
) -> None:
    """A case in phase 2 (account A suspended for 600.00 yuan); the customer's other account
    has a product owing nothing. On 03-12 00:00 a credit-admin freezes the customer (scope
    customer: "账单争议, 核实前不停机", until 04-10); at 10:00 a credit-admin approves
    associated suspension for the case.

    Expected: nothing of the frozen customer is suspended (422, or the product skipped with
    its reason). docs/credit-control.md "Scoped emergency freeze": a freeze "stops automatic
    suspensions for a scope" for a billing error or a fault; associated suspension is
    "re-checked at execution" so as "never [to] cut off a customer by mistake", and is
    carried out as "an ordinary suspend decision" through the balance path's moves."""
    y, uid, one = story["y"], story["uid"], story["frz"]
    admin = role_clients["credit-admin"]["credit-control"]
    ok(await api.http.post("/v1/freezes", json={
        "freeze_id": f"FZq31{uid}", "scope": "customer", "value": one["own"].customer.customer_id,
        "covers_warnings": True, "reason": "账单争议, 核实前不停机", "approver": "主管张三",
        "starts_at": moment(date(y, 3, 12), 0).isoformat(),
        "until": moment(date(y, 4, 10), 0).isoformat()}))
    r = await admin.post(f"/v1/collections/cases/{one['case']['case_id']}/associated-suspension",
                         json={"note": "关联停机", "as_of": moment(date(y, 3, 12), 10).isoformat()})
    # Fixed: the approval stands (the case is in phase 2, the arrears unpaid); the frozen
    # customer's product is skipped with its reason, re-checked at execution.
    body = ok(r, 200)
    assert body["associations"] == [], body["associations"]
    assert [x["reason"] for x in body["steps"] if x["step"] == "association_skipped"
            and x["product_id"] == one["clean"].product_id] == [
        "not suspended by association: a freeze in force covers the product: its "
        "suspension waits"], body["steps"]
    view = await api.credit(one["clean"].product_id)
    assert view["state"] == "normal", [(d["decision"], d["rule_id"]) for d in view["decisions"]]


async def test_an_associated_suspension_dated_in_phase_1_is_refused(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]],
    story: dict[str, Any],
) -> None:
    """A case opened on 03-01, in phase 2 since 03-11. A credit-admin approves associated
    suspension with `as_of` 03-05 (it "dates the decisions").

    Expected: 422, nothing written: associated suspension is a phase-2 measure (seed 002:
    第二阶段 ... 关联停机; docs/collections.md "the case is open and in phase 2 or 3",
    "re-checked at execution"), and on 03-05 the case was on day 5 of phase 1; a decision
    dated then would tell the customer its service was cut off on a day it was not. (The
    same approval as of 03-12 is what the other tests of this module do.)"""
    y, one = story["y"], story["back"]
    admin = role_clients["credit-admin"]["credit-control"]
    case_id = one["case"]["case_id"]
    r = await admin.post(f"/v1/collections/cases/{case_id}/associated-suspension",
                         json={"note": "补录关联停机",
                               "as_of": moment(date(y, 3, 5), 10).isoformat()})
    view = await api.credit(one["clean"].product_id)
    assert view["state"] == "normal", [(d["decision"], d["as_of"]) for d in view["decisions"]]
    assert r.status_code == 422, r.text


async def test_a_product_suspended_by_association_is_not_pre_cancelled_by_retention(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]],
    story: dict[str, Any],
) -> None:
    """A case in phase 2 (account A, 600.00 yuan, suspended 02-28); on 03-12 a credit-admin
    approves associated suspension and the customer's other product (owing nothing) is
    suspended, its decision quoting A's 600.00 yuan. The customer pays nothing; the sweep of
    06-15 runs (more than 90 days after both suspensions: seed 004 保号期, 90 days below 4★).

    Expected: A's own product, in arrears since January, is pre-cancelled (pinned: the
    retention rule did run); the associated product is not: it owes nothing, and
    docs/collections.md says a product suspended by association is "never disconnected"
    (phase 3's 拆机 leaves it out) and only the case restores it when the arrears are paid.
    保号期 is the retention after an *arrears* suspension (domain.md)."""
    y, uid, one = story["y"], story["uid"], story["ret"]
    admin = role_clients["credit-admin"]["credit-control"]
    approved = ok(await admin.post(
        f"/v1/collections/cases/{one['case']['case_id']}/associated-suspension",
        json={"note": "关联停机", "as_of": moment(date(y, 3, 12), 10).isoformat()}), 200)
    assert [x["product_id"] for x in approved["associations"]] == [one["clean"].product_id]
    view = await api.credit(one["clean"].product_id)
    assert view["state"] == "suspended"
    [suspension] = [d for d in view["decisions"] if d["decision"] == "suspend"]
    assert suspension["context"]["amount_due_fen"] == BILL_FEN, suspension["context"]
    await sweep(api, f"q31{uid}-0615", at(date(y, 6, 15)))
    assert await api.state(one["own"].product_id) == "pre_cancel"
    view = await api.credit(one["clean"].product_id)
    assert view["state"] == "suspended", [(d["decision"], d["reason"])
                                          for d in view["decisions"]]


async def test_a_case_paid_while_its_associated_suspension_work_order_is_open(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]],
    story: dict[str, Any],
) -> None:
    """A case in phase 2 (account A, 600.00 yuan); the customer's other product is a
    work-order-flow product (工单流转型) owing nothing. On 03-12 associated suspension is
    approved: a suspension work order for it. The customer pays A in full on 03-13 before
    any operator acted; the collections run settles the case; then the operator works
    through every open work order of the product.

    Pinned: the case closes as paid with the product's restore recorded; the product ends
    `normal` with no work order left open (the payment's restore supersedes the
    suspension in flight, docs/credit-control.md: "A payment racing a suspension in flight:
    restore wins"), never left suspended for a debt that is paid."""
    y, one = story["y"], story["wo"]
    admin = role_clients["credit-admin"]["credit-control"]
    pid, own = one["clean"].product_id, one["own"]
    approved = ok(await admin.post(
        f"/v1/collections/cases/{one['case']['case_id']}/associated-suspension",
        json={"note": "关联停机", "as_of": moment(date(y, 3, 12), 10).isoformat()}), 200)
    assert [x["product_id"] for x in approved["associations"]] == [pid]
    assert await api.state(pid) == "suspend_requested"
    assert [w["action"] for w in await api.work_orders(product_id=pid)] == ["suspend"]
    await api.deliver((own, own.event(C.PAYMENT, moment(date(y, 3, 13), 10))))
    ok(await api.http.post("/v1/collections/run", json={
        "as_of": at(date(y, 3, 13)).isoformat(), "account_ids": story["accounts"]}), 200)
    case = await case_of(api, own.account_id)
    assert case["status"] == "paid", case
    assert [a["status"] for a in case["associations"]] == ["restored"], case["associations"]
    await api.finish_work_orders(pid)
    assert await api.state(pid) == "normal"
    left = [w for w in await api.work_orders(product_id=pid)
            if w["status"] not in ("done", "cancelled", "superseded")]
    assert left == [], left


# --- 3. bad input and idempotency -----------------------------------------------------------

async def test_bad_input_to_cases_and_promises_is_a_clear_4xx_and_changes_nothing(
    api: CreditApi, db: AsyncEngine, role_clients: dict[str, dict[str, httpx.AsyncClient]],
    story: dict[str, Any],
) -> None:
    """Unknown ids 404; business times beyond the bounds, a negative or zero amount, an
    empty note, an unknown phase or status 422; a promise key reused on another entry 409;
    the same promise again answers the first answer; never a 500, and nothing changes (the
    case's steps, the promises of the entries)."""
    y, uid = story["y"], story["uid"]
    admin = role_clients["credit-admin"]["credit-control"]
    case_id = story["frz"]["case"]["case_id"]
    before = ok(await api.http.get(f"/v1/collections/cases/{case_id}"), 200)
    path = f"/v1/collections/cases/{case_id}/associated-suspension"
    for body in ({"note": ""}, {"note": "x", "as_of": "9999-01-01T00:00:00+08:00"},
                 {"note": "x", "as_of": "1999-12-31T00:00:00+08:00"},
                 {"note": "x", "as_of": "not a time"}, {"note": "x", "by": "someone"}):
        r = await admin.post(path, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await admin.post(f"/v1/collections/cases/CC-nope{uid}/associated-suspension",
                         json={"note": "x"})
    assert r.status_code == 404, r.text
    for body in ({"as_of": "9999-01-01T00:00:00+08:00"},
                 {"as_of": at(date(y, 3, 12)).isoformat(), "account_ids": ["x"] * 1001},
                 {"as_of": at(date(y, 3, 12)).isoformat(), "account_ids": ["a\u0000b"]}):
        r = await api.http.post("/v1/collections/run", json=body)
        assert r.status_code == 422, (str(body)[:80], r.text)
    for params in ({"phase": "4"}, {"status": "bogus"}, {"limit": "0"}):
        r = await api.http.get("/v1/collections/cases", params=params)
        assert r.status_code == 422, (params, r.text)
    r = await api.http.post("/v1/promises/check", json={"as_of": "9999-01-01T00:00:00+08:00"})
    assert r.status_code == 422, r.text
    r = await api.http.get(f"/v1/promises/PRnope{uid}")
    assert r.status_code == 404, r.text
    r = await api.http.get("/v1/promises", params={"status": "bogus"})
    assert r.status_code == 422, r.text
    assert ok(await api.http.get(f"/v1/collections/cases/{case_id}"), 200)["steps"] == (
        before["steps"])

    held, part = story["held"], story["part"]
    clock = FixedClock(moment(date(y, 2, 26), 11))
    async with in_process(db, clock) as staff:
        op = staff["operator"]
        base = {"promise_id": f"PRq31x{uid}", "promised_date": f"{y}-03-06",
                "amount_fen": 10_000, "reason": "部分缴费", "at": clock.now().isoformat()}
        r = await op.post(f"/v1/worklists/WL-nope{uid}/promises", json=base)
        assert r.status_code == 404, r.text
        entry_path = f"/v1/worklists/{part['entry']['entry_id']}/promises"
        for bad in ({"amount_fen": -100}, {"amount_fen": 0}, {"promised_date": "9999-12-31"},
                    {"at": "9999-01-01T00:00:00+08:00"}, {"promised_date": f"{y}-02-01"},
                    {"instalments": [{"due_on": f"{y}-03-06", "amount_fen": -1}]}):
            r = await op.post(entry_path, json={**base, **bad})
            assert r.status_code == 422, (bad, r.text)
        # The held customer's first promise again: the same answer; its key on another
        # entry: 409.
        first = held["promise"]
        again_body = {"promise_id": first["promise_id"], "promised_date": f"{y}-03-06",
                      "amount_fen": BILL_FEN, "reason": "财务3月6日前付款",
                      "at": moment(date(y, 2, 25), 7, 59, 50).isoformat()}
        again = ok(await op.post(f"/v1/worklists/{held['entry']['entry_id']}/promises",
                                 json=again_body))
        assert again["promise_id"] == first["promise_id"] and again["recorded_at"] == (
            first["recorded_at"]), again
        r = await op.post(entry_path, json=again_body)
        assert r.status_code == 409, r.text
        for entry in (held["entry"], part["entry"]):
            listed = ok(await op.get("/v1/promises", params={"entry_id": entry["entry_id"]}),
                        200)
            assert len(listed) == 1, listed
