"""QA pass 32: suspend on time and restore the moment they pay, through the simulated chain
BOSS → EMOS → industry gateway (MAS and SMS-direct products), under changing facts and
faults: a payment while the suspension is in flight, payments and reversals flipping state
while the restore is in flight, a stale or doctored command at the gateway, a gateway that
lost a block, a restore the chain refuses until a work order takes over, a product whose
vendor or family changed, a CMPP client refused until the restore is applied, the month-end
sweep posted again, and bad input to the chain's endpoints.

Balance events go straight to Kafka as billing-events publishes them (helpers.Ledger); sweeps,
the closed loop's retries and work orders through credit-control's API; the gateway-adapter's
fault knobs, chain view, `chain/advance`, submits and reconciliation through its API; the
notifier's messages read back. Year `test_year + 23` is this module's (`qa_year`, capped at
2999); no bill run is posted to billing-events.

The story (a module fixture, so the sweeps are shared): low tier, January billed on 02-01,
suspension warnings on 02-25, the month-end sweep on 02-28 while EMOS is slow (an order
takes ten minutes), so every suspension is in flight (BOSS 欠费停用, the EMOS order open, the
gateway still open) when the "race" customer pays; then EMOS is healthy again and the chain
is advanced past the delay."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text

from common.cmpp.client import CmppClient
from common.cmpp.codec import SubmitResult
from common.contracts.billing import BalanceCause as C
from common.contracts.gateway import ProvisioningCommand
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.envelope import wrap
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses

from .helpers import CreditApi, Ledger, at, ledger, month_end, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

BILL_FEN = 4_000
COMMANDS = "provisioning.commands.v1"
SLOW_MS = 10 * 60 * 1000  # an EMOS order slower than the test, inside credit-control's timeout
NOTICES = {"suspension_notice_contact", "suspension_notice_manager",
           "suspension_notice_manager_account"}
KEYS = ("race", "flip", "stale", "wo", "drift", "vend", "fam", "cmpp")
SECRET = "q32-Secret"


# --- helpers --------------------------------------------------------------------------------

def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def sweep(api: CreditApi, key: str, when: datetime) -> None:
    """A sweep as of `when` after the earlier suspension warnings were heard of; one the
    mass-suspension guard holds (a shared stack may trip it) is confirmed."""
    await notices_heard(api.db)
    body = ok(await api.http.post("/v1/sweeps", json={"sweep_id": key,
                                                       "as_of": when.isoformat()}), 201)
    if body.get("held"):
        ok(await api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm", json={}))


async def chain(gateway: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    r = await gateway.get(f"/v1/products/{product_id}/chain")
    if r.status_code == 404:
        return {"boss": {"status": None}, "gateway": {"blocked": False}, "attempts": []}
    return ok(r)  # type: ignore[no-any-return]


async def submit(gateway: httpx.AsyncClient, product_id: str) -> int:
    """What the enterprise's MAS server gets for one SMS now (200 sent, 403 blocked)."""
    r = await gateway.post("/v1/gateway/submit", json={
        "product_id": product_id, "recipient": "13800138000", "text": "会议通知: 明早九点"})
    assert r.status_code in (200, 403), r.text
    return r.status_code


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(await notifier.get("/v1/messages",
                                                        params={"product_id": product_id}))
    return found


async def templates(notifier: httpx.AsyncClient, product_id: str) -> list[str]:
    return [m["template"] for m in await messages(notifier, product_id)]


async def faults(gateway: httpx.AsyncClient, body: dict[str, Any] | None) -> None:
    if body is None:
        ok(await gateway.delete("/v1/faults"))
    else:
        ok(await gateway.put("/v1/faults", json=body))


async def advance(gateway: httpx.AsyncClient, ahead: timedelta) -> None:
    ok(await gateway.post("/v1/chain/advance",
                          json={"as_of": (datetime.now(UTC) + ahead).isoformat()}))


async def state(api: CreditApi, lg: Ledger, want: str, timeout: float = 30) -> dict[str, Any]:
    return await eventually(lambda: api.credit(lg.product_id), lambda c: c["state"] == want,
                            what=f"{lg.product_id} {want}", timeout=timeout)


