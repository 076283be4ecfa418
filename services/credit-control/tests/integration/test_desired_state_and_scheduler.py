"""What credit-control wants the chain to hold (`GET /v1/provisioning/desired`, read by the
gateway's reconciliation) and the in-process scheduler that runs the daily sweep."""

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.reconciliation import DesiredChainPage, ReconciliationReport
from common.contracts.snapshots import ProductFamily, Tier
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.polling import eventually
from common.testing.stack import Stack
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.service_layer import sweeps
from credit_control.service_layer.context import CreditContext

from .helpers import CreditApi, Ledger, at, fresh_year, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier


async def _desired(api: CreditApi, after: str, limit: int) -> DesiredChainPage:
    r = await api.http.get("/v1/provisioning/desired", params={"after": after, "limit": limit})
    assert r.status_code == 200, r.text
    return DesiredChainPage.model_validate(r.json())


def _row(page: DesiredChainPage, lg: Ledger) -> tuple[Any, ...]:
    [item] = [i for i in page.items if i.product_id == lg.product_id]
    return (item.family, item.vendor, item.desired.value, item.sequence, item.since,
            item.account_id, item.customer_id, item.cpno)


async def test_desired_chain_state_pages_and_reconciles_with_the_gateway(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], test_year: int
) -> None:
    y, uid = test_year, new_uid()
    prefix = f"Prc{uid}-"
    suspended = ledger("-a", f"rc{uid}", F.MAS, T.LOW)
    restored = ledger("-b", f"rc{uid}", F.SMS_DIRECT, T.LOW)
    warned = ledger("-c", f"rc{uid}", F.MAS, T.LOW, vendor="jiaxun")
    adc = ledger("-d", f"rc{uid}", F.ADC, T.LOW)
    owing = (suspended, restored, adc)
    await api.deliver(*((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9)))
                        for lg in owing))
    await api.sweep(date(y, 10, 25), f"rc-{uid}-sw")  # notice before suspension (docs/rules.md)
    await api.sweep(date(y, 10, 31), f"rc-{uid}")
    await api.settled(suspended, restored)
    paid_at = at(date(y, 11, 1), 10)
    await api.deliver((restored, restored.payment(paid_at)),
                      (warned, warned.bill_run(f"{y}-10", 2_000, at(date(y, 11, 2), 9))))
    await api.settled(restored)
    assert [await api.state(lg.product_id) for lg in (suspended, restored, warned, adc)] == [
        "suspended", "normal", "warned", "suspended"]

    first = await _desired(api, prefix, 2)
    assert [i.product_id for i in first.items] == [suspended.product_id, restored.product_id]
    assert first.next_after == restored.product_id
    second = await _desired(api, first.next_after, 2)
    assert second.items[0].product_id == warned.product_id
    assert adc.product_id not in {i.product_id for i in (*first.items, *second.items)}
    swept_at = at(date(y, 10, 31))
    assert _row(first, suspended) == (
        F.MAS, "huawei", "suspend", 1, swept_at, suspended.account_id,
        suspended.customer.customer_id, suspended.products[0].cpno)
    assert _row(first, restored)[:5] == (F.SMS_DIRECT, None, "restore", 2, paid_at)
    assert _row(second, warned)[:5] == (F.MAS, "jiaxun", "restore", 0, None)

    # Past the end: an empty page and no next one.
    last = await _desired(api, "\U0010ffff", 5)
    assert (last.items, last.next_after) == ((), None)
    base = str(api.http.base_url)
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        r = await httpx.AsyncClient(base_url=base, headers=headers).get("/v1/provisioning/desired")
        assert r.status_code == 401, r.text
    r = await api.http.get("/v1/provisioning/desired", params={"limit": 0})
    assert r.status_code == 422, r.text

    r = await clients["gateway-adapter"].get("/v1/reconciliation",
                                             params={"product_prefix": prefix})
    assert r.status_code == 200, r.text
    report = ReconciliationReport.model_validate(r.json())
    assert report.products_compared == 3
    assert (report.missed_suspensions, report.wrong_suspensions, report.stuck_emos_orders,
            report.in_flight, report.differences) == (0, 0, 0, 0, ())



async def test_scheduler_runs_the_daily_sweep_at_the_configured_time(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int
) -> None:
    """The scheduler as credit-control runs it, on a clock standing just before the time."""
    y = await fresh_year(db, test_year)
    lg = ledger(new_uid(), "sched", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9))))
    due = datetime.combine(date(y, 10, 25), time(9, 30), BUSINESS_TZ)
    settings = Settings(database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap,
                        scheduler_enabled=True, scheduler_time="09:30",
                        scheduler_catch_up_days=0, scheduler_month_end_catch_up_days=0)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(due - timedelta(milliseconds=300)), settings=settings)
    stop = asyncio.Event()
    task = asyncio.create_task(sweeps.scheduler(ctx)(stop))
    try:
        credit = await eventually(lambda: api.credit(lg.product_id),
                                  lambda c: c["state"] == "suspension_warned",
                                  what="the scheduled sweep decided")
    finally:
        stop.set()
        await task
    sweep_id = f"auto-{y}-10-25"
    decision = credit["decisions"][-1]
    assert decision["decision"] == "suspension_warning"
    assert datetime.fromisoformat(decision["as_of"]) == due
    assert len(credit["decisions"]) == 2
    async with db.connect() as conn:
        stored = await conn.scalar(text(
            "SELECT response FROM credit.idempotency_keys WHERE scope = 'sweep' AND key = :k"),
            {"k": sweep_id})
    assert stored["sweep_id"] == sweep_id
    assert datetime.fromisoformat(stored["as_of"]) == due
    # Another process (or a restart) coming round to the same day replays the stored answer.
    r = await api.http.post("/v1/sweeps", json={"sweep_id": sweep_id, "as_of": due.isoformat()})
    assert (r.status_code, r.json()) == (201, stored)
    assert len((await api.credit(lg.product_id))["decisions"]) == 2
