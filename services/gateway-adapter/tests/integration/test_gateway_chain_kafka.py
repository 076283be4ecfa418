"""The chain through the running gateway-adapter, real Kafka and PostgreSQL: commands onto
`provisioning.commands.v1` as credit-control sends them, results read back from
`provisioning.results.v1`, submits refused while blocked, faults, retries, reconciliation."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from common.clock import BUSINESS_TZ
from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from common.contracts.snapshots import ProductFamily
from common.testing.polling import eventually
from gateway_adapter.adapters.credit_control import DesiredChainSource
from gateway_adapter.domain.faults import next_month_start
from gateway_adapter.service_layer import reconcile
from gateway_adapter.service_layer.context import GatewayContext

pytestmark = [pytest.mark.integration]

SUSPEND, RESTORE = ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE
VENDORS = [("huawei", ProductFamily.MAS, "<OprCode>PAUSE</OprCode>"),
           ("jiaxun", ProductFamily.MAS, "cmd=STOP"),
           ("ruoya", ProductFamily.MAS, '"op":0'),
           (None, ProductFamily.SMS_DIRECT, "SVC|")]


async def submit(gateway: httpx.AsyncClient, product: str) -> httpx.Response:
    return await gateway.post("/v1/gateway/submit", json={
        "product_id": product, "recipient": "13700137000", "text": "会议通知"})


async def chain(gateway: httpx.AsyncClient, product: str) -> dict[str, Any]:
    r = await gateway.get(f"/v1/products/{product}/chain")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def put_faults(gateway: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await gateway.put("/v1/faults", json=body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("vendor", "family", "marker"), VENDORS,
                         ids=["huawei", "jiaxun", "ruoya", "sms_direct"])
async def test_suspend_and_restore_for_each_vendor(
    gateway: httpx.AsyncClient, tap: Any, credit: Any, uid: str,
    vendor: str | None, family: ProductFamily, marker: str,
) -> None:
    product = f"gw{uid}{family.value}{vendor}"
    assert (await submit(gateway, product)).status_code == 200
    suspend = credit.command(product, SUSPEND, 1, vendor=vendor, family=family)
    await credit.send(suspend)
    final = await tap.wait_final(suspend.command_id)
    assert (final.stage, final.outcome) == (ChainStage.GATEWAY, StageOutcome.APPLIED)
    stages = tap.of(suspend.command_id)
    assert [(r.stage, r.outcome, r.final) for r in stages] == [
        (ChainStage.BOSS, StageOutcome.APPLIED, False),
        (ChainStage.EMOS, StageOutcome.APPLIED, False),
        (ChainStage.GATEWAY, StageOutcome.APPLIED, True)]
    assert len({r.emos_order_id for r in stages}) == 1 and stages[0].emos_order_id

    refused = await submit(gateway, product)
    assert refused.status_code == 403
    assert refused.json()["error"] == "product_blocked"
    seen = await chain(gateway, product)
    assert seen["boss"]["status"] == "arrears_suspended"
    assert seen["gateway"] == {**seen["gateway"], "blocked": True, "sequence": 1}
    assert [o["status"] for o in seen["emos"]["orders"]] == ["closed"]
    assert marker in seen["attempts"][0]["vendor_command"]
    assert seen["attempts"][0]["boss_at"] <= seen["attempts"][0]["gateway_at"]

    restore = credit.command(product, RESTORE, 2, vendor=vendor, family=family)
    await credit.send(restore)
    assert (await tap.wait_final(restore.command_id)).outcome is StageOutcome.APPLIED
    assert (await submit(gateway, product)).status_code == 200
    seen = await chain(gateway, product)
    assert (seen["boss"]["status"], seen["gateway"]["blocked"]) == ("active", False)
    assert [o["status"] for o in seen["emos"]["orders"]] == ["closed", "closed"]


async def test_the_same_attempt_twice_acts_once_and_sequence_beats_arrival(
    gateway: httpx.AsyncClient, tap: Any, credit: Any, uid: str
) -> None:
    product = f"gw{uid}order"
    first = credit.command(product, SUSPEND, 1)
    await credit.send(first, first)  # the same attempt, twice, under two event ids
    await tap.wait_final(first.command_id)
    restore, late_suspend = credit.command(product, RESTORE, 3), credit.command(product, SUSPEND, 2)
    await credit.send(restore, late_suspend)  # the older suspend arrives after the restore
    late = await tap.wait_final(late_suspend.command_id)
    assert late.outcome is StageOutcome.SUPERSEDED
    assert (await tap.wait_final(restore.command_id)).outcome is StageOutcome.APPLIED
    # A retry of the applied restore answers at once; the duplicate before it says nothing.
    retry = credit.command(product, RESTORE, 3, attempt=2)
    await credit.send(first, retry)
    again = await tap.wait_final(restore.command_id, attempt=2)
    assert (again.outcome, again.emos_order_id) == (
        StageOutcome.APPLIED, tap.final(restore.command_id, 1).emos_order_id)
    assert len(tap.of(first.command_id)) == 3  # boss, emos, gateway: once
    seen = await chain(gateway, product)
    assert (seen["gateway"]["blocked"], seen["gateway"]["sequence"]) == (False, 3)
    assert seen["last_sequence"] == 3
    assert (await submit(gateway, product)).status_code == 200


async def drive_to_applied(tap: Any, credit: Any, commands: list[Any]) -> int:
    """Retry as credit-control does (attempt+1 on a failed or timed-out final) until every
    command is applied; returns how many retries it took."""
    latest = {c.command_id: c for c in commands}
    retries = 0
    while True:
        pending = [c for c in latest.values() if not _applied(tap, c.command_id)]
        if not pending:
            return retries
        for c in pending:
            final = await tap.wait_final(c.command_id, c.attempt)
            if final.outcome in (StageOutcome.FAILED, StageOutcome.TIMED_OUT):
                latest[c.command_id] = msgspec.structs.replace(c, attempt=c.attempt + 1)
                await credit.send(latest[c.command_id])
                retries += 1
            else:
                assert final.outcome is StageOutcome.APPLIED, final


def _applied(tap: Any, command_id: str) -> bool:
    return any(r.final and r.outcome is StageOutcome.APPLIED for r in tap.of(command_id))


async def test_with_30_percent_emos_failures_every_command_ends_applied_exactly_once(
    gateway: httpx.AsyncClient, tap: Any, credit: Any, uid: str, desired_server: Any,
    in_process: GatewayContext,
) -> None:
    jitter = {"latency": {"distribution": "uniform", "min_ms": 0, "max_ms": 40}}
    await put_faults(gateway, {"seed": 42, "boss": jitter, "gateway": jitter,
                               "emos": {**jitter, "failure_rate": 0.3}})
    products = [(f"gw{uid}r{i:02d}", vendor, family)
                for i, (vendor, family, _) in enumerate(VENDORS * 4)]
    suspends = [credit.command(p, SUSPEND, 1, vendor=v, family=f) for p, v, f in products]
    await credit.send(*suspends)
    retries = await drive_to_applied(tap, credit, suspends)
    restores = [credit.command(p, RESTORE, 2, vendor=v, family=f) for p, v, f in products[::2]]
    await credit.send(*restores)
    retries += await drive_to_applied(tap, credit, restores)

    assert retries > 0, "30% EMOS failures and not one retry: the fault knob did nothing"
    failed = [r for r in tap.results if r.final and r.outcome is StageOutcome.FAILED]
    assert failed and {r.stage for r in failed} == {ChainStage.EMOS}
    for c in suspends + restores:
        applied = [r for r in tap.of(c.command_id) if r.final and r.outcome is StageOutcome.APPLIED]
        assert len(applied) == 1, (c.command_id, applied)
        per_attempt_stage = [(r.attempt, r.stage) for r in tap.of(c.command_id)]
        assert len(per_attempt_stage) == len(set(per_attempt_stage)), per_attempt_stage

    restored = {c.product_id for c in restores}
    for p, _, family in products:
        desired_server.want(p, RESTORE if p in restored else SUSPEND,
                            2 if p in restored else 1, uid, family)
        assert (await submit(gateway, p)).status_code == (200 if p in restored else 403)
    source = DesiredChainSource(desired_server.url, "cc-token", page_size=5)
    report = await reconcile.reconcile(in_process, prefix=f"gw{uid}", source=source)
    assert (report.products_compared, report.total, report.in_flight) == (len(products), 0, 0)
    assert desired_server.seen_tokens[0] == "Bearer cc-token"
    assert len(desired_server.seen_tokens) > 1  # paged

    # Reconciliation does see a difference when there is one.
    desired_server.want(products[1][0], RESTORE, 3, uid, products[1][2])
    desired_server.want(products[0][0], SUSPEND, 3, uid, products[0][2])
    report = await reconcile.reconcile(in_process, prefix=f"gw{uid}", source=source)
    assert {(d.product_id, d.kind.value) for d in report.differences} == {
        (products[1][0], "wrong_suspension"), (products[0][0], "missed_suspension")}


async def test_a_gateway_outage_fails_attempts_until_it_is_back(
    gateway: httpx.AsyncClient, tap: Any, credit: Any, uid: str, desired_server: Any,
    in_process: GatewayContext,
) -> None:
    product = f"gw{uid}outage"
    down_until = datetime.now(UTC) + timedelta(hours=1)
    await put_faults(gateway, {"gateway": {"down_until": down_until.isoformat()}})
    suspend = credit.command(product, SUSPEND, 1)
    for attempt in (1, 2):
        c = msgspec.structs.replace(suspend, attempt=attempt)
        await credit.send(c)
        final = await tap.wait_final(c.command_id, attempt)
        assert (final.stage, final.outcome) == (ChainStage.GATEWAY, StageOutcome.FAILED)
        assert "gateway down until" in final.detail
    seen = await chain(gateway, product)
    assert (seen["boss"]["status"], seen["gateway"]["blocked"]) == ("arrears_suspended", False)
    assert [o["status"] for o in seen["emos"]["orders"]] == ["failed", "failed"]
    assert (await submit(gateway, product)).status_code == 200  # 漏停 while the gateway is down

    desired_server.want(product, SUSPEND, 1, uid)
    source = DesiredChainSource(desired_server.url, "t")
    report = await reconcile.reconcile(in_process, prefix=product, source=source)
    assert [d.kind.value for d in report.differences] == ["missed_suspension"]

    await put_faults(gateway, {"gateway": {"down_until": None}})
    third = msgspec.structs.replace(suspend, attempt=3)
    await credit.send(third)
    assert (await tap.wait_final(third.command_id, 3)).outcome is StageOutcome.APPLIED
    assert (await submit(gateway, product)).status_code == 403
    report = await reconcile.reconcile(in_process, prefix=product, source=source)
    assert report.total == 0


async def test_a_cross_month_emos_order_is_stuck_until_next_month_and_counted(
    gateway: httpx.AsyncClient, tap: Any, credit: Any, uid: str, desired_server: Any,
    in_process: GatewayContext,
) -> None:
    product = f"gw{uid}late"
    await put_faults(gateway, {"emos_cross_month_share": 1.0})
    suspend = credit.command(product, SUSPEND, 1)
    await credit.send(suspend)
    boss = await eventually(lambda: asyncio.sleep(0, tap.of(suspend.command_id)), bool,
                            what="BOSS applied, the EMOS order received")
    assert [(r.stage, r.final) for r in boss] == [(ChainStage.BOSS, False)]
    seen = await chain(gateway, product)
    now = datetime.now(UTC)
    month = now.astimezone(BUSINESS_TZ).strftime("%Y-%m")
    next_month = next_month_start(now)
    order = seen["emos"]["orders"][0]
    assert order["status"] == "received"
    assert datetime.fromisoformat(order["due_at"]) >= next_month
    assert (await submit(gateway, product)).status_code == 200  # not blocked yet

    desired_server.want(product, SUSPEND, 1, uid)
    report = await reconcile.reconcile(
        in_process, prefix=product, source=DesiredChainSource(desired_server.url, "t"),
        as_of=now + timedelta(hours=2))
    assert [d.kind.value for d in report.differences] == ["stuck_emos_order"]
    assert report.in_flight == 1  # the suspension itself is on its way

    kpi = await gateway.get("/v1/kpis/emos-cross-month", params={
        "month": month, "product_prefix": product, "as_of": next_month.isoformat()})
    assert kpi.json() | {"ratio": None} == {
        "month": month, "orders": 1, "cross_month": 1, "still_open": 1, "ratio": None,
        "standard": 0.005, "meets_standard": False}

    advanced = await gateway.post("/v1/chain/advance", json={
        "as_of": (next_month + timedelta(minutes=1)).isoformat()})
    assert advanced.status_code == 200 and advanced.json()["attempts"] >= 1
    final = await tap.wait_final(suspend.command_id)
    assert final.outcome is StageOutcome.APPLIED and final.at >= next_month
    assert (await submit(gateway, product)).status_code == 403
    kpi = await gateway.get("/v1/kpis/emos-cross-month",
                            params={"month": month, "product_prefix": product})
    assert kpi.json()["cross_month"] == 1 and kpi.json()["still_open"] == 0
    assert kpi.json()["ratio"] == 1.0


async def test_fault_knobs_are_validated_and_reset(gateway: httpx.AsyncClient) -> None:
    defaults = (await gateway.get("/v1/faults")).json()
    assert defaults["emos"]["failure_rate"] == 0.0
    for bad in ({"emos": {"failure_rate": 1.5}}, {"boss": {"latency": {"distribution": "normal"}}},
                {"gateway": {"latency": {"distribution": "uniform", "min_ms": 9, "max_ms": 1}}},
                {"emos_cross_month_share": -0.1}, {"typo": 1}):
        r = await gateway.put("/v1/faults", json=bad)
        assert r.status_code == 422, bad
        assert r.json()["error"] == "validation_error"
    assert (await gateway.get("/v1/faults")).json() == defaults
    await put_faults(gateway, {"seed": 5, "boss": {"timeout_s": 2}})
    assert (await gateway.get("/v1/faults")).json()["boss"]["timeout_s"] == 2
    assert (await gateway.delete("/v1/faults")).json() == defaults
    assert (await gateway.get("/v1/kpis/emos-cross-month",
                              params={"month": "2026-13"})).status_code == 422
    # No orders: nothing to judge, null like credit-control's KPI report, never "meets".
    none = await gateway.get("/v1/kpis/emos-cross-month",
                             params={"month": "2026-01", "product_prefix": "no-such-product-"})
    assert none.status_code == 200 and none.json() == {
        "month": "2026-01", "orders": 0, "cross_month": 0, "still_open": 0, "ratio": None,
        "standard": 0.005, "meets_standard": None}
    vendors = (await gateway.get("/v1/vendors")).json()
    assert {v["name"] for v in vendors} == {"huawei", "jiaxun", "ruoya", "sms_direct"}
