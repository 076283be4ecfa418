"""Late fees against real PostgreSQL (docs/billing.md "Late fees").

The shared test services run with late fees OFF (the default), and a bill run closes a month
for every account, so the posting is exercised in-process with late fees on, inside a
transaction that is rolled back: the suite's other accounts are never charged. The routes'
bad input is checked over HTTP. Year test_year + 16, bill month 07 (tests/e2e's collections
tests use 03-06 of that year)."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_events.adapters import tables as t
from billing_events.domain.late_fees import LateFeePolicy
from billing_events.service_layer.context import BillingContext
from billing_events.service_layer.late_fees import post_for_bill_run, waive_in
from common.clock import BUSINESS_TZ, SystemClock
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox

from .helpers import post

pytestmark = [pytest.mark.integration]


async def _account(billing: httpx.AsyncClient, uid: str, key: str, month: str,
                   fen: int) -> dict[str, str]:
    ids = {"customer": f"GLF{key}{uid}", "account": f"ALF{key}{uid}",
           "product": f"PLF{key}{uid}"}
    await post(billing, "/v1/customers", {
        "customer_id": ids["customer"], "name": f"滞纳金测试{key}{uid}", "tier": "mid",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "联系人", "phone": "13800000003"}]})
    await post(billing, "/v1/accounts", {"account_id": ids["account"],
                                         "customer_id": ids["customer"]})
    await post(billing, "/v1/products", {
        "product_id": ids["product"], "account_id": ids["account"], "cpno": f"CPLF{key}{uid}",
        "name": "企信通", "family": "ADC"})
    await post(billing, "/v1/charges", {
        "charge_id": f"CLF{key}{uid}", "account_id": ids["account"],
        "product_id": ids["product"], "bill_month": month, "amount_fen": fen})
    return ids


async def test_a_bill_run_posts_late_fees_except_for_exempt_and_disputed_bills(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int
) -> None:
    billing, y = clients["billing-events"], test_year + 16
    plain = await _account(billing, uid, "a", f"{y}-07", 100_000)
    red = await _account(billing, uid, "r", f"{y}-07", 100_000)
    disputed = await _account(billing, uid, "d", f"{y}-07", 100_000)
    await post(billing, "/v1/bill-runs", {"bill_run_id": f"BRLF{uid}", "bill_month": f"{y}-07",
                                          "as_of": f"{y}-08-02T09:00:00+08:00"})
    ctx = BillingContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                         SystemClock(), late_fees=LateFeePolicy(enabled=True))
    mine = [plain["account"], red["account"], disputed["account"]]
    # The October bill run, on 2 October: July's bills were due 31 August; 15 days' grace;
    # 16 September through 1 October is 16 days.
    at = datetime(y, 10, 2, 9, 0, tzinfo=BUSINESS_TZ)
    async with db.connect() as conn:
        trans = await conn.begin()
        try:
            await conn.execute(insert(t.credit_exemption_facts).values(
                account_id=red["account"], exempt=True, as_of=at - timedelta(days=3),
                decision_id=f"D{uid}"))
            await conn.execute(insert(t.disputes).values(
                dispute_id=f"DS{uid}", account_id=disputed["account"],
                product_id=disputed["product"], bill_month=datetime(y, 7, 1).date(),
                reason="客户对账单有异议", opened_by="boss.billing", opened_at=at))
            await post_for_bill_run(ctx, conn, datetime(y, 10, 1).date(), f"BR10{uid}", at)
            lines = {r.account_id: r for r in await conn.execute(
                select(t.late_fees).where(t.late_fees.c.account_id.in_(mine)))}
            charged = {r.account_id: r.amount_fen for r in await conn.execute(
                select(t.charges).where(t.charges.c.account_id.in_(mine),
                                        t.charges.c.charge_id.like("LF-%")))}
            line = lines[plain["account"]]
            assert (line.days, line.base_fen, line.fee_fen, line.note) == (16, 100_000, 4_800, "")
            assert (line.first_day.isoformat(), line.last_day.isoformat()) == (
                f"{y}-09-16", f"{y}-10-01")
            assert line.posted_bill_month.isoformat() == f"{y}-10-01"
            # its own line on October's bill: a charge of the product, that month
            assert charged == {plain["account"]: 4_800}
            assert (lines[red["account"]].fee_fen, lines[red["account"]].note) == (
                0, "exempt: red list or emergency no-suspension")
            assert (lines[disputed["account"]].fee_fen,
                    lines[disputed["account"]].note) == (0, "disputed")

            # A credit-admin waives it: an adjustment of October's bill by -48.00 yuan.
            waived: dict[str, Any] = await waive_in(ctx, conn, line.line_id, "首次逾期,减免",
                                                    "zhang.wei", at)
            assert waived["line"]["waived_fen"] == 4_800
            assert waived["line"]["waived_by"] == "zhang.wei"
            adjustment = (await conn.execute(select(t.adjustments).where(
                t.adjustments.c.adjustment_id == f"WV-{line.line_id}"))).one()
            assert adjustment.amount_fen == -4_800
        finally:
            await trans.rollback()
    # Rolled back: nothing of it stays.
    async with db.connect() as conn:
        left = await conn.scalar(select(t.late_fees.c.line_id).where(
            t.late_fees.c.account_id.in_(mine)))
    assert left is None


async def test_late_fee_routes_refuse_bad_input(
    clients: dict[str, httpx.AsyncClient],
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str, test_year: int,
) -> None:
    billing = clients["billing-events"]
    admin = role_clients["credit-admin"]["billing-events"]
    operator = role_clients["operator"]["billing-events"]
    ids = await _account(billing, uid, "x", f"{test_year + 16}-08", 1_000)
    r = await admin.post("/v1/late-fees/LF-nope/waive", json={"reason": "x"})
    assert r.status_code == 404, r.text
    r = await operator.post("/v1/late-fees/LF-nope/waive", json={"reason": "x"})
    assert r.status_code == 403, r.text
    r = await admin.post("/v1/late-fees/LF-nope/waive", json={"reason": ""})
    assert r.status_code == 422, r.text
    body = {"dispute_id": f"DS{uid}", "account_id": ids["account"],
            "product_id": ids["product"], "bill_month": f"{test_year + 16}-08",
            "reason": "计费有误"}
    for bad, code in (({"bill_month": "2200-13"}, 422), ({"product_id": "nope"}, 404),
                      ({"account_id": "nope"}, 404),
                      ({"bill_month": f"{test_year + 16}-09"}, 422)):  # never charged
        r = await billing.post("/v1/disputes", json={**body, **bad})
        assert r.status_code == code, r.text
    # A product billed for the month only by a positive adjustment (补收) has a bill to
    # dispute all the same.
    await post(billing, "/v1/products", {
        "product_id": f"{ids['product']}-adj", "account_id": ids["account"],
        "cpno": f"CPLFx{uid}-adj", "name": "移动办公", "family": "ADC"})
    await post(billing, "/v1/adjustments", {
        "adjustment_id": f"ADJLF{uid}", "account_id": ids["account"],
        "product_id": f"{ids['product']}-adj", "bill_month": f"{test_year + 16}-08",
        "amount_fen": 500, "reason": "补收"})
    by_adjustment = await billing.post("/v1/disputes", json={
        **body, "dispute_id": f"DSA{uid}", "product_id": f"{ids['product']}-adj"})
    assert by_adjustment.status_code == 201, by_adjustment.text
    opened = await billing.post("/v1/disputes", json=body)
    assert opened.status_code == 201, opened.text
    again = await billing.post("/v1/disputes", json=body)
    assert again.status_code == 201 and again.json() == opened.json()
    r = await billing.post("/v1/disputes", json={**body, "reason": "另一个理由"})
    assert r.status_code == 409, r.text
    done = await billing.post(f"/v1/disputes/DS{uid}/resolve", json={"resolution": "已核实"})
    assert done.status_code == 200 and done.json()["resolution"] == "已核实"
    r = await billing.post(f"/v1/disputes/DS{uid}/resolve", json={"resolution": "again"})
    assert r.status_code == 409, r.text
    lines = await billing.get(f"/v1/accounts/{ids['account']}/late-fees")
    assert lines.status_code == 200 and lines.json() == []
