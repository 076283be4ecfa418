"""Reconciliation repairs what it finds (docs/gateway.md, Reconciliation), against the real
credit-control and the running gateway-adapter: a lost block (漏停) and a lost restore (错停)
of a MAS product, each settled (its command sent two hours before, nothing in the chain),
are sent through the chain again by credit-control under the next sequence; a second run
while the repair is on its way sends nothing; credit-control refuses a repair of what it
moved on from, of an unknown product and of one it does not manage through the chain; a lost
block under an emergency freeze waits for the freeze to end, and three repairs in a row are
enough (the next is refused for a person); the knobs and bad input. Year
`test_year + 26` is this module's (capped at 2999)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.notices import notices_heard
from common.testing.polling import eventually
from gateway_adapter.adapters.credit_control import DesiredChainSource
from gateway_adapter.service_layer import reconcile
from gateway_adapter.service_layer.context import GatewayContext

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def submit(gateway: httpx.AsyncClient, product: str) -> int:
    r = await gateway.post("/v1/gateway/submit", json={
        "product_id": product, "recipient": "13700137000", "text": "通知"})
    assert r.status_code in (200, 403), r.text
    return r.status_code


async def settle_drift(db: AsyncEngine, product: str, blocked: bool) -> None:
    """The gateway loses its state (as one restarted without it would), found two hours
    after credit-control's last command: a settled difference."""
    async with db.begin() as conn:
        changed = await conn.execute(text(
            "UPDATE gateway.chain_products SET gateway_blocked = :b WHERE product_id = :p"),
            {"b": blocked, "p": product})
        assert changed.rowcount == 1
        await conn.execute(text(
            "UPDATE credit.product_credit SET command_sent_at = now() - interval '2 hours' "
            "WHERE product_id = :p"), {"p": product})


async def suspended_mas(clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str,
                        y: int, month: int = 9) -> tuple[str, str]:
    """A MAS product billed for `month` (a month of its own: a bill run closes it), suspended
    through the chain by the next month's sweeps."""
    billed, swept = f"{y}-{month:02d}", f"{y}-{month + 1:02d}"
    billing, credit = clients["billing-events"], clients["credit-control"]
    product, account = f"gwrep{uid}", f"Agwrep{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"GR{uid}", "name": f"对账修复集团{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": account, "customer_id": f"GR{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": product, "account_id": account, "cpno": f"CR{uid}",
        "name": "嘉讯CRM-MAS", "family": "MAS", "vendor": "jiaxun"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"C{product}", "account_id": account, "product_id": product,
        "bill_month": billed, "amount_fen": 8800}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{billed}{uid}", "bill_month": billed,
        "as_of": f"{swept}-02T09:00:00+08:00"}))
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.status_code == 200 and r.json()["state"] == "warned",
                     what="credit-control applied the bill run")
    for day in (25, 31):
        await notices_heard(db)
        await ok(await credit.post("/v1/sweeps", json={
            "sweep_id": f"SR{swept}{day}{uid}", "as_of": f"{swept}-{day}T20:00:00+08:00"}))
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.json()["state"] == "suspended", timeout=60,
                     what="suspended once the chain confirmed")
    return product, account


async def test_a_settled_lost_block_and_lost_restore_are_repaired_once(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int,
    in_process: GatewayContext, db: AsyncEngine,
) -> None:
    gateway, credit = clients["gateway-adapter"], clients["credit-control"]
    y = min(test_year + 26, 2999)
    product, account = await suspended_mas(clients, db, uid, y)
    token = credit.headers["Authorization"].removeprefix("Bearer ")
    source = DesiredChainSource(str(credit.base_url), token)

    async def run() -> Any:
        return await reconcile.reconcile(in_process, prefix=product, source=source, repair=True)

    # 漏停: the gateway lost the block; reconciliation repairs it with sequence 2.
    await settle_drift(db, product, blocked=False)
    assert await submit(gateway, product) == 200
    first = await run()
    assert (first.missed_suspensions, first.repaired, first.not_repaired) == (1, 1, 0), first
    [done] = first.repairs
    assert (done.outcome, done.kind, done.action, done.sequence) == (
        "repaired", "missed_suspension", "suspend", 2), done
    # Run again at once: the repair is on its way (young, or in the chain): nothing sent.
    again = await run()
    assert again.repaired == 0, again
    assert all(r.outcome == "skipped" for r in again.repairs), again
    # The same request once more, straight to credit-control: it moved on (sequence 2).
    stale = await ok(await credit.post("/v1/provisioning/repairs", json={"items": [{
        "product_id": product, "desired": "suspend", "sequence": 1,
        "gateway_blocked": False, "gateway_sequence": 1}]}), 200)
    assert stale["items"][0]["outcome"] == "refused", stale
    assert "moved on" in stale["items"][0]["detail"], stale
    await eventually(lambda: submit(gateway, product), lambda s: s == 403, timeout=30,
                     what="the repaired block refuses the customer's SMS")
    clean = await run()
    assert (clean.total, clean.repaired, clean.repairs) == (0, 0, ()), clean
    audit = await ok(await credit.get("/v1/audit", params={
        "entity": "chain_repair", "entity_id": product}), 200)
    assert [(a["action"], a["new"]["sequence"]) for a in audit] == [("repair", 2)], audit
    view = await ok(await credit.get(f"/v1/products/{product}/credit"), 200)
    assert view["state"] == "suspended"  # a repair moves the gateway, not the credit state
    # ... and shows on the product's own page, with what it was asked and what it sent.
    assert [(r["asked"]["sequence"], r["sent"]["sequence"], r["sent"]["action"])
            for r in view["chain_repairs"]] == [(1, 2, "suspend")], view["chain_repairs"]

    # 错停: the customer pays, the restore goes through; then the gateway blocks again.
    await ok(await clients["billing-events"].post("/v1/payments", json={
        "payment_id": f"P{uid}", "account_id": account, "amount_fen": 8800,
        "paid_at": f"{y}-11-03T10:00:00+08:00"}))
    await eventually(lambda: credit.get(f"/v1/products/{product}/credit"),
                     lambda r: r.json()["state"] == "normal", timeout=60, what="restored")
    await eventually(lambda: submit(gateway, product), lambda s: s == 200, timeout=30,
                     what="open after the restore")
    await settle_drift(db, product, blocked=True)
    fixed = await run()
    assert (fixed.wrong_suspensions, fixed.repaired) == (1, 1), fixed
    assert (fixed.repairs[0].kind, fixed.repairs[0].action, fixed.repairs[0].sequence) == (
        "wrong_suspension", "restore", 4), fixed
    await eventually(lambda: submit(gateway, product), lambda s: s == 200, timeout=30,
                     what="the repaired restore lets the paid customer send")


