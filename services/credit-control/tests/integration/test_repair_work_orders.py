"""Reconciliation's repair left for a person (docs/gateway.md "Repair", docs/credit-control.md
"Work orders"): after `REPAIR_LIMIT` repairs in a row the next is refused, and the refusal
opens a repair work order (`kind=repair`) in the queue staff work from, named in the
reconciliation report; its done sends nothing and starts the limit again; a newer decision
(a payment's restore, a new suspension) cancels it.

Driven as QA pass 34 drives repairs (test_qa_pass34_repairs.py): balance events straight to
Kafka, sweeps and work orders through credit-control's HTTP API, the gateway's reconciliation
run with repair in process (scoped to one product) against the running credit-control, drift
faked in `gateway.chain_products` with credit-control's last command two hours old. The lost
restores of `wrong` are asked of `POST /v1/provisioning/repairs` directly (as the gateway's
own test does): the month-end sweep that supersedes its work order must come right after.
Year `test_year + 38` is this module's (`qa_year`, capped at 2999).

The story (module fixture): low tier MAS products billed for January on 02-01,
suspension-warned on 02-25 (`wrong`'s gateway then blocks it three times over: 错停, left for
a person) and suspended at the month end (the chain confirmed)."""

from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.gateway import ProvisioningCommand
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, month_end, new_uid, qa_year_after
from .test_qa_pass34_repairs import Repairs, chain, drift, ok, row, state, sweep

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

BILL_FEN = 4_000
KEYS = ("blk", "pay", "wrong")
COMMANDS = ProvisioningCommand.topic


async def commands(api: CreditApi, product_id: str) -> list[int]:
    """The sequences of the chain commands credit-control wrote for the product."""
    return [int(c["sequence"]) for c in await api.outbox(product_id, COMMANDS)]