async def reconcile(gateway: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(await gateway.get("/v1/reconciliation",
                                                 params={"product_prefix": product_id}))
    return found


def command(payload: dict[str, Any], **changes: Any) -> Any:
    cmd = msgspec.convert(payload, ProvisioningCommand)
    cmd = msgspec.structs.replace(cmd, **changes)
    return wrap(cmd, key=cmd.product_id, source="test-credit-control",
                occurred_at=datetime.now(UTC))


# --- the story ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int) -> int:
    return min(test_year + 23, 2999)


@pytest.fixture(scope="module")
async def story(api: CreditApi, clients: dict[str, httpx.AsyncClient],
                qa_year: int) -> dict[str, Any]:
    y, uid = qa_year, new_uid()
    gateway = clients["gateway-adapter"]
    got: dict[str, Any] = {"y": y, "uid": uid}
    for key in KEYS:
        family = F.SMS_DIRECT if key in ("flip", "drift") else F.MAS
        got[key] = ledger(uid, f"q32{key}", F.ADC if key == "fam" else family, T.LOW)
    # "fam" opens as an ADC product; billing changes it to a Huawei MAS product (allowed while
    # it is not under a sanction, docs/billing.md) a week before January's bill.
    fam: Ledger = got["fam"]
    await api.deliver((fam, fam.event(C.MASTER_DATA, at(date(y, 1, 20), 10))))
    fam.products = (msgspec.structs.replace(fam.products[0], family=F.MAS, vendor="huawei"),)
    await api.deliver((fam, fam.event(C.MASTER_DATA, at(date(y, 1, 25), 10))))
    bill = at(date(y, 2, 1), 9)
    await api.deliver(*((got[k], got[k].bill_run(f"{y}-01", BILL_FEN, bill)) for k in KEYS))
    await sweep(api, f"q32{uid}-0225", at(date(y, 2, 25)))
    for k in KEYS:
        assert await api.state(got[k].product_id) == "suspension_warned", k
    try:
        await faults(gateway, {"emos": {"latency": {"distribution": "fixed",
                                                    "min_ms": SLOW_MS}}})
        await sweep(api, f"q32{uid}-0228", at(month_end(y, 2)))
        race: Ledger = got["race"]
        got["race_chain"] = await eventually(
            lambda: chain(gateway, race.product_id),
            lambda c: c["boss"]["status"] == "arrears_suspended",
            what="the race product's suspension half-way (BOSS done, EMOS open)")
        got["race_state"] = await api.state(race.product_id)
        # The customer pays 40 minutes after the sweep, while EMOS still works the order.
        await api.deliver((race, race.payment(at(month_end(y, 2), 20) + timedelta(minutes=40))))
        got["race_paid"] = await api.state(race.product_id)
    finally:
        await faults(gateway, None)
    await advance(gateway, timedelta(milliseconds=2 * SLOW_MS))
    await api.settled(*(got[k] for k in KEYS if k != "fam"), timeout=60)
    return got


# --- 1. a payment while the suspension is in flight ----------------------------------------

async def test_payment_while_the_suspension_is_in_flight_ends_in_service_with_no_notice(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """Low tier MAS (Huawei), 40.00 yuan for January. The 02-28 sweep suspends; BOSS sets
    the product 欠费停用 at once, EMOS takes ten minutes. 40 minutes (business time) later
    the customer pays in full.

    Pinned (fine): credit-control moves suspend_requested → restore_requested (restore wins
    over a racing suspension, docs/credit-control.md), the restore (sequence 2) supersedes the
    suspension at the gateway (its EMOS order cancelled), BOSS is active again and the gateway
    never blocked the enterprise; the product ends normal and its SMS go out. The customer
    gets neither 停机通知 A/B (the suspension was undone before it took effect) nor a 开机通知
    (never cut off), and reconciliation finds nothing."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    race: Ledger = story["race"]
    assert story["race_chain"]["gateway"]["blocked"] is False, story["race_chain"]
    assert story["race_state"] == "suspend_requested"
    assert story["race_paid"] == "restore_requested"
    await state(api, race, "normal")
    found = await chain(gateway, race.product_id)
    assert (found["boss"]["status"], found["boss"]["sequence"]) == ("active", 2), found["boss"]
    assert found["gateway"]["blocked"] is False, found["gateway"]
    outcomes = sorted((a["action"], a["outcome"]) for a in found["attempts"])
    assert outcomes == [("restore", "applied"), ("suspend", "superseded")], found["attempts"]
    assert sorted((o["action"], o["status"]) for o in found["emos"]["orders"]) == [
        ("restore", "closed"), ("suspend", "cancelled")], found["emos"]
    assert await submit(gateway, race.product_id) == 200
    sent = await templates(notifier, race.product_id)
    assert "suspension_warning" in sent, sent
    assert not set(sent) & (NOTICES | {"restore_notice"}), sent
    report = await reconcile(gateway, race.product_id)
    assert (report["missed_suspensions"], report["wrong_suspensions"],
            report["in_flight"]) == (0, 0, 0), report


async def test_the_others_are_suspended_once_emos_catches_up_and_refused_at_the_gateway(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """The same slow month-end: the customers who did not pay are suspended when EMOS
    closes its orders (the chain advanced past the delay).

    Pinned (fine): each is `suspended` only after the gateway's applied result, the gateway
    blocks it (submit 403, the same judgement as CMPP's Result 9), and its 停机通知 A and B
    are made (the suspension really happened)."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    for key in ("stale", "drift"):
        lg: Ledger = story[key]
        assert await api.state(lg.product_id) == "suspended", key
        found = await chain(gateway, lg.product_id)
        assert found["gateway"]["blocked"] is True, (key, found["gateway"])
        assert await submit(gateway, lg.product_id) == 403, key
        await eventually(partial(templates, notifier, lg.product_id),
                         lambda ts: {"suspension_notice_contact",
                                     "suspension_notice_manager"} <= set(ts),
                         what=f"{key}'s 停机通知 A and B", timeout=30)


# --- 2. payments and reversals flipping while the restore is in flight ---------------------

async def test_pay_reverse_pay_while_the_restore_is_in_flight_ends_open_and_normal(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """SMS-direct, suspended at the gateway. EMOS slow again (ten minutes). The customer pays
    40.00 (restore in flight), the payment bounces (冲正) a minute later, and he pays again a
    minute after that, all before EMOS closes the restore's order.

    Pinned (fine): the gateway's final state equals credit-control's desired one: open,
    `normal`, one restore command applied (the reversal does not re-suspend a product whose
    restore is in flight; the second payment needs none), submit accepted, reconciliation
    clean; no 停机通知 after the suspension's own."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    flip: Ledger = story["flip"]
    y = story["y"]
    assert await api.state(flip.product_id) == "suspended"
    paid = at(date(y, 3, 2), 10)
    try:
        await faults(gateway, {"emos": {"latency": {"distribution": "fixed",
                                                    "min_ms": SLOW_MS}}})
        await api.deliver((flip, flip.payment(paid)))
        assert await api.state(flip.product_id) == "restore_requested"
        await api.deliver((flip, flip.event(C.REVERSAL, paid + timedelta(minutes=1),
                                            [(f"{y}-01", BILL_FEN)])))
        await api.deliver((flip, flip.payment(paid + timedelta(minutes=2))))
        mid = await chain(gateway, flip.product_id)
        assert mid["gateway"]["blocked"] is True, mid["gateway"]
    finally:
        await faults(gateway, None)
    await advance(gateway, timedelta(milliseconds=2 * SLOW_MS))
    await state(api, flip, "normal")
    found = await chain(gateway, flip.product_id)
    assert found["gateway"]["blocked"] is False, found["gateway"]
    assert await submit(gateway, flip.product_id) == 200
    sent = await api.outbox(flip.product_id, COMMANDS)
    assert [(c["sequence"], c["action"]) for c in sent] == [(1, "suspend"), (2, "restore")], sent
    report = await reconcile(gateway, flip.product_id)
    assert (report["missed_suspensions"], report["wrong_suspensions"],
            report["in_flight"]) == (0, 0, 0), report
    assert (await templates(notifier, flip.product_id)).count("suspension_notice_contact") == 1


# --- 3. stale and doctored commands at the gateway -----------------------------------------

async def test_a_stale_suspension_replayed_after_the_restore_leaves_the_paid_customer_open(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """MAS suspended, then paid and restored (sequence 2 applied). Afterwards the suspension
    command (sequence 1) arrives again at the gateway as a new attempt (7), as a delayed retry
    would; and the restore's own (command_id, attempt) arrives again with another body
    (action suspend).

    Pinned (fine): sequence decides, never arrival: the stale suspension is answered
    `superseded` and changes nothing; the same (command_id, attempt) with another body acts
    not at all (the attempts table is the guard); BOSS stays active, the gateway open,
    credit-control normal with no new command, and the customer's SMS go out."""
    gateway = clients["gateway-adapter"]
    lg: Ledger = story["stale"]
    await api.deliver((lg, lg.payment(at(date(story["y"], 3, 3), 9))))
    await state(api, lg, "normal")
    [suspend, restore] = await api.outbox(lg.product_id, COMMANDS)
    assert (suspend["action"], restore["action"]) == ("suspend", "restore")
    await api.publish(command(suspend, attempt=7),
                      command(restore, action="suspend"))
    found = await eventually(lambda: chain(gateway, lg.product_id),
                             lambda c: any(a["attempt"] == 7 for a in c["attempts"]),
                             what="the stale suspension judged at the gateway")
    [stale] = [a for a in found["attempts"] if a["attempt"] == 7]
    assert stale["outcome"] == "superseded", stale
    assert (found["boss"]["status"], found["boss"]["sequence"]) == ("active", 2)
    assert (found["gateway"]["blocked"], found["gateway"]["sequence"]) == (False, 2)
    assert len([a for a in found["attempts"] if a["action"] == "restore"]) == 1
    assert await submit(gateway, lg.product_id) == 200
    view = await api.credit(lg.product_id)
    assert view["state"] == "normal", view["state"]
    assert len(await api.outbox(lg.product_id, COMMANDS)) == 2


# --- 4. reconciliation: a gateway that lost a block ----------------------------------------

async def test_a_lost_block_is_reported_as_missed_and_the_payment_restores_cleanly(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """SMS-direct, suspended and blocked. The industry gateway loses the block (its row reset
    to open, as a gateway restarted without its state would).

    Pinned (fine): reconciliation (desired vs the gateway) reports it as a missed suspension
    (漏停) of this product, not in flight; then the customer pays, the restore (sequence 2)
    goes through, and reconciliation is clean (a paid customer is not suspended to "fix" the
    difference)."""
    gateway = clients["gateway-adapter"]
    lg: Ledger = story["drift"]
    assert (await chain(gateway, lg.product_id))["gateway"]["blocked"] is True
    async with api.db.begin() as conn:
        changed = await conn.execute(text(
            "UPDATE gateway.chain_products SET gateway_blocked = false "
            "WHERE product_id = :p"), {"p": lg.product_id})
        assert changed.rowcount == 1
    report = await reconcile(gateway, lg.product_id)
    assert (report["missed_suspensions"], report["wrong_suspensions"],
            report["in_flight"]) == (1, 0, 0), report
    assert [d["product_id"] for d in report["differences"]] == [lg.product_id], report
    await api.deliver((lg, lg.payment(at(date(story["y"], 3, 3), 11))))
    await state(api, lg, "normal")
    report = await reconcile(gateway, lg.product_id)
    assert (report["missed_suspensions"], report["wrong_suspensions"],
            report["in_flight"]) == (0, 0, 0), report
    assert await submit(gateway, lg.product_id) == 200


# --- 5. a restore the chain refuses until a work order takes over --------------------------

async def test_restore_escalated_to_a_work_order_reopens_the_gateway_before_the_notice(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """MAS suspended and blocked. EMOS refuses every order; the customer pays. The closed
    loop retries (attempts 2 and 3 after their backoff), then a restore work order takes over.

    Pinned first (fine): while the chain fails and the work order is open the product stays
    restore_requested, BOSS/gateway block, and no 开机通知 is made (told only when really
    restored). Then EMOS works again and the operator marks the work order done.
    Expected: the customer who is told 已可正常使用 can send (docs/gateway.md: the gateway is
    what stops the enterprise; domain.md: the platforms' states consistent, none 错停)."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    lg: Ledger = story["wo"]
    try:
        await faults(gateway, {"emos": {"failure_rate": 1.0}})
        await api.deliver((lg, lg.payment(at(date(story["y"], 3, 4), 9))))
        def failed(n: int) -> Callable[[dict[str, Any]], bool]:
            return lambda c: c["pending_work_order_id"] is not None or bool(
                c["command"]["attempt"] == n and c["command"]["retry_at"])

        for attempt in (1, 2, 3):
            view = await eventually(lambda: api.credit(lg.product_id), failed(attempt),
                                    what=f"restore attempt {attempt} failed")
            if view["pending_work_order_id"] is not None:
                break
            ok(await api.http.post("/v1/provisioning/retries",
                                   json={"as_of": view["command"]["retry_at"]}))
        view = await eventually(lambda: api.credit(lg.product_id),
                                lambda c: c["pending_work_order_id"] is not None,
                                what="the restore work order")
    finally:
        await faults(gateway, None)
    assert view["state"] == "restore_requested"
    [order] = await api.work_orders(product_id=lg.product_id, action="restore")
    assert order["status"] == "created", order
    assert (await chain(gateway, lg.product_id))["gateway"]["blocked"] is True
    assert "restore_notice" not in await templates(notifier, lg.product_id)
    await api.finish_work_orders(lg.product_id)
    await state(api, lg, "normal")
    await eventually(lambda: templates(notifier, lg.product_id),
                     lambda ts: "restore_notice" in ts, what="the 开机通知", timeout=30)
    ok(await api.http.post("/v1/provisioning/retries", json={
        "as_of": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}))
    await advance(gateway, timedelta(hours=1))
    report = await reconcile(gateway, lg.product_id)
    found = await chain(gateway, lg.product_id)
    # (错停 reported, the gateway blocking, what the customer's next SMS gets)
    assert (report["wrong_suspensions"], found["gateway"]["blocked"],
            await submit(gateway, lg.product_id)) == (0, False, 200), report


# --- 6. a vendor changed while suspended ---------------------------------------------------

async def test_vendor_changed_while_suspended_restores_through_the_new_vendor(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """MAS suspended through Huawei (PAUSE). While suspended the enterprise's MAS server is
    replaced by a Jiaxun one (billing allows vendor changes under a sanction, docs/billing.md);
    then the customer pays.

    Pinned (fine): the restore goes to the gateway for the new vendor (Jiaxun's GBK form
    `cmd=OPEN`, acknowledged asynchronously and then confirmed), the product is normal only
    after that, the gateway opens, and the 开机通知 is made."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    lg: Ledger = story["vend"]
    y = story["y"]
    lg.products = (msgspec.structs.replace(lg.products[0], vendor="jiaxun"),)
    await api.deliver((lg, lg.event(C.MASTER_DATA, at(date(y, 3, 4), 10),
                                    [(f"{y}-01", BILL_FEN)])))
    assert await api.state(lg.product_id) == "suspended"
    await api.deliver((lg, lg.payment(at(date(y, 3, 4), 11))))
    await state(api, lg, "normal")
    found = await chain(gateway, lg.product_id)
    [suspend] = [a for a in found["attempts"] if a["action"] == "suspend"]
    [restore] = [a for a in found["attempts"] if a["action"] == "restore"]
    assert "PAUSE" in suspend["vendor_command"], suspend
    assert "cmd=OPEN" in restore["vendor_command"], restore
    assert restore["gateway_ack_at"] is not None, restore
    assert found["gateway"]["blocked"] is False
    assert await submit(gateway, lg.product_id) == 200
    await eventually(lambda: templates(notifier, lg.product_id),
                     lambda ts: "restore_notice" in ts, what="the 开机通知", timeout=30)


# --- 7. a family changed before the arrears ------------------------------------------------

async def test_a_product_changed_to_mas_is_suspended_through_the_chain(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """Opened as ADC on 01-20, changed to a Huawei MAS product on 01-25 (a master-data
    balance event carrying the new snapshot), billed 40.00 for January, warned on 02-25,
    not paid.

    Expected: suspended the MAS way, BOSS → EMOS → industry gateway (domain.md "Product
    families"): a chain command, `suspended` on the gateway's applied result, the enterprise
    blocked at the gateway."""
    gateway = clients["gateway-adapter"]
    lg: Ledger = story["fam"]
    view = await api.credit(lg.product_id)
    assert view["state"] in ("suspend_requested", "suspended"), view["state"]
    await api.settled(lg)
    desired = ok(await api.http.get("/v1/provisioning/desired",
                                    params={"after": lg.product_id[:-1], "limit": 5}))
    listed = [i["desired"] for i in desired["items"] if i["product_id"] == lg.product_id]
    # (the chain commands sent, what credit-control wants the gateway to hold, the next SMS)
    assert (len(await api.outbox(lg.product_id, COMMANDS)), listed,
            await submit(gateway, lg.product_id)) == (1, ["suspend"], 403), view["command"]


# --- 8. CMPP: refused while suspended, accepted right after the restore --------------------

async def test_cmpp_refused_until_the_restore_is_applied_and_accepted_right_after(
    api: CreditApi, clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], services: ServiceProcesses,
    story: dict[str, Any],
) -> None:
    """Huawei MAS suspended and blocked; its MAS server is logged in over CMPP 2.0. EMOS is
    slow (ten minutes); the customer pays.

    Pinned (fine): while the restore is in flight (`restore_requested`, BOSS active, EMOS
    order open) the gateway still refuses the enterprise's CMPP_SUBMIT with Result 9 (it is
    not restored yet, and no 开机通知 is made); the moment credit-control shows `normal` (the
    gateway's applied result) the next CMPP_SUBMIT is accepted (Result 0), and the 开机通知
    follows."""
    gateway, notifier = clients["gateway-adapter"], clients["notifier"]
    lg: Ledger = story["cmpp"]
    source = story["uid"][:6]
    ok(await role_clients["credit-admin"]["gateway-adapter"].put(
        f"/v1/cmpp/accounts/{source}", json={"shared_secret": SECRET,
                                             "product_id": lg.product_id}))
    port = int(dict(services.specs["gateway-adapter"].extra_env)["GATEWAY_CMPP_PORT"])
    client = await CmppClient.connect("127.0.0.1", port, source, SECRET, timeout=30)

    async def result() -> int:
        return (await client.submit(["13700137000"], "会议通知"))[0].result

    try:
        assert await result() == SubmitResult.PRODUCT_BLOCKED
        try:
            await faults(gateway, {"emos": {"latency": {"distribution": "fixed",
                                                        "min_ms": SLOW_MS}}})
            await api.deliver((lg, lg.payment(at(date(story["y"], 3, 5), 9))))
            assert await api.state(lg.product_id) == "restore_requested"
            await eventually(lambda: chain(gateway, lg.product_id),
                             lambda c: c["boss"]["status"] == "active",
                             what="BOSS active again, EMOS order open")
            assert await result() == SubmitResult.PRODUCT_BLOCKED
            assert "restore_notice" not in await templates(notifier, lg.product_id)
            # On its way: counted in flight, not a wrong suspension (错停).
            report = await reconcile(gateway, lg.product_id)
            assert (report["missed_suspensions"], report["wrong_suspensions"],
                    report["in_flight"]) == (0, 0, 1), report
        finally:
            await faults(gateway, None)
        await advance(gateway, timedelta(milliseconds=2 * SLOW_MS))
        await state(api, lg, "normal")
        assert await result() == SubmitResult.OK
    finally:
        await client.terminate()
    await eventually(lambda: templates(notifier, lg.product_id),
                     lambda ts: "restore_notice" in ts, what="the 开机通知", timeout=30)


# --- 9. the month-end sweep again -----------------------------------------------------------

async def test_the_month_end_sweep_again_never_suspends_the_customer_who_paid(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """After the race customer paid during the suspension, staff post the month-end sweep
    again: the same `sweep_id` and body (a retried request), the same `sweep_id` with
    another `as_of`, and a catch-up re-run of the day under a new id.

    Pinned (fine): the replay answers as before and does nothing; the same id with another
    body is refused (4xx) and changes nothing; the catch-up re-run does not suspend the paid
    customer again (he owes nothing): no decision, no chain command, still open."""
    gateway = clients["gateway-adapter"]
    race: Ledger = story["race"]
    y, uid = story["y"], story["uid"]
    before = (await api.footprint([race]), await api.outbox(race.product_id, COMMANDS))
    key, when = f"q32{uid}-0228", at(month_end(y, 2))
    again = await api.http.post("/v1/sweeps", json={"sweep_id": key, "as_of": when.isoformat()})
    assert again.status_code in (200, 201), again.text
    other = await api.http.post("/v1/sweeps", json={
        "sweep_id": key, "as_of": (when + timedelta(hours=1)).isoformat()})
    assert other.status_code == 409, other.text
    await sweep(api, f"q32{uid}-0228b", when + timedelta(hours=2))
    assert await api.state(race.product_id) == "normal"
    after = (await api.footprint([race]), await api.outbox(race.product_id, COMMANDS))
    assert after == before
    assert (await chain(gateway, race.product_id))["gateway"]["blocked"] is False


# --- 10. bad input --------------------------------------------------------------------------

async def test_bad_input_to_the_chain_endpoints_is_a_clear_4xx_and_changes_nothing(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], story: dict[str, Any],
) -> None:
    """Unknown ids, malformed and absurd times, out-of-range numbers at the gateway's and
    credit-control's chain endpoints.

    Pinned (fine): a 404 or 422 naming the problem, never a 500; the fault knobs, a
    product's chain and credit-control's commands unchanged."""
    gateway = clients["gateway-adapter"]
    lg: Ledger = story["stale"]
    before = (await chain(gateway, lg.product_id), ok(await gateway.get("/v1/faults")),
              await api.outbox(lg.product_id, COMMANDS))
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/v1/products/P-no-such-product-q32/chain", {}, 404),
        ("POST", "/v1/chain/advance", {"json": {"as_of": "yesterday"}}, 422),
        ("POST", "/v1/chain/advance", {"json": {"as_of": "2026-02-30T10:00:00+08:00"}}, 422),
        ("POST", "/v1/chain/advance", {"json": {}}, 422),
        ("POST", "/v1/chain/advance", {"json": {"as_of": "1850-01-01T00:00:00+08:00"}}, 422),
        ("POST", "/v1/chain/advance", {"json": {"as_of": 1700000000}}, 422),
        ("GET", "/v1/reconciliation", {"params": {"as_of": "soon"}}, 422),
        ("GET", "/v1/reconciliation", {"params": {"stuck_after_s": "-5"}}, 422),
        ("GET", "/v1/kpis/emos-cross-month", {"params": {"month": "2026-13"}}, 422),
        ("PUT", "/v1/faults", {"json": {"emos": {"failure_rate": 1.5}}}, 422),
        ("PUT", "/v1/faults", {"json": {"gateway": {"down_until": "never"}}}, 422),
    ]
    for method, path, kwargs, want in cases:
        r = await gateway.request(method, path, **kwargs)
        assert r.status_code == want, (method, path, kwargs, r.status_code, r.text)
    credit_cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/v1/products/P-no-such-product-q32/credit", {}, 404),
        ("POST", "/v1/provisioning/retries", {"json": {"as_of": "later"}}, 422),
        ("POST", "/v1/provisioning/retries", {"json": {"as_of": "1850-01-01T00:00:00Z"}}, 422),
        ("GET", "/v1/provisioning/desired", {"params": {"limit": "-1"}}, 422),
    ]
    for method, path, kwargs, want in credit_cases:
        r = await api.http.request(method, path, **kwargs)
        assert r.status_code == want, (method, path, kwargs, r.status_code, r.text)
    after = (await chain(gateway, lg.product_id), ok(await gateway.get("/v1/faults")),
             await api.outbox(lg.product_id, COMMANDS))
    assert after == before
