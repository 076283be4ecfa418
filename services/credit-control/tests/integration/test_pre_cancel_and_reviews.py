"""Pre-cancellation is reversible while the line is kept; the red list covers every automatic
sanction and opens a credit-admin review for a product sanctioned before it; a payment that
arrives after the sweep it preceded, and a write-off, restore with an ordered history and the
real cause (issue 23, points 4-6)."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier


async def _suspend(api: CreditApi, y: int, uid: str, *ledgers: Ledger) -> None:
    """Owing February's bill, suspended on 03-31 (low tier), the chain answered."""
    await api.deliver(*((lg, lg.bill_run(f"{y}-02", 900_00, at(date(y, 3, 2), 9)))
                        for lg in ledgers))
    await api.sweep(date(y, 3, 25), f"pc-{uid}-warn")  # notice before suspension
    await api.sweep(date(y, 3, 31), f"pc-{uid}-suspend")
    await api.settled(*ledgers)
    await api.complete_work_orders(*ledgers)
    for lg in ledgers:
        assert await api.state(lg.product_id) == "suspended", lg.family


async def _templates(api: CreditApi, product_id: str) -> list[str]:
    async with api.db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT template FROM notifier.messages WHERE product_id = :p "
            "ORDER BY created_at, template"), {"p": product_id})
        return [r[0] for r in rows]


async def _notified(api: CreditApi, product_id: str, template: str) -> list[str]:
    return await eventually(lambda: _templates(api, product_id), lambda got: template in got,
                            timeout=60, what=f"{template} for {product_id}")


def _state_changes(events: list[dict[str, Any]], product_id: str) -> list[dict[str, Any]]:
    return [e for e in events if "decision" not in e and e["product_id"] == product_id]


async def test_a_paid_pre_cancelled_product_is_restored(api: CreditApi, test_year: int) -> None:
    """ADC at once, MAS through the chain, WORK_ORDER by a restore work order; each with the
    restore notice, and the lifted pre-cancellation is on the staff's worklist."""
    y, uid = test_year, new_uid()
    adc, mas, wo = (ledger(uid, f"pc{f.value}", f, T.LOW)
                    for f in (F.ADC, F.MAS, F.WORK_ORDER))
    every = (adc, mas, wo)
    await _suspend(api, y, uid, *every)
    await api.sweep(date(y, 6, 29), f"pc-{uid}-retention")  # day 90 of 03-31
    for lg in every:
        assert await api.state(lg.product_id) == "pre_cancel"
    for lg in every:  # the worklist narrowed to the group (others' lines fill its first page)
        listed = (await api.http.get("/v1/pre-cancellations", params={
            "status": "pre_cancel", "customer_id": lg.customer.customer_id})).json()
        assert [p["product_id"] for p in listed["pre_cancelled"]] == [lg.product_id], listed

    await api.deliver(*((lg, lg.payment(at(date(y, 7, 3), 10))) for lg in every))
    assert await api.state(adc.product_id) == "normal"
    await api.settled(mas)
    assert await api.state(mas.product_id) == "normal"
    assert await api.state(wo.product_id) == "restore_requested"
    orders = await api.work_orders(product_id=wo.product_id, action="restore")
    assert [(o["status"], o["role"]) for o in orders] == [("created", "operator")]
    await api.complete_work_orders(wo)
    assert await api.state(wo.product_id) == "normal"

    for lg in every:
        decisions = await api.decisions(lg.product_id)
        assert [d[0] for d in decisions] == [
            "bill_notice", "suspension_warning", "suspend", "pre_cancel", "restore"]
        assert decisions[-1][2] == date(y, 7, 3)
        credit = await api.credit(lg.product_id)
        assert credit["decisions"][-1]["reason"].endswith(
            "after payment; pre-cancellation lifted")
        assert credit["decisions"][-1]["state_before"] == "pre_cancel"
        assert await _notified(api, lg.product_id, "restore_notice")
    commands = await api.outbox(mas.product_id, "provisioning.commands.v1")
    assert [c["action"] for c in commands] == ["suspend", "restore"]
    changed = _state_changes(await api.outbox(adc.account_id, "credit.decisions.v1"),
                             adc.product_id)
    assert [(e["state_before"], e["state_after"]) for e in changed] == [
        ("suspension_warned", "suspended"), ("suspended", "pre_cancel"),
        ("pre_cancel", "normal")]
    lifted = (await api.http.get("/v1/pre-cancellations", params={"status": "lifted"})
              ).json()["lifted"]
    mine = {p["product_id"]: p for p in lifted if p["product_id"] in
            {lg.product_id for lg in every}}
    assert {p: (m["state_after"], m["state"]) for p, m in mine.items()} == {
        adc.product_id: ("normal", "normal"), mas.product_id: ("restore_requested", "normal"),
        wo.product_id: ("restore_requested", "normal")}