async def test_credit_control_refuses_what_it_does_not_manage_and_bad_input(
    clients: dict[str, httpx.AsyncClient], uid: str,
    role_clients: dict[str, dict[str, httpx.AsyncClient]],
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    adc, account = f"gwradc{uid}", f"Agwradc{uid}"
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"GA{uid}", "name": f"ADC集团{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": account, "customer_id": f"GA{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": adc, "account_id": account, "cpno": f"CA{uid}",
        "name": "ADC", "family": "ADC"}))
    await eventually(lambda: credit.get(f"/v1/products/{adc}/credit"),
                     lambda r: r.status_code == 200, what="credit-control knows the product")
    answer = await ok(await credit.post("/v1/provisioning/repairs", json={"items": [
        {"product_id": adc, "desired": "restore", "sequence": 0, "gateway_blocked": True},
        {"product_id": f"nope{uid}", "desired": "suspend", "sequence": 1,
         "gateway_blocked": False}]}), 200)
    assert [(i["outcome"], i["detail"].split(" ")[0]) for i in answer["items"]] == [
        ("refused", "not"), ("refused", "unknown")], answer
    for bad in ({"items": []}, {"items": [{"product_id": adc, "desired": "explode",
                                           "sequence": 1, "gateway_blocked": False}]},
                {"items": [{"product_id": adc, "desired": "suspend", "sequence": -1,
                            "gateway_blocked": False}]}, {}):
        r = await credit.post("/v1/provisioning/repairs", json=bad)
        assert r.status_code == 422, (bad, r.text)
    viewer = role_clients["ops-viewer"]["credit-control"]
    r = await viewer.post("/v1/provisioning/repairs", json={"items": [
        {"product_id": adc, "desired": "restore", "sequence": 0, "gateway_blocked": True}]})
    assert r.status_code == 403, r.text

    gateway = clients["gateway-adapter"]
    r = await gateway.post("/v1/reconciliation/runs", params={"repair": "maybe"})
    assert r.status_code == 422, r.text
    looked = await ok(await gateway.post("/v1/reconciliation/runs", params={"repair": "false"}))
    assert (looked["repair"], looked["repaired"], looked["repairs"]) == (False, 0, []), looked


async def test_a_lost_block_waits_for_a_freeze_and_three_repairs_in_a_row_are_enough(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int, db: AsyncEngine,
) -> None:
    """A freeze says no one is cut off while it is in force (a billing error, a network
    fault): re-blocking a customer the gateway lets send is a cut-off, so it waits; the lost
    restore of a frozen customer would not (restores always go on)."""
    credit = clients["credit-control"]
    y = min(test_year + 26, 2999)
    product, _ = await suspended_mas(clients, db, f"{uid}f", y, month=11)
    freeze = f"FZrep{uid}"
    await ok(await credit.post("/v1/freezes", json={
        "freeze_id": freeze, "scope": "customer", "value": f"GR{uid}f",
        "reason": "计费差错, 待核实欠费", "approver": "主管张三",
        "until": (datetime.now(UTC) + timedelta(days=1)).isoformat()}))
    await settle_drift(db, product, blocked=False)
    lost_block = {"items": [{"product_id": product, "desired": "suspend", "sequence": 1,
                             "gateway_blocked": False, "gateway_sequence": 1}]}
    held = await ok(await credit.post("/v1/provisioning/repairs", json=lost_block), 200)
    assert held["items"][0]["outcome"] == "refused", held
    assert f"frozen by {freeze}" in held["items"][0]["detail"], held
    await ok(await credit.post(f"/v1/freezes/{freeze}/end", json={"reason": "核实无误"}), 200)
    done = await ok(await credit.post("/v1/provisioning/repairs", json=lost_block), 200)
    assert (done["items"][0]["outcome"], done["items"][0]["sequence"]) == ("repaired", 2), done

    # A chain that never holds it: two more repairs (3, 4), each found settled again; then
    # three in a row is enough, the next is refused for a person to look at.
    for sequence in (2, 3):
        await settle_drift(db, product, blocked=False)
        again = await ok(await credit.post("/v1/provisioning/repairs", json={"items": [{
            **lost_block["items"][0], "sequence": sequence}]}), 200)
        assert again["items"][0]["sequence"] == sequence + 1, again
    await settle_drift(db, product, blocked=False)
    stop = await ok(await credit.post("/v1/provisioning/repairs", json={"items": [{
        **lost_block["items"][0], "sequence": 4}]}), 200)
    assert stop["items"][0]["outcome"] == "refused", stop
    assert "repaired 3 times in a row (sequences 2, 3, 4)" in stop["items"][0]["detail"], stop
