"""QA pass 34: reconciliation repairs drift (a lost block 漏停, a lost restore 错停, sent
through the chain again by credit-control under the next sequence) and a withdrawn suspension
warning is not a failed one (owed again, never toward CREDIT_NOTICE_MAX_WARNINGS), as billing
and collections staff meet them through the running services.

Balance events go straight to Kafka as billing-events publishes them (helpers.Ledger); sweeps,
repairs, the unheard-warnings page and the explain page through credit-control's HTTP API; the
reconciliation run's repair in process (`gateway_adapter.service_layer.reconcile`, scoped to
one product, as the gateway-adapter's own test drives it) against the running credit-control;
drift faked as that test fakes it (the gateway's block flipped in `gateway.chain_products`,
credit-control's last command two hours old); the notifier's outcomes of a suspension warning
(`failed`, `cancelled`) published as the notifier publishes them, while the notifier itself
holds the warning for the quiet hours (decided at 07:59:40 business time). Year
`test_year + 27` is this module's (`qa_year`, capped at 2999); no bill run is posted to
billing-events.

The story (module fixtures, so the sweeps are shared): low tier MAS products billed for
January on 02-01, suspension-warned on 02-25 and suspended at the month end; ADC products
billed for March on 04-01 for the notice ladder; a sweep 90 days after the suspension
pre-cancels what is still suspended."""

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, SystemClock
from common.contracts.billing import BalanceCause as C
from common.contracts.gateway import (
    ChainStage,
    ProvisioningAction,
    ProvisioningResult,
    StageOutcome,
)
from common.contracts.notifier import NoticeOutcome, NoticeStatus
from common.contracts.reconciliation import ReconciliationReport
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.envelope import wrap
from common.outbox import Outbox
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from gateway_adapter.adapters import tables as gateway_tables
from gateway_adapter.adapters.credit_control import DesiredChainSource
from gateway_adapter.service_layer import reconcile as gateway_reconcile
from gateway_adapter.service_layer.context import GatewayContext
from tests.reliability.invariants.checks import check_chain

from .helpers import CreditApi, Ledger, at, ledger, month_end, new_uid, qa_year_after

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

BILL_FEN = 4_000
MAS_KEYS = ("pay", "resusp", "pre", "dup", "vend", "race")
ADC_KEYS = ("mix", "paid")
NOTICES_A_B = ("suspension_notice_contact", "suspension_notice_manager")


# --- helpers --------------------------------------------------------------------------------

def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def moment(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), BUSINESS_TZ)