async def _red_list(api: CreditApi, lg: Ledger, exemption_id: str) -> list[str]:
    r = await api.http.post("/v1/exemptions", json={
        "exemption_id": exemption_id, "customer_id": lg.customer.customer_id,
        "kind": "red_list", "reason": "重要客户", "approver": "分管副总"})
    assert r.status_code == 201, r.text
    opened: list[str] = r.json()["reviews"]
    return opened


async def test_red_listed_suspended_products_are_reviewed_not_pre_cancelled(
    api: CreditApi, test_year: int, role_clients: dict[str, dict[str, httpx.AsyncClient]]
) -> None:
    y, uid = test_year, new_uid()
    restore_adc = ledger(uid, "rvadc", F.ADC, T.LOW)
    restore_mas = ledger(uid, "rvmas", F.MAS, T.LOW)
    keep = ledger(uid, "rvkeep", F.ADC, T.LOW, star_level=4)  # 120 days' retention
    every = (restore_adc, restore_mas, keep)
    await _suspend(api, y, uid, *every)
    reviews = {lg.product_id: await _red_list(api, lg, f"RL{lg.product_id}") for lg in every}
    assert all(len(ids) == 1 for ids in reviews.values()), reviews
    # the same exemption again opens nothing more, and answers the same
    assert await _red_list(api, keep, f"RL{keep.product_id}") == reviews[keep.product_id]
    listed = (await api.http.get("/v1/reviews", params={
        "status": "open", "customer_id": keep.customer.customer_id})).json()
    assert [(r["product_id"], r["state_at_open"], r["role"], r["product_state"])
            for r in listed] == [(keep.product_id, "suspended", "credit_admin", "suspended")]

    # 90 and 120 days after the suspension: no pre-cancellation for the red-listed
    await api.sweep(date(y, 6, 29), f"rv-{uid}-90")
    await api.sweep(date(y, 7, 29), f"rv-{uid}-120")
    for lg in every:
        assert [d[0] for d in await api.decisions(lg.product_id)] == [
            "bill_notice", "suspension_warning", "suspend"]
        assert await api.state(lg.product_id) == "suspended"

    def path(lg: Ledger) -> str:
        return f"/v1/reviews/{reviews[lg.product_id][0]}"

    admin = role_clients["credit-admin"]["credit-control"]
    operator = role_clients["operator"]["credit-control"]
    bad = await admin.post(f"{path(keep)}/decide", json={"decision": "undo", "note": "x"})
    assert bad.status_code == 422, bad.text
    denied = await operator.post(f"{path(keep)}/decide", json={"decision": "restore",
                                                               "note": "x"})
    assert denied.status_code == 403, denied.text
    assert (await api.http.get(path(keep))).json()["status"] == "open"
    for lg, decision in ((restore_adc, "restore"), (restore_mas, "restore"), (keep, "keep")):
        r = await admin.post(f"{path(lg)}/decide", json={
            "decision": decision, "note": "红名单客户, 已核实", "by": "someone-else"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == {"restore": "restored", "keep": "kept"}[decision]
        assert r.json()["decided_by"] == "zhang.wei"  # the token's subject, not the body's
        again = await admin.post(f"{path(lg)}/decide", json={"decision": "keep",
                                                             "note": "again"})
        assert again.status_code == 409, again.text
        audit = (await api.http.get("/v1/audit", params={
            "entity": "review", "entity_id": reviews[lg.product_id][0]})).json()
        assert [(a["action"], a["actor"]) for a in reversed(audit)] == [
            ("open", "service"), (decision, "zhang.wei")]

    await api.settled(restore_mas)
    assert await api.state(restore_adc.product_id) == "normal"
    assert await api.state(restore_mas.product_id) == "normal"
    assert await api.state(keep.product_id) == "suspended"
    for lg in (restore_adc, restore_mas):
        last = (await api.credit(lg.product_id))["decisions"][-1]
        assert (last["decision"], last["rule_id"]) == ("restore", "review-restore")
        assert "restore by zhang.wei: 红名单客户, 已核实" in last["reason"]
        # Its inputs say what asked for it, not the account's last balance event's cause.
        assert last["inputs"]["cause"] == "credit review", last["inputs"]
        assert await _notified(api, lg.product_id, "restore_notice")
    commands = await api.outbox(restore_mas.product_id, "provisioning.commands.v1")
    assert [c["action"] for c in commands] == ["suspend", "restore"]
    assert [d[0] for d in await api.decisions(keep.product_id)] == [
        "bill_notice", "suspension_warning", "suspend"]


async def test_a_payment_made_before_the_sweep_that_arrives_after_it(
    api: CreditApi, test_year: int
) -> None:
    """The payment of 11:59Z reaches credit-control after the 12:00Z sweep suspended: the
    restore is dated at the suspension, not before it, and says it overtook it."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "late", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-08", 5_000, at(date(y, 9, 2), 9))))
    sweep_at = at(date(y, 9, 30), 20)  # 12:00Z
    assert sweep_at.astimezone(UTC).hour == 12
    await api.sweep(date(y, 9, 25), f"late-{uid}-warn")  # notice before suspension
    await api.sweep(date(y, 9, 30), f"late-{uid}")
    assert await api.state(lg.product_id) == "suspended"
    await api.deliver((lg, lg.payment(sweep_at - timedelta(minutes=1))))
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "normal"
    history = credit["state_history"]
    moments = [datetime.fromisoformat(h["at"]) for h in history]
    assert moments == sorted(moments), history
    assert [h["state_after"] for h in history][-2:] == ["suspended", "normal"]
    assert moments[-1] == moments[-2] == sweep_at
    restore = credit["decisions"][-1]
    assert restore["decision"] == "restore"
    assert datetime.fromisoformat(restore["as_of"]) == sweep_at
    assert "before the suspended of" in restore["reason"]
    changed = _state_changes(await api.outbox(lg.account_id, "credit.decisions.v1"),
                             lg.product_id)
    assert [(e["state_after"], datetime.fromisoformat(e["as_of"])) for e in changed] == [
        ("suspended", sweep_at), ("normal", sweep_at)]
    sent = await _notified(api, lg.product_id, "restore_notice")
    assert sent.index("restore_notice") > sent.index("suspension_notice_contact")


async def test_a_write_off_restore_names_the_write_off(api: CreditApi, test_year: int) -> None:
    y, uid = test_year, new_uid()
    lg = ledger(uid, "wo", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-10", 5_000, at(date(y, 11, 2), 9))))
    await api.sweep(date(y, 11, 25), f"wo-{uid}-warn")  # notice before suspension
    await api.sweep(date(y, 11, 30), f"wo-{uid}")
    await api.deliver((lg, lg.event(BalanceCause.WRITE_OFF, at(date(y, 12, 3), 10))))
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "normal"
    restore = credit["decisions"][-1]
    assert restore["decision"] == "restore"
    assert restore["reason"] == "amount due 0 fen ≤ limit 0 fen after write-off"
    assert "payment" not in credit["state_history"][-1]["cause"]
    assert credit["state_history"][-1]["cause"].endswith("after write-off")
