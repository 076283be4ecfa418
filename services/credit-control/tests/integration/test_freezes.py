"""Scoped emergency freezes (issue 19): a credit-admin stops automatic suspensions for a scope;
the sweep holds those products back and records it; when the freeze ends they get their
suspension warning again, with a full notice period, before any suspension.

ADC mid tier owing since March (test_sweep_one_pass's ledger): on 25 May the suspension
warning is due (naming the 31st), on 31 May the suspension."""

from datetime import date
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text

from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier
from common.testing.notices import notices_heard

from .helpers import CreditApi, Ledger, at, ledger, new_uid
from .test_sweep_one_pass import owing_since_march

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _freeze(api: CreditApi, freeze_id: str, customer: str, y: int, status: int = 201,
                  **extra: Any) -> dict[str, Any]:
    r = await api.http.post("/v1/freezes", json={
        "freeze_id": freeze_id, "scope": "customer", "value": customer,
        "reason": "网络故障造成欠费, 待核实", "approver": "主管张三",
        "starts_at": at(date(y, 5, 20), 0).isoformat(),
        "until": at(date(y, 6, 19), 0).isoformat()} | extra)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


async def _decided(api: CreditApi, lg: Ledger) -> list[tuple[str, str | None]]:
    async with api.db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT decision, context::json->>'deadline' FROM credit.decisions "
            "WHERE product_id = :p ORDER BY created_at, decision_id"), {"p": lg.product_id})
        return [(r[0], r[1]) for r in rows]