async def repair_orders(api: CreditApi, product_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await api.work_orders(product_id=product_id, kind="repair")
    return found


async def ask(credit: httpx.AsyncClient, db: AsyncEngine, product_id: str, desired: str,
              sequence: int, blocked: bool) -> dict[str, Any]:
    """The gateway's repair request for a settled difference (credit-control's last command
    two hours old), as its reconciliation run sends it."""
    async with db.begin() as conn:
        await conn.execute(text(
            "UPDATE credit.product_credit SET command_sent_at = now() - interval '2 hours' "
            "WHERE product_id = :p"), {"p": product_id})
    answer = ok(await credit.post("/v1/provisioning/repairs", json={"items": [{
        "product_id": product_id, "desired": desired, "sequence": sequence,
        "gateway_blocked": blocked, "gateway_sequence": sequence}]}))
    item: dict[str, Any] = answer["items"][0]
    return item


async def exhaust(credit: httpx.AsyncClient, db: AsyncEngine, product_id: str, desired: str,
                  first: int, blocked: bool) -> dict[str, Any]:
    """Three repairs in a row (sequences first+1 …), then the refusal."""
    for sequence in range(first, first + 3):
        done = await ask(credit, db, product_id, desired, sequence, blocked)
        assert (done["outcome"], done["sequence"]) == ("repaired", sequence + 1), done
    refused = await ask(credit, db, product_id, desired, first + 3, blocked)
    assert refused["outcome"] == "refused", refused
    return refused


def applied(sequence: int) -> Callable[[dict[str, Any]], bool]:
    """The product's chain view: the gateway holds `sequence`, no attempt still open."""
    def check(found: dict[str, Any]) -> bool:
        return bool(found["gateway"]["sequence"] == sequence
                    and all(a["finished_at"] for a in found["attempts"]))
    return check


@pytest.fixture(scope="module")
async def qa_year(test_year: int, db: AsyncEngine) -> int:
    """`test_year + 38` (capped at 2999), or the year after the newest decision a session
    sharing the stack took (test_qa_pass34_repairs.py's `qa_year`)."""
    return await qa_year_after(db, test_year, 38)


@pytest.fixture(scope="module")
async def story(api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
                qa_year: int) -> dict[str, Any]:
    y, uid = qa_year, new_uid()
    prefix = f"Prw{uid}"
    credit = clients["credit-control"]
    got: dict[str, Any] = {"y": y, "uid": uid, "repairs": Repairs(db, credit)}
    for key in KEYS:
        got[key] = ledger(key, f"rw{uid}", F.MAS, T.LOW)
    bill = at(date(y, 2, 1), 9)
    await api.deliver(*((got[k], got[k].bill_run(f"{y}-01", BILL_FEN, bill)) for k in KEYS))
    await sweep(api, f"rw{uid}-0225", at(date(y, 2, 25)))
    # `wrong` is open (suspension-warned, no command yet); its gateway blocks it (错停):
    # three restores do not hold, the fourth request is refused and left for a person.
    wrong: Ledger = got["wrong"]
    got["wrong_refused"] = await exhaust(credit, db, wrong.product_id, "restore", 0, True)
    got["wrong_order"] = await repair_orders(api, wrong.product_id)
    await sweep(api, f"rw{uid}-0228", at(month_end(y, 2)), heard=prefix)
    for key in KEYS:
        await state(api, got[key], "suspended", timeout=60)
    return got


async def test_three_failed_repairs_then_the_refusal_opens_one_work_order(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Suspended MAS product whose block the gateway loses after every repair (漏停).

    Expected: three reconciliation runs repair it (suspend, sequences 2, 3, 4); the fourth
    is refused and opens one repair work order (suspend, the reason says what reconciliation
    found and which repairs failed), named in the report's refused item, audited; another run
    is refused for the same work order and opens no second one."""
    gateway = clients["gateway-adapter"]
    lg: Ledger = story["blk"]
    pid, repairs = lg.product_id, story["repairs"]
    for sequence in (2, 3, 4):
        await drift(db, pid, blocked=False)
        report = await repairs.run(pid)
        assert (report.repaired, report.not_repaired) == (1, 0), report
        assert report.repairs[0].sequence == sequence, report
        await eventually(lambda: chain(gateway, pid), applied(sequence), timeout=30,
                         what=f"the gateway applied the repair {sequence}")
    await drift(db, pid, blocked=False)
    report = await repairs.run(pid)
    assert (report.missed_suspensions, report.repaired, report.not_repaired) == (1, 0, 1), report
    [refused] = report.repairs
    assert (refused.outcome, refused.kind, refused.action) == ("refused", "missed_suspension",
                                                               "suspend"), refused
    [order] = await repair_orders(api, pid)
    assert refused.work_order_id == order["work_order_id"], refused
    assert f"work order {order['work_order_id']}" in refused.detail, refused.detail
    assert "repaired 3 times in a row (sequences 2, 3, 4)" in refused.detail, refused.detail
    assert (order["kind"], order["action"], order["status"], order["role"], order["sequence"]) == (
        "repair", "suspend", "created", "operator", 4), order
    assert order["reason"].startswith(
        "reconciliation: the gateway does not hold the product blocked after 3 repairs "
        "(sequences 2, 3, 4;"), order["reason"]
    assert "check it at the gateway" in order["reason"], order["reason"]
    assert await api.work_orders(product_id=pid, kind="decision") == []
    audit = ok(await api.http.get("/v1/audit", params={"entity": "work_order",
                                                       "entity_id": order["work_order_id"]}))
    assert [(a["action"], a["new"]["product_id"]) for a in audit] == [("open", pid)], audit
    r = await api.http.get("/v1/work-orders", params={"product_id": pid, "kind": "manual"})
    assert r.status_code == 422, r.text

    again = await repairs.run(pid)
    assert (again.repaired, again.not_repaired) == (0, 1), again
    assert again.repairs[0].work_order_id == order["work_order_id"], again
    assert "is open for it" in again.repairs[0].detail, again
    assert [o["work_order_id"] for o in await api.work_orders(product_id=pid)] == [
        order["work_order_id"]]
    assert await commands(api, pid) == [1, 2, 3, 4]
    story["blk_order"] = order


async def test_fail_then_done_sends_nothing_and_repairs_start_again(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """The repair work order: bad input first; then failed (the operator could not reach the
    gateway's console), and its follow-up done by the group billing manager, who blocked the
    enterprise at the gateway by hand.

    Expected: bad input answered as for any work order, nothing changes; fail opens a repair
    follow-up for the group billing manager (the product refused for it); done moves no state
    and sends no command (audited); a drift found later is repaired again (sequence 5)."""
    lg: Ledger = story["blk"]
    pid, order = lg.product_id, story.get("blk_order")
    if order is None:
        pytest.skip("needs the work order of the test before")
    wo = f"/v1/work-orders/{order['work_order_id']}"
    for path, body, status in ((f"{wo}/done", {"note": ""}, 422),
                               (f"{wo}/fail", {"note": "x", "force": True}, 422),
                               (f"{wo}/done", {"note": "a\u0000b"}, 422),
                               ("/v1/work-orders/WO-nosuch/done", {"note": "x"}, 404),
                               ("/v1/work-orders/WO-nosuch/fail", {"note": "x"}, 404)):
        r = await api.http.post(path, json=body)
        assert r.status_code == status, (path, body, r.status_code, r.text)
    assert ok(await api.http.get(wo))["steps"] == order["steps"]

    failed = ok(await api.http.post(f"{wo}/fail", json={"note": "网关控制台无法登录"}))
    assert failed["status"] == "failed", failed
    [follow] = [o for o in await repair_orders(api, pid) if o["status"] == "created"]
    assert (follow["role"], follow["action"], follow["sequence"]) == (
        "group_billing_manager", "suspend", 4), follow
    assert (await row(db, pid)).pending_work_order_id == follow["work_order_id"]
    await drift(db, pid, blocked=False)
    refused = await story["repairs"].run(pid)
    assert refused.repairs[0].work_order_id == follow["work_order_id"], refused

    before = await row(db, pid)
    fwo = f"/v1/work-orders/{follow['work_order_id']}"
    async with db.begin() as conn:  # the person blocks it at the gateway by hand
        await conn.execute(text("UPDATE gateway.chain_products SET gateway_blocked = true "
                                "WHERE product_id = :p"), {"p": pid})
    done = ok(await api.http.post(fwo + "/done", json={"note": "已在网关人工停用"}))
    assert done["status"] == "done", done
    r = await api.http.post(fwo + "/done", json={"note": "again"})
    assert r.status_code == 409, r.text
    r = await api.http.post(fwo + "/fail", json={"note": "late"})
    assert r.status_code == 409, r.text
    after = await row(db, pid)
    assert (after.state, after.command_seq, after.command_sent_at, after.pending_command_id,
            after.pending_work_order_id) == (
        "suspended", before.command_seq, before.command_sent_at, None, None), after
    assert await commands(api, pid) == [1, 2, 3, 4]
    credit = await api.credit(pid)
    assert not any("work order" in h["cause"] for h in credit["state_history"]), credit
    audit = ok(await api.http.get("/v1/audit", params={"entity": "work_order",
                                                       "entity_id": follow["work_order_id"]}))
    assert [(a["action"], a["new"]["current"]) for a in audit] == [("done", True)], audit
    clean = await story["repairs"].run(pid, repair=False)
    assert clean.total == 0, clean

    # The gateway loses the block again later: repaired again, the limit started afresh.
    await drift(db, pid, blocked=False)
    report = await story["repairs"].run(pid)
    assert (report.repaired, report.repairs[0].sequence) == (1, 5), report
    assert await commands(api, pid) == [1, 2, 3, 4, 5]


async def test_a_payments_restore_cancels_the_open_repair_work_order(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
    story: dict[str, Any],
) -> None:
    """Suspended MAS product whose block was repaired three times and then left for a
    person; the customer pays in full.

    Expected: the restore goes as sequence 5 and the work order (suspend) is cancelled as
    superseded; the product ends normal with nothing waiting for a person."""
    credit = clients["credit-control"]
    lg: Ledger = story["pay"]
    pid, y = lg.product_id, story["y"]
    refused = await exhaust(credit, db, pid, "suspend", 1, False)
    [order] = await repair_orders(api, pid)
    assert refused["work_order_id"] == order["work_order_id"], refused
    await api.deliver((lg, lg.payment(at(date(y, 3, 1), 10))))
    await state(api, lg, "normal", timeout=60)
    [cancelled] = await repair_orders(api, pid)
    assert cancelled["status"] == "cancelled", cancelled
    assert "superseded by command" in cancelled["steps"][-1]["note"], cancelled["steps"]
    r = await row(db, pid)
    assert (r.command_seq, r.pending_work_order_id) == (5, None), r
    assert await commands(api, pid) == [1, 2, 3, 4, 5]
    r = await api.http.post(f"/v1/work-orders/{order['work_order_id']}/done",
                            json={"note": "late"})
    assert r.status_code == 409, r.text


async def test_a_new_suspension_cancels_a_lost_restores_work_order(
    api: CreditApi, db: AsyncEngine, story: dict[str, Any],
) -> None:
    """Suspension-warned (open) MAS product the gateway kept blocking (错停) after three
    restores, left for a person; the month-end sweep then suspends it.

    Expected: the work order (restore) was opened for it and named in the refusal; the
    sweep's suspension (sequence 4) cancels it as superseded."""
    pid = story["wrong"].product_id
    refused, [opened] = story["wrong_refused"], story["wrong_order"]
    assert refused["work_order_id"] == opened["work_order_id"], refused
    assert (opened["action"], opened["status"], opened["sequence"]) == ("restore", "created", 3)
    assert "does not hold the product open after 3 repairs" in opened["reason"], opened
    [order] = await repair_orders(api, pid)
    assert order["status"] == "cancelled", order
    assert order["steps"][-1]["note"].startswith("superseded by command"), order["steps"]
    r = await row(db, pid)
    assert (r.state, r.command_seq, r.pending_work_order_id) == ("suspended", 4, None), r