async def sweep(api: CreditApi, key: str, when: datetime, heard: str | None = None) -> None:
    """A sweep as of `when`; first the suspension warnings of `heard` (a product prefix)
    heard of; one the mass-suspension guard holds (a shared stack) is confirmed."""
    if heard is not None:
        await notices_heard(api.db, product_prefix=heard)
    body = ok(await api.http.post("/v1/sweeps", json={"sweep_id": key,
                                                       "as_of": when.isoformat()}), 201)
    if body.get("held"):
        ok(await api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm", json={}))


async def submit(gateway: httpx.AsyncClient, product_id: str) -> int:
    """What the enterprise's MAS server gets for one SMS now (200 sent, 403 blocked)."""
    r = await gateway.post("/v1/gateway/submit", json={
        "product_id": product_id, "recipient": "13800138000", "text": "会议通知"})
    assert r.status_code in (200, 403), r.text
    return r.status_code


async def chain(gateway: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(await gateway.get(f"/v1/products/{product_id}/chain"))
    return found


async def templates(notifier: httpx.AsyncClient, product_id: str) -> list[str]:
    found = ok(await notifier.get("/v1/messages", params={"product_id": product_id}))
    return [m["template"] for m in found]


async def state(api: CreditApi, lg: Ledger, want: str, timeout: float = 45) -> dict[str, Any]:
    return await eventually(lambda: api.credit(lg.product_id), lambda c: c["state"] == want,
                            what=f"{lg.product_id} {want}", timeout=timeout)


async def drift(db: AsyncEngine, product_id: str, blocked: bool) -> None:
    """The gateway lost its state for the product, found two hours after credit-control's
    last command: a settled difference (as test_gateway_reconciliation_repair fakes it)."""
    async with db.begin() as conn:
        changed = await conn.execute(text(
            "UPDATE gateway.chain_products SET gateway_blocked = :b WHERE product_id = :p"),
            {"b": blocked, "p": product_id})
        assert changed.rowcount == 1
        await conn.execute(text(
            "UPDATE credit.product_credit SET command_sent_at = now() - interval '2 hours' "
            "WHERE product_id = :p"), {"p": product_id})


async def row(db: AsyncEngine, product_id: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(
            "SELECT state, command_seq, pending_command_id, pending_work_order_id, "
            "command_sent_at, notice_failures, notice_withdrawals, suspension_warning_id "
            "FROM credit.product_credit WHERE product_id = :p"), {"p": product_id})).one()


class Repairs:
    """The gateway's reconciliation run with repair, in process, scoped to one product."""

    def __init__(self, db: AsyncEngine, credit: httpx.AsyncClient) -> None:
        self.ctx = GatewayContext(db, Outbox(gateway_tables.outbox), SystemClock())
        token = credit.headers["Authorization"].removeprefix("Bearer ")
        self.source = DesiredChainSource(str(credit.base_url), token)

    async def run(self, product_id: str, repair: bool = True) -> ReconciliationReport:
        return await gateway_reconcile.reconcile(self.ctx, prefix=product_id,
                                                 source=self.source, repair=repair)


async def publish_outcome(api: CreditApi, lg: Ledger, decision_id: str, status: NoticeStatus,
                          when: datetime, reason: str) -> None:
    """The notifier's outcome of a suspension warning, as the notifier publishes it."""
    outcome = NoticeOutcome(
        decision_id=decision_id, product_id=lg.product_id, account_id=lg.account_id,
        template="suspension_warning", status=status, at=when, wall_at=datetime.now(UTC),
        reason=reason, permanent=False)
    await api.publish(wrap(outcome, key=lg.account_id, source="test-notifier",
                           occurred_at=datetime.now(UTC)))


async def ladder(api: CreditApi, lg: Ledger) -> dict[str, Any]:
    found: dict[str, Any] = (await api.credit(lg.product_id))["ladder"]
    return found


async def lose_warning(api: CreditApi, lg: Ledger, status: NoticeStatus,
                       reason: str) -> dict[str, Any]:
    """The product's current suspension warning's SMS `status` (failed / cancelled)."""
    current = await ladder(api, lg)
    warned = datetime.combine(date.fromisoformat(current["suspension_warned_on"]),
                              time(8), BUSINESS_TZ)
    await publish_outcome(api, lg, current["suspension_warning_id"], status, warned, reason)
    return await eventually(lambda: ladder(api, lg),
                            lambda d: d["notice"]["status"] == status.value,
                            what=f"{lg.product_id}'s warning {status.value}", timeout=30)


# --- the story ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int, db: AsyncEngine) -> int:
    """`test_year + 27` (capped at 2999), or, when a session sharing the stack already
    decided in a later year, the year after its newest decision: a sweep of a later
    business day acts on every owing product, these too, and moves their ladder past this
    module's dates (a sweep leaves a product whose last change is after its day alone)."""
    return await qa_year_after(db, test_year, 27)


@pytest.fixture(scope="module")
async def story(api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
                qa_year: int) -> dict[str, Any]:
    """MAS products suspended at the end of February (the chain confirmed)."""
    y, uid = qa_year, new_uid()
    prefix = f"Pq34{uid}"
    got: dict[str, Any] = {"y": y, "uid": uid, "prefix": prefix,
                           "repairs": Repairs(db, clients["credit-control"])}
    for key in MAS_KEYS:
        got[key] = ledger(key, f"q34{uid}", F.MAS, T.LOW)
    bill = at(date(y, 2, 1), 9)
    await api.deliver(*((got[k], got[k].bill_run(f"{y}-01", BILL_FEN, bill)) for k in MAS_KEYS))
    await sweep(api, f"q34{uid}-0225", at(date(y, 2, 25)))
    await sweep(api, f"q34{uid}-0228", at(month_end(y, 2)), heard=prefix)
    for key in MAS_KEYS:
        await state(api, got[key], "suspended", timeout=60)
    return got


# --- 1. a lost block repaired just before the customer pays --------------------------------

async def test_a_lost_block_repaired_then_paid_ends_open_and_told_once(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Suspended MAS product; the gateway lost the block (the enterprise sends again: 漏停).
    The reconciliation run repairs it (suspend, sequence 2) and, before the gateway has it,
    the customer pays in full.

    Pinned (fine): the repair sends suspend under sequence 2 and moves no credit state; the
    payment's restore goes as sequence 3 and wins; the product ends normal and open at the
    gateway, with exactly one 开机通知 and its 停机通知 A/B once each (the repair is no new
    suspension); reconciliation then finds nothing."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    lg: Ledger = story["pay"]
    pid, y = lg.product_id, story["y"]
    await drift(db, pid, blocked=False)
    assert await submit(gateway, pid) == 200
    report = await story["repairs"].run(pid)
    assert (report.missed_suspensions, report.repaired, report.not_repaired) == (1, 1, 0), report
    [done] = report.repairs
    assert (done.outcome, done.action, done.sequence) == ("repaired", "suspend", 2), done
    assert await api.state(pid) == "suspended"
    await api.deliver((lg, lg.payment(at(date(y, 3, 1), 10))))
    await state(api, lg, "normal", timeout=60)
    await eventually(lambda: submit(gateway, pid), lambda s: s == 200, timeout=30,
                     what="open after the payment")
    found = await chain(gateway, pid)
    assert (found["gateway"]["blocked"], found["gateway"]["sequence"]) == (False, 3), found
    sent = await eventually(lambda: templates(notifier, pid),
                            lambda ts: "restore_notice" in ts, timeout=30, what="开机通知")
    assert sent.count("restore_notice") == 1, sent
    assert [sent.count(t) for t in NOTICES_A_B] == [1, 1], sent
    clean = await story["repairs"].run(pid, repair=False)
    assert (clean.total, clean.in_flight) == (0, 0), clean
    r = await row(db, pid)
    assert (r.state, r.command_seq, r.pending_command_id) == ("normal", 3, None), r
    timeline = ok(await api.http.get(f"/v1/products/{pid}/timeline"))
    assert ("suspend", 2) in {(s["action"], s["sequence"]) for s in timeline["chain_steps"]}
    assert [c["sent"]["sequence"] for c in timeline["chain_repairs"]] == [2], timeline


async def test_a_lost_block_of_a_product_whose_vendor_changed_is_repaired_for_the_new_one(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Suspended MAS (Huawei); billing moves it to Jiaxun while it is suspended (master
    data, still owing); the gateway lost the block.

    Pinned (fine): the repair goes out for the new vendor and the gateway blocks again;
    the credit state does not move."""
    gateway = clients["gateway-adapter"]
    lg: Ledger = story["vend"]
    pid, y = lg.product_id, story["y"]
    lg.products = (msgspec.structs.replace(lg.products[0], vendor="jiaxun"),)
    await api.deliver((lg, lg.event(C.MASTER_DATA, at(date(y, 3, 1), 10),
                                    [(f"{y}-01", BILL_FEN)])))
    await drift(db, pid, blocked=False)
    report = await story["repairs"].run(pid)
    assert report.repaired == 1, report
    await eventually(lambda: submit(gateway, pid), lambda s: s == 403, timeout=30,
                     what="blocked again")
    found = await chain(gateway, pid)
    newest = max(found["attempts"], key=lambda a: a["sequence"])
    assert (newest["sequence"], newest["outcome"]) == (2, "applied"), found["attempts"]
    assert await api.state(pid) == "suspended"



async def test_a_repair_and_a_payment_racing_for_the_product_end_open_and_told_once(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Suspended MAS product, its block lost; the gateway's repair request and the
    customer's payment arrive while something else holds the product's row (both wait for
    its lock, then go in either order).

    Pinned (fine): whichever goes first, the product ends normal and open at the gateway,
    told once (one 开机通知), never blocked after paying; the sequence ends one past the
    last command sent."""
    credit, gateway, notifier = (clients["credit-control"], clients["gateway-adapter"],
                                 clients["notifier"])
    lg: Ledger = story["race"]
    pid, y = lg.product_id, story["y"]
    await drift(db, pid, blocked=False)
    item = {"product_id": pid, "desired": "suspend", "sequence": 1, "gateway_blocked": False,
            "gateway_sequence": 1}
    async with db.begin() as conn:
        await conn.execute(text(
            "SELECT 1 FROM credit.product_credit WHERE product_id = :p FOR UPDATE"), {"p": pid})
        asked = asyncio.create_task(credit.post("/v1/provisioning/repairs",
                                                json={"items": [item]}))
        await api.publish(lg.payment(at(date(y, 3, 1), 10)))
        await asyncio.sleep(1.5)
    answer = ok(await asked)
    await api.applied(lg)
    await state(api, lg, "normal", timeout=60)
    await eventually(lambda: submit(gateway, pid), lambda s: s == 200, timeout=30,
                     what="open after the payment")
    sent = await eventually(lambda: templates(notifier, pid),
                            lambda ts: "restore_notice" in ts, timeout=30, what="开机通知")
    assert sent.count("restore_notice") == 1, sent
    r = await row(db, pid)
    repaired = answer["items"][0]["outcome"] == "repaired"
    assert (r.state, r.command_seq) == ("normal", 3 if repaired else 2), (answer, r)
    found = await chain(gateway, pid)
    assert found["gateway"]["blocked"] is False, found

# --- 2. the repair endpoint: one product twice in a batch, bad input ------------------------

async def test_the_same_product_twice_in_one_batch_sends_one_command(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Suspended MAS product, its block lost; credit-control asked to repair it twice in one
    request (a gateway's chunk that lists it twice), then asked for the action it does not
    want.

    Pinned (fine): the first item is repaired (suspend, sequence 2), the second refused as
    moved on; the wrong action refused with what credit-control wants; one audit entry;
    the gateway blocks the enterprise again; the credit state does not move."""
    credit, gateway = clients["credit-control"], clients["gateway-adapter"]
    pid = story["dup"].product_id
    await drift(db, pid, blocked=False)
    item = {"product_id": pid, "desired": "suspend", "sequence": 1, "gateway_blocked": False,
            "gateway_sequence": 1}
    answer = ok(await credit.post("/v1/provisioning/repairs", json={"items": [item, item]}))
    assert [(i["outcome"], i.get("sequence")) for i in answer["items"]] == [
        ("repaired", 2), ("refused", None)], answer
    assert "moved on" in answer["items"][1]["detail"], answer
    wrong = ok(await credit.post("/v1/provisioning/repairs", json={"items": [
        {**item, "desired": "restore", "sequence": 2, "gateway_blocked": True}]}))
    assert wrong["items"][0]["outcome"] == "refused", wrong
    assert "wants suspend" in wrong["items"][0]["detail"], wrong
    audit = ok(await credit.get("/v1/audit", params={"entity": "chain_repair",
                                                     "entity_id": pid}))
    assert [a["new"]["sequence"] for a in audit] == [2], audit
    await eventually(lambda: submit(gateway, pid), lambda s: s == 403, timeout=30,
                     what="the repaired block")
    r = await row(db, pid)
    assert (r.state, r.command_seq, r.pending_command_id) == ("suspended", 2, None), r


BAD_REPAIRS: list[tuple[str, Any]] = [
    ("nul in the product id", {"items": [{"product_id": "P\u0000x", "desired": "suspend",
                                          "sequence": 1, "gateway_blocked": False}]}),
    ("1001 items", {"items": [{"product_id": f"x{i}", "desired": "suspend", "sequence": 1,
                               "gateway_blocked": False} for i in range(1001)]}),
    ("an unknown field", {"items": [{"product_id": "x", "desired": "suspend", "sequence": 1,
                                     "gateway_blocked": False, "force": True}]}),
    ("a sequence past bigint", {"items": [{"product_id": "x", "desired": "suspend",
                                           "sequence": 2**63, "gateway_blocked": False}]}),
    ("a gateway sequence as text", {"items": [{"product_id": "x", "desired": "suspend",
                                               "sequence": 1, "gateway_blocked": False,
                                               "gateway_sequence": "many"}]}),
    ("a list, not an object", [{"product_id": "x"}]),
    ("items null", {"items": None}),
]


@pytest.mark.parametrize(("what", "body"), BAD_REPAIRS, ids=[w for w, _ in BAD_REPAIRS])
async def test_bad_repair_requests_are_422_and_change_nothing(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, story: dict[str, Any],
    what: str, body: Any,
) -> None:
    """Pinned (fine): each is a 422 naming the problem, and no product moves."""
    credit = clients["credit-control"]
    pid = story["dup"].product_id
    before = await row(db, pid)
    r = await credit.post("/v1/provisioning/repairs", json=body)
    assert r.status_code == 422, (what, r.status_code, r.text[:300])
    assert r.json(), what
    assert await row(db, pid) == before


async def test_malformed_json_to_the_repair_endpoint_is_a_4xx(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    credit = clients["credit-control"]
    r = await credit.post("/v1/provisioning/repairs", content=b"{\"items\": [",
                          headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


async def test_a_reconciliation_asked_for_a_very_long_stuck_after_is_a_4xx(
    clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """A credit-admin asks the gateway for a reconciliation treating anything younger than
    ~31,700 years as on its way (`stuck_after_s=1e12`), scoped to one product (a GET only
    looks; `POST /v1/reconciliation/runs`, which now repairs, takes the same parameter
    through the same `_seconds`)."""
    gateway = clients["gateway-adapter"]
    for value in ("1e12", "1e20", "inf"):
        r = await gateway.get("/v1/reconciliation", params={
            "product_prefix": story["dup"].product_id, "stuck_after_s": value})
        assert r.status_code < 500, (value, r.status_code, r.text[:300])


# --- 3. spring: a lost restore, then new arrears; the notice ladder ------------------------

@pytest.fixture(scope="module")
async def spring(api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
                 story: dict[str, Any]) -> dict[str, Any]:
    """`resusp` pays on 03-02 (restored), the gateway then blocks it again (错停) and the
    run repairs it; March is billed on 04-01 for it and the ADC products. Suspension
    warnings on 04-25 (07:59:40: the notifier holds them until 08:00): `mix` failed,
    `paid` withdrawn (then paid in full); 04-26 `mix` withdrawn; 04-27 `mix` failed; the
    third warning's deadline warns `mix` again (two failures: no exception yet), the unheard
    page read while that warning waits, then it fails too; at its deadline the sweep
    suspends (`mix`: an exception, three failures; `resusp`: its own notice)."""
    y, uid, prefix = story["y"], story["uid"], story["prefix"]
    gateway = clients["gateway-adapter"]
    got: dict[str, Any] = {}
    resusp: Ledger = story["resusp"]
    await api.deliver((resusp, resusp.payment(at(date(y, 3, 2), 10))))
    await state(api, resusp, "normal", timeout=60)
    await eventually(lambda: submit(gateway, resusp.product_id), lambda s: s == 200,
                     timeout=30, what="resusp open after paying")
    await drift(db, resusp.product_id, blocked=True)
    got["resusp_repair"] = await story["repairs"].run(resusp.product_id)
    await eventually(lambda: submit(gateway, resusp.product_id), lambda s: s == 200,
                     timeout=30, what="the repaired restore lets resusp send")
    for key in ADC_KEYS:
        story[key] = ledger(key, f"q34{uid}", F.ADC, T.LOW)
    bill = at(date(y, 4, 1), 9)
    await api.deliver(*((story[k], story[k].bill_run(f"{y}-03", BILL_FEN, bill))
                        for k in ("resusp", *ADC_KEYS)))
    mix: Ledger = story["mix"]
    paid: Ledger = story["paid"]
    await sweep(api, f"q34{uid}-0425", moment(date(y, 4, 25), 7, 59, 40))
    got["w1"] = await lose_warning(api, mix, NoticeStatus.FAILED, "submit dead-lettered")
    got["p1"] = await lose_warning(api, paid, NoticeStatus.CANCELLED, "paid")
    await api.deliver((paid, paid.payment(moment(date(y, 4, 25), 12))))
    got["paid_after"] = await state(api, paid, "normal")
    await sweep(api, f"q34{uid}-0426", moment(date(y, 4, 26), 7, 59, 40))
    got["w2"] = await lose_warning(api, mix, NoticeStatus.CANCELLED, "promise to pay")
    await sweep(api, f"q34{uid}-0427", moment(date(y, 4, 27), 7, 59, 40))
    got["w3"] = await lose_warning(api, mix, NoticeStatus.FAILED, "submit dead-lettered")
    third = date.fromisoformat(got["w3"]["suspension_deadline"])
    await sweep(api, f"q34{uid}-d3", moment(third, 7, 59, 40))
    got["state_at_third"] = await api.state(mix.product_id)
    got["w4_waiting"] = await ladder(api, mix)
    fourth = date.fromisoformat(got["w4_waiting"]["suspension_deadline"])
    r = await api.http.get("/v1/notices/unheard", params={
        "as_of": moment(fourth, 20).isoformat(), "after": prefix, "limit": 1000})
    got["unheard"] = [i for i in ok(r)["items"] if i["product_id"].startswith(prefix)]
    got["w4"] = await lose_warning(api, mix, NoticeStatus.FAILED, "submit dead-lettered")
    await sweep(api, f"q34{uid}-d4", at(fourth))
    await eventually(lambda: ladder(api, resusp), lambda d: d["notice"]["status"] == "delivered",
                     timeout=45, what="resusp's warning delivered")
    await sweep(api, f"q34{uid}-0515", at(date(y, 5, 15)))
    await api.settled(resusp, timeout=60)
    return got


async def test_a_lost_restore_repaired_then_new_arrears_suspend_again(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any], spring: dict[str, Any],
) -> None:
    """Paid and restored (sequence 2); the gateway blocks it again (错停). The run repairs
    it (restore, sequence 3); March's bill is not paid: warned on 04-25, suspended at the
    month's end.

    Pinned (fine): the repair restores under sequence 3 without a decision; the new
    suspension goes as sequence 4 and the gateway blocks the product; no second 开机通知
    from the repair; reconciliation finds nothing."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    lg: Ledger = story["resusp"]
    report = spring["resusp_repair"]
    assert (report.wrong_suspensions, report.repaired) == (1, 1), report
    assert (report.repairs[0].action, report.repairs[0].sequence) == ("restore", 3), report
    assert await api.state(lg.product_id) == "suspended"
    assert await submit(gateway, lg.product_id) == 403
    found = await chain(gateway, lg.product_id)
    assert (found["gateway"]["blocked"], found["gateway"]["sequence"]) == (True, 4), found
    sent = await templates(notifier, lg.product_id)
    assert sent.count("restore_notice") == 1, sent
    clean = await story["repairs"].run(lg.product_id, repair=False)
    assert clean.total == 0, clean


async def test_failed_withdrawn_failed_failed_is_an_exception_at_the_third_failure(
    api: CreditApi, story: dict[str, Any], spring: dict[str, Any],
) -> None:
    """ADC, low tier, CREDIT_NOTICE_MAX_WARNINGS 3: the suspension warning's SMS fails,
    the next is withdrawn (a promise), the next two fail.

    Pinned (fine): each lost warning is owed again under a new id; after the third warning
    (two failures, one withdrawal) its deadline warns again instead of suspending; the
    fourth failing makes three failures: the suspension at its deadline is the exception
    "3 suspension warnings in a row failed"."""
    mix: Ledger = story["mix"]
    counts = [(spring[w]["notice"]["lost_warnings"], spring[w]["notice"]["withdrawn_warnings"])
              for w in ("w1", "w2", "w3", "w4")]
    assert counts == [(1, 0), (1, 1), (2, 1), (3, 1)], counts
    ids = {spring[w]["suspension_warning_id"] for w in ("w1", "w2", "w3", "w4")}
    assert len(ids) == 4, ids
    assert spring["state_at_third"] == "suspension_warned"
    assert await api.state(mix.product_id) == "suspended"
    [suspension] = [d for d in (await api.credit(mix.product_id))["decisions"]
                    if d["decision"] == "suspend"]
    assert "exception: 3 suspension warnings in a row failed" in suspension["reason"], (
        suspension["reason"])


async def test_the_unheard_page_counts_failed_and_withdrawn_apart(
    spring: dict[str, Any], story: dict[str, Any],
) -> None:
    """The fourth warning waiting (no outcome yet), read as of its deadline.

    Pinned (fine): listed, not lost yet, lost_warnings 2 (failed), withdrawn_warnings 1."""
    [item] = [i for i in spring["unheard"] if i["product_id"] == story["mix"].product_id]
    assert item["product_id"] == story["mix"].product_id
    assert (item["lost_warnings"], item["withdrawn_warnings"], item["lost"]) == (2, 1, False), item


# --- 4. summer: a new cycle after a withdrawn warning; a pre-cancelled product -------------

@pytest.fixture(scope="module")
async def summer(api: CreditApi, story: dict[str, Any], spring: dict[str, Any]
                 ) -> dict[str, Any]:
    """`paid` (its warning withdrawn, then paid in full on 04-25) is billed for April on
    05-01; sweeps on 05-02 and 05-30 (the latter also pre-cancels what has been suspended
    since 02-28: 90 days for low tier)."""
    y, uid = story["y"], story["uid"]
    paid: Ledger = story["paid"]
    got: dict[str, Any] = {"restarted": await api.credit(paid.product_id)}
    await api.deliver((paid, paid.bill_run(f"{y}-04", BILL_FEN, at(date(y, 5, 1), 9))))
    await sweep(api, f"q34{uid}-0502", at(date(y, 5, 2)))
    got["0502"] = await api.credit(paid.product_id)
    await sweep(api, f"q34{uid}-0530", at(date(y, 5, 30)))
    got["0530"] = await api.credit(paid.product_id)
    return got


async def test_a_withdrawn_warning_then_paid_in_full_restarts_the_ladder(
    story: dict[str, Any], summer: dict[str, Any],
) -> None:
    """ADC, low tier: March's suspension warning withdrawn (paid), the customer pays in
    full the same day; April is billed on 05-01.

    Expected: the new cycle starts afresh: 05-02 is only the bill notice's day (no
    suspension warning owed "again" from the last cycle), the warning of the new cycle
    comes on its day with no failed or withdrawn warnings counted."""
    early = summer["0502"]
    assert early["state"] == "warned", (early["state"], early["ladder"])
    late = summer["0530"]
    assert late["state"] == "suspension_warned", late["ladder"]
    notice = late["ladder"]["notice"]
    assert (notice["lost_warnings"], notice["withdrawn_warnings"]) == (0, 0), late["ladder"]


async def test_the_explain_page_after_the_restart_counts_no_withdrawn_warning(
    story: dict[str, Any], summer: dict[str, Any],
) -> None:
    """Just after paying in full (normal, a new cycle), the explain page's ladder is this
    cycle's: docs/rules.md, `ladder.notice.withdrawn_warnings` counts the withdrawn
    warnings of this ladder."""
    restarted = summer["restarted"]
    assert restarted["state"] == "normal"
    notice = restarted["ladder"]["notice"]
    assert (notice["lost_warnings"], notice["withdrawn_warnings"]) == (0, 0), restarted["ladder"]
    # QA pass 34 found the old ladder's 'cancelled' and count here: no warning, no notice.
    assert (notice["status"], restarted["ladder"]["suspension_warning_id"]) == (None, None)


async def test_a_pre_cancelled_product_whose_block_was_lost_is_blocked_again(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any], summer: dict[str, Any],
) -> None:
    """MAS, suspended 02-28, pre-cancelled on 05-30 (保号期 over); the gateway lost the
    block.

    Pinned (fine): the run repairs it (suspend, sequence 2); it stays pre_cancel; the
    gateway blocks it again."""
    gateway = clients["gateway-adapter"]
    pid = story["pre"].product_id
    assert await api.state(pid) == "pre_cancel"
    await drift(db, pid, blocked=False)
    report = await story["repairs"].run(pid)
    assert (report.missed_suspensions, report.repaired) == (1, 1), report
    assert (report.repairs[0].action, report.repairs[0].sequence) == ("suspend", 2), report
    await eventually(lambda: submit(gateway, pid), lambda s: s == 403, timeout=30,
                     what="the pre-cancelled product blocked again")
    assert await api.state(pid) == "pre_cancel"


async def test_a_repair_right_after_a_repair_is_refused_by_repair_after(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, story: dict[str, Any],
    summer: dict[str, Any],
) -> None:
    """The pre-cancelled product's repaired block is lost again at once; a credit-admin's
    run with stuck_after 1 ms asks again.

    Pinned (fine): credit-control refuses (its last command left under five minutes ago);
    nothing sent, the sequence stays 2."""
    pid = story["pre"].product_id
    await eventually(lambda: row(db, pid), lambda r: r.command_seq == 2, what="seq 2")
    async with db.begin() as conn:
        await conn.execute(text(
            "UPDATE gateway.chain_products SET gateway_blocked = false WHERE product_id = :p"),
            {"p": pid})
    repairs: Repairs = story["repairs"]
    try:
        report = await gateway_reconcile.reconcile(
            repairs.ctx, prefix=pid, source=repairs.source, repair=True,
            stuck_after=timedelta(milliseconds=1))
        assert (report.repaired, report.not_repaired) == (0, 1), report
        assert report.repairs[0].outcome == "refused", report.repairs[0].detail
        assert "300 s" in report.repairs[0].detail, report
        assert (await row(db, pid)).command_seq == 2
    finally:
        async with db.begin() as conn:  # the block back, as the repair left it
            await conn.execute(text(
                "UPDATE gateway.chain_products SET gateway_blocked = true "
                "WHERE product_id = :p"), {"p": pid})


async def test_the_invariant_checker_accepts_the_repairs(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any], summer: dict[str, Any],
) -> None:
    """After every repair above (commands with no decision of their own, sequences bumped):
    the invariant checker's chain check (gateway block against credit state, one result
    per command attempt and stage, the gateway's reconciliation) finds nothing."""
    gateway = clients["gateway-adapter"]
    token = gateway.headers["Authorization"].removeprefix("Bearer ")
    await api.settled(*(story[k] for k in MAS_KEYS), timeout=60)
    async with db.connect() as conn:
        found = await check_chain(conn, story["prefix"], str(gateway.base_url), token)
    assert found.expected == len(MAS_KEYS), found
    assert found.ok, found


async def test_a_repair_the_gateway_fails_opens_no_work_order_and_moves_nothing(
    api: CreditApi, db: AsyncEngine, story: dict[str, Any],
) -> None:
    """The vendor-changed product's repair command (sequence 2) answered `failed` (final) by
    the gateway, as the gateway publishes a failed attempt.

    Pinned (fine): credit-control ignores it (nothing pending): no retry, no work order, the
    state and the sequence unchanged."""
    lg: Ledger = story["vend"]
    pid = lg.product_id
    before = await row(db, pid)
    [repair] = (await api.credit(pid))["chain_repairs"]
    now = datetime.now(UTC)
    result = ProvisioningResult(
        command_id=repair["sent"]["command_id"], product_id=pid,
        action=ProvisioningAction.SUSPEND, sequence=2, attempt=1, stage=ChainStage.GATEWAY,
        outcome=StageOutcome.FAILED, final=True, at=now, detail="gateway down (test)")
    envelope = wrap(result, key=pid, source="test-gateway", occurred_at=now)
    await api.publish(envelope)

    async def claimed() -> int:
        async with db.connect() as conn:
            return int(await conn.scalar(text(
                "SELECT count(*) FROM credit.inbox WHERE event_id = :e"),
                {"e": envelope.event_id}) or 0)

    await eventually(claimed, lambda n: n == 1, what="credit-control took the result")
    assert await api.work_orders(product_id=pid) == []
    after = await row(db, pid)
    assert (after.state, after.command_seq, after.pending_command_id,
            after.pending_work_order_id) == (before.state, 2, None, None), after
    assert (await api.credit(pid))["command"]["retry_at"] is None


@pytest.mark.parametrize("path", ["/v1/provisioning/desired", "/v1/notices/unheard"])
async def test_a_nul_in_the_paging_cursor_is_a_4xx(
    clients: dict[str, httpx.AsyncClient], path: str,
) -> None:
    """The pages the reconciliation and the unheard-warnings view walk, asked with a NUL in
    `after` (a cursor pasted from a log)."""
    r = await clients["credit-control"].get(path, params={"after": "Pq34\x00"})
    assert r.status_code < 500, (r.status_code, r.text[:300])