async def test_a_freeze_holds_suspensions_back_and_its_end_warns_again(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    frozen = await owing_since_march(api, uid, "fa", y, deposit_fen=0)
    free = await owing_since_march(api, uid, "fb", y, deposit_fen=0)
    made = await _freeze(api, f"FZ{uid}", frozen.customer.customer_id, y)
    assert made["scope"] == "customer" and made["ended_at"] is None
    # The same id and values again: the same freeze; other values: 409, nothing changed.
    assert (await _freeze(api, f"FZ{uid}", frozen.customer.customer_id, y))["freeze_id"] == \
        f"FZ{uid}"
    await _freeze(api, f"FZ{uid}", free.customer.customer_id, y, status=409)

    await api.sweep(date(y, 5, 25), f"op-fz{uid}-0525")  # warnings are not frozen: both warned
    assert await api.state(frozen.product_id) == "suspension_warned"
    assert await api.state(free.product_id) == "suspension_warned"

    # The preview of the 31st already leaves the frozen one out.
    r = await api.http.get("/v1/sweeps/preview", params={
        "as_of": at(date(y, 5, 31)).isoformat(), "customer_id": frozen.customer.customer_id})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []

    await api.sweep(date(y, 5, 31), f"op-fz{uid}-0531")
    await api.settled(free)
    assert await api.state(free.product_id) == "suspended"
    assert await api.state(frozen.product_id) == "suspension_warned"
    holds = (await api.http.get(f"/v1/freezes/FZ{uid}/holds")).json()
    assert [(h["product_id"], h["decision"], h["first_held_on"], h["amount_due_fen"])
            for h in holds] == [(frozen.product_id, "suspend", f"{y}-05-31", 10_000)]
    await api.sweep(date(y, 6, 1), f"op-fz{uid}-0601")  # held again: still one hold, a day on
    holds = (await api.http.get(f"/v1/freezes/FZ{uid}/holds")).json()
    assert [(h["first_held_on"], h["last_held_on"]) for h in holds] == [
        (f"{y}-05-31", f"{y}-06-01")]
    assert await api.state(frozen.product_id) == "suspension_warned"

    # Ended: back to warned at once, its warning dropped; the next sweep warns again with a
    # full notice period, and only then is it suspended.
    r = await api.http.post(f"/v1/freezes/FZ{uid}/end", json={
        "reason": "故障已修复", "at": at(date(y, 6, 2), 9).isoformat()})
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["ended_at"] is not None
    assert ended["released"] == {"held": 1, "warned_again": 1}
    assert ended["held"] == {"suspend": 1}
    assert await api.state(frozen.product_id) == "warned"
    again = await api.http.post(f"/v1/freezes/FZ{uid}/end", json={"reason": "再次"})
    assert again.status_code == 200 and again.json()["end_reason"] == "故障已修复"

    await api.sweep(date(y, 6, 2), f"op-fz{uid}-0602")
    warnings = [d for d in await _decided(api, frozen) if d[0] == "suspension_warning"]
    assert len(warnings) == 2, warnings
    deadline = date.fromisoformat(str(warnings[-1][1]))
    assert deadline > date(y, 6, 2)  # a new notice period, not the 31st again
    await api.sweep(deadline - (deadline - date(y, 6, 2)) // 2, f"op-fz{uid}-mid")
    assert await api.state(frozen.product_id) == "suspension_warned"
    await api.sweep(deadline, f"op-fz{uid}-dl")
    await api.settled(frozen)
    assert await api.state(frozen.product_id) == "suspended"


async def test_a_freeze_of_warnings_holds_the_suspension_warning_too(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "fw", y, deposit_fen=0)
    await _freeze(api, f"FW{uid}", lg.customer.customer_id, y, covers_warnings=True)
    await api.sweep(date(y, 5, 25), f"op-fw{uid}-0525")
    assert await api.state(lg.product_id) == "warned"
    holds = (await api.http.get(f"/v1/freezes/FW{uid}/holds")).json()
    assert [(h["decision"], h["first_held_on"]) for h in holds] == [
        ("suspension_warning", f"{y}-05-25")]
    listed = (await api.http.get("/v1/freezes", params={
        "active_at": at(date(y, 5, 25)).isoformat()})).json()
    assert f"FW{uid}" in {f["freeze_id"] for f in listed}
    r = await api.http.post(f"/v1/freezes/FW{uid}/end", json={
        "reason": "故障已修复", "at": at(date(y, 5, 26), 9).isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["released"] == {"held": 0, "warned_again": 0}  # nothing was announced
    await api.sweep(date(y, 5, 26), f"op-fw{uid}-0526")
    assert await api.state(lg.product_id) == "suspension_warned"


@pytest.mark.parametrize("change, field", [
    ({"approver": "service"}, "approver"),  # the caller approving their own freeze
    ({"scope": "family", "value": "XYZ"}, "value"),
    ({"scope": "all", "value": "x"}, "value"),
    ({"reason": "故障"}, "reason"),
    ({"until": "2999-01-01T00:00:00+08:00"}, "until"),
])
async def test_a_bad_freeze_is_refused_and_nothing_is_stored(
    api: CreditApi, test_year: int, change: dict[str, str], field: str
) -> None:
    uid = new_uid()
    body = await _freeze(api, f"FB{uid}", f"G{uid}", test_year, status=422, **change)
    assert field in body["problems"], body
    assert (await api.http.get(f"/v1/freezes/FB{uid}")).status_code == 404


async def test_only_a_credit_admin_freezes(
    role_clients: dict[str, dict[str, httpx.AsyncClient]], test_year: int
) -> None:
    uid = new_uid()
    body = {"freeze_id": f"FR{uid}", "scope": "all", "reason": "网络故障造成欠费",
            "approver": "主管张三", "starts_at": at(date(test_year, 5, 1), 0).isoformat(),
            "until": at(date(test_year, 5, 2), 0).isoformat()}
    for role in ("ops-viewer", "operator"):
        r = await role_clients[role]["credit-control"].post("/v1/freezes", json=body)
        assert r.status_code == 403, r.text
    assert (await role_clients["ops-viewer"]["credit-control"].get("/v1/freezes")
            ).status_code == 200


async def test_the_dashboard_shows_the_freezes_and_what_they_held_back(
    api: CreditApi, role_clients: dict[str, dict[str, httpx.AsyncClient]], test_year: int
) -> None:
    """An ops-viewer sees every freeze (scope, reason, approver, what it held back) and one
    freeze's held products with their own amounts; a stranger sees the sign-in page."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "fd", y, deposit_fen=0)
    await _freeze(api, f"FD{uid}", lg.customer.customer_id, y, covers_warnings=True)
    await api.sweep(date(y, 5, 25), f"op-fd{uid}-0525")
    viewer = role_clients["ops-viewer"]["credit-control"]
    page = await viewer.get("/dashboard/freezes")
    assert page.status_code == 200, page.text
    row = page.text[page.text.index(f'data-freeze="FD{uid}"'):]
    row = row[:row.index("</tr>")]
    assert "集团客户 customer: " + lg.customer.customer_id in row
    assert "网络故障造成欠费" in row and "主管张三" in row
    assert "停机预警 suspension warning 1" in row
    detail = await viewer.get(f"/dashboard/freezes/FD{uid}")
    assert detail.status_code == 200, detail.text
    held = detail.text[detail.text.index(f'data-product="{lg.product_id}"'):]
    assert f"{y}-05-25" in held[:held.index("</tr>")] and "100.00" in held[:held.index("</tr>")]
    missing = await viewer.get(f"/dashboard/freezes/NO{uid}")
    assert missing.status_code == 404 and f"NO{uid}" in missing.text
    async with httpx.AsyncClient(base_url=viewer.base_url) as stranger:
        assert (await stranger.get("/dashboard/freezes")).status_code == 401


async def _owing_in(api: CreditApi, uid: str, name: str, y: int, region: str) -> Ledger:
    """owing_since_march, of a customer of `region` (billing's customer snapshot)."""
    lg = ledger(uid, name, ProductFamily.ADC, Tier.MID)
    lg.customer = msgspec.structs.replace(lg.customer, region=region)
    m3 = f"{y}-03"
    await api.deliver((lg, lg.event(BalanceCause.BILL_RUN, at(date(y, 4, 1), 9),
                                     [(m3, 10_000)], m3)))
    await api.sweep(date(y, 4, 10), f"op-{name}{uid}-0410")
    return lg


async def test_a_region_freeze_holds_that_regions_suspensions_and_the_preview_shows_regions(
    api: CreditApi, test_year: int
) -> None:
    """Two customers of two county branches (区县分公司) owing alike: a freeze of one region
    holds its product's suspension while the other region's is suspended; the preview lists
    and counts by region; a customer moved to another region (master data) is no longer
    held by it."""
    y, uid = test_year, new_uid()
    south, tiger = f"南城{uid}", f"虎门{uid}"  # regions of this test only: no other is frozen
    frozen = await _owing_in(api, uid, "ra", y, south)
    free = await _owing_in(api, uid, "rb", y, tiger)
    async with api.db.connect() as conn:
        stored = dict((await conn.execute(text(
            "SELECT product_id, region FROM credit.product_credit WHERE product_id IN (:a, :b)"
        ), {"a": frozen.product_id, "b": free.product_id})).all())
    assert stored == {frozen.product_id: south, free.product_id: tiger}
    made = await _freeze(api, f"FG{uid}", "", y, scope="region", value=south)
    assert (made["scope"], made["value"]) == ("region", south)
    await api.sweep(date(y, 5, 25), f"op-fg{uid}-0525")
    await notices_heard(api.db)  # the suspension warnings reached the customers

    async def preview(region: str) -> dict[str, Any]:
        r = await api.http.get("/v1/sweeps/preview", params={
            "as_of": at(date(y, 5, 31)).isoformat(), "region": region})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    shown = await preview(tiger)
    assert [(i["product_id"], i["region"], i["decision"]) for i in shown["items"]] == [
        (free.product_id, tiger, "suspend")]
    by_region = {(g["region"], g["decision"]): g["count"] for g in shown["by_region"]}
    assert by_region[(tiger, "suspend")] == 1 and (south, "suspend") not in by_region
    assert (await preview(south))["items"] == []  # held by the freeze

    await api.sweep(date(y, 5, 31), f"op-fg{uid}-0531")
    assert await api.state(free.product_id) == "suspended"
    assert await api.state(frozen.product_id) == "suspension_warned"
    holds = (await api.http.get(f"/v1/freezes/FG{uid}/holds")).json()
    assert [(h["product_id"], h["decision"]) for h in holds] == [(frozen.product_id, "suspend")]

    # The customer moves to another county branch (billing's cause=master_data): the freeze
    # of its old region no longer holds it back.
    frozen.customer = msgspec.structs.replace(frozen.customer, region=f"东城{uid}")
    await api.deliver((frozen, frozen.event(BalanceCause.MASTER_DATA, at(date(y, 6, 1), 9),
                                            [(f"{y}-03", 10_000)])))
    await api.sweep(date(y, 6, 1), f"op-fg{uid}-0601")
    assert await api.state(frozen.product_id) == "suspended"
