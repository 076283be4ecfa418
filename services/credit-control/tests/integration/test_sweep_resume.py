"""Sweeps that finish and a scheduler that catches up, with credit-control as a real process
SIGKILLed mid-sweep: a confirmed held sweep and a plain sweep between its chunks complete
after a restart, every due suspension exactly once; a day whose scheduled time passed while
credit-control was down is run on start-up, labelled a catch-up.

Each test replaces the session's credit-control by one with its own settings (a small
`CREDIT_SWEEP_CHUNK`, the scheduler on a clock standing on another day) on the same port and
consumer group, and puts the session's back afterwards."""

import asyncio
import contextlib
import time as monotonic
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ
from common.contracts.snapshots import ProductFamily, Tier
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack

from .helpers import CreditApi, Ledger, at, fresh_year, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier
CC = "credit-control"
PRODUCTS = 40  # with a chunk of 1: one transaction per product, time enough to kill mid-way


class OwnCreditControl:
    """credit-control started with extra settings in place of the session's."""

    def __init__(self, services: ServiceProcesses, stack: Stack, env: dict[str, str]) -> None:
        spec = services.specs[CC]
        self.session = services
        self.procs = ServiceProcesses(
            [replace(spec, extra_env=(*spec.extra_env, *env.items()))], stack,
            services.log_dir, "test-token")

    async def start(self) -> None:
        self.procs.start(CC)
        await asyncio.to_thread(self.procs.wait_ready, CC, 120)

    async def kill(self) -> None:
        await asyncio.to_thread(self.procs.kill, CC)


@contextlib.asynccontextmanager
async def own_credit_control(services: ServiceProcesses, stack: Stack,
                             **env: str) -> AsyncIterator[OwnCreditControl]:
    await asyncio.to_thread(services.stop, CC)
    own = OwnCreditControl(services, stack, {f"CREDIT_{k.upper()}": v for k, v in env.items()})
    try:
        await own.start()
        yield own
    finally:
        if own.procs.running(CC):
            await asyncio.to_thread(own.procs.stop, CC)
        services.start(CC)
        await asyncio.to_thread(services.wait_ready, CC, 120)


@contextlib.asynccontextmanager
async def guard(api: CreditApi, **settings: Any) -> AsyncIterator[None]:
    old = (await api.http.get("/v1/guard")).json()
    r = await api.http.put("/v1/guard", json={"changed_by": "test", **{
        k: old[k] for k in ("enabled", "max_share", "min_active")}, **settings})
    assert r.status_code == 200, r.text
    try:
        yield
    finally:
        r = await api.http.put("/v1/guard", json={"changed_by": "test", **{
            k: old[k] for k in ("enabled", "max_share", "min_active")}})
        assert r.status_code == 200, r.text


async def owing(api: CreditApi, y: int, uid: str, products: int = PRODUCTS,
                work_orders: bool = True) -> list[Ledger]:
    """Accounts owing for July, half direct (ADC), half by work order (all direct without
    `work_orders`); warned on the 25th."""
    ledgers = [ledger(uid, f"rs{i}", F.ADC if i % 2 or not work_orders else F.WORK_ORDER,
                      T.LOW) for i in range(products)]
    await api.deliver(*((lg, lg.bill_run(f"{y}-07", 3_000, at(date(y, 8, 2), 9)))
                        for lg in ledgers))
    async with guard(api, enabled=False):
        await api.sweep(date(y, 8, 25), f"rs-{uid}-25")
    # The month-end sweeps below are posted directly (not through api.sweep, which waits):
    # every warning's SMS must have been heard of first, or the notice gate holds its product.
    assert await notices_heard(api.db, timeout=60) == 0
    return ledgers


async def suspended_so_far(db: AsyncEngine, sweep_id: str) -> int:
    """Suspensions the sweep committed (its steps' durable progress)."""
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT COALESCE(sum(decided), 0) FROM credit.sweep_steps "
            "WHERE sweep_id = :s AND decision = 'suspend'"), {"s": sweep_id}) or 0)


async def kill_mid_sweep(own: OwnCreditControl, db: AsyncEngine, sweep_id: str,
                         request: Callable[[], Coroutine[Any, Any, httpx.Response]],
                         products: int = PRODUCTS) -> int:
    """Sends the request that runs the suspensions, SIGKILLs credit-control once a few
    one-product chunks committed; returns how many suspensions had."""
    sent = asyncio.create_task(request())
    deadline = monotonic.monotonic() + 120
    while await suspended_so_far(db, sweep_id) < 3 and monotonic.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await own.kill()
    with contextlib.suppress(httpx.TransportError):
        r = await sent
        pytest.fail(f"the sweep finished before the kill: {r.status_code} {r.text}")
    done = await suspended_so_far(db, sweep_id)
    assert 3 <= done < products, f"killed after {done} suspensions: not mid-sweep"
    return done


async def suspended_once(api: CreditApi, ledgers: list[Ledger]) -> None:
    for lg in ledgers:
        assert [d[0] for d in await api.decisions(lg.product_id)] == [
            "bill_notice", "suspension_warning", "suspend"], lg.product_id
        assert await api.state(lg.product_id) == (
            "suspended" if lg.family is F.ADC else "suspend_requested")
        made = [e for e in await api.outbox(lg.account_id, "credit.decisions.v1")
                if e.get("decision") == "suspend"]
        assert len(made) == 1, (lg.account_id, made)
        if lg.family is F.WORK_ORDER:
            assert len(await api.work_orders(product_id=lg.product_id)) == 1


async def run_done(api: CreditApi, sweep_id: str, timeout: float = 120) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        body: dict[str, Any] = (await api.http.get(f"/v1/sweeps/{sweep_id}")).json()
        return body
    return await eventually(get, lambda b: b.get("status") == "done", timeout=timeout,
                            what=f"sweep {sweep_id} done")


async def test_a_confirmed_held_sweep_killed_mid_way_finishes_on_reconfirm(
    api: CreditApi, services: ServiceProcesses, stack: Stack, db: AsyncEngine,
    test_year: int,
) -> None:
    y, uid = test_year, new_uid()
    async with own_credit_control(services, stack, sweep_chunk="1") as own:
        ledgers = await owing(api, y, uid)
        sweep_id = f"rs-{uid}-held"
        # Any suspension at all is over this share, however many products the shared
        # database holds (0.001 let a database of a soak's 60,000 products through).
        async with guard(api, enabled=True, max_share=1e-9, min_active=0):
            held = await api.sweep(date(y, 8, 31), sweep_id)
            assert held["held"] and held["status"] == "held", held
            unfinished = (await api.http.get("/v1/sweeps", params={"status": "unfinished"}))
            assert sweep_id in [r["sweep_id"] for r in unfinished.json()]
            await kill_mid_sweep(own, db, sweep_id, lambda: api.http.post(
                f"/v1/sweeps/{sweep_id}/confirm", json={"note": "月末集中停机, 已核实"}))
            await own.start()
            # The confirmation again: not 409 "already confirmed", but what was left.
            r = await api.http.post(f"/v1/sweeps/{sweep_id}/confirm", json={})
            assert r.status_code in (200, 202), r.text
            body = await run_done(api, sweep_id)
        assert body["decisions"]["suspend"] >= PRODUCTS
        await suspended_once(api, ledgers)
        again = await api.http.post(f"/v1/sweeps/{sweep_id}/confirm", json={})
        assert again.status_code == 409, again.text
        done = (await api.http.get("/v1/sweeps", params={"status": "done"})).json()
        assert sweep_id in [r["sweep_id"] for r in done]
        assert next(r for r in done if r["sweep_id"] == sweep_id)["progress"]["cursor"] == {}
        bogus = await api.http.get("/v1/sweeps", params={"status": "bogus"})
        assert bogus.status_code == 422, bogus.text
        unknown = await api.http.get(f"/v1/sweeps/nope-{uid}")
        assert unknown.status_code == 404 and unknown.json()["error"], unknown.text


# Forced into concurrent lanes: a pass over every product of the shared database splits
# into ranges (sweeps.range_cuts; ten for two lanes, which the split needs 100 products for),
# the lanes taking them in turn; killed, the resume re-splits from the committed cursor. Its
# products are all direct: open work orders of its own would crowd the dashboard's front
# page (the 50 soonest due), where tests/e2e/test_dashboard_actions.py takes one of its own.
IN_LANES = {"sweep_lanes": "2", "sweep_lanes_min_products": "0"}


@pytest.mark.parametrize("settings", [{}, IN_LANES], ids=["one lane", "ranges in two lanes"])
async def test_a_plain_sweep_killed_between_chunks_finishes_by_itself_on_start_up(
    api: CreditApi, services: ServiceProcesses, stack: Stack, db: AsyncEngine,
    test_year: int, settings: dict[str, str],
) -> None:
    y, uid = test_year, new_uid()
    products = PRODUCTS if not settings else 3 * PRODUCTS
    async with own_credit_control(services, stack, sweep_chunk="1", **settings) as own:
        ledgers = await owing(api, y, uid, products, work_orders=not settings)
        if settings:
            async with db.begin() as conn:  # the split reads the table's row estimate
                await conn.execute(text("ANALYZE credit.product_credit"))
        sweep_id = f"rs-{uid}-plain"
        body = {"sweep_id": sweep_id, "as_of": at(date(y, 8, 31)).isoformat()}
        async with guard(api, enabled=False):
            killed_at = await kill_mid_sweep(own, db, sweep_id,
                                             lambda: api.http.post("/v1/sweeps", json=body),
                                             products)
            async with db.connect() as conn:
                status = await conn.scalar(text(
                    "SELECT status FROM credit.sweep_runs WHERE sweep_id = :s"), {"s": sweep_id})
            assert status == "running"
            await own.start()  # nobody re-posts: the resume loop finishes it
            done = await run_done(api, sweep_id)
        assert done["decisions"]["suspend"] >= products > killed_at
        await suspended_once(api, ledgers)
        if settings:  # it did run in ranges
            log = (services.log_dir / f"{CC}.log").read_text(encoding="utf-8", errors="replace")
            split = [line for line in log.splitlines()
                     if f"sweep {sweep_id}: " in line and " ranges from " in line]
            assert split, "no split into ranges logged"
        # Re-posting the finished sweep answers what it did, and does nothing again.
        r = await api.http.post("/v1/sweeps", json=body)
        assert r.status_code == 201 and r.json()["status"] == "done", r.text
        await suspended_once(api, ledgers)



async def test_a_scheduled_day_missed_while_down_is_caught_up_on_start_up(
    api: CreditApi, services: ServiceProcesses, stack: Stack, db: AsyncEngine,
    test_year: int,
) -> None:
    """credit-control was down at 20:00 on the 25th; it comes back at 21:00 (its clock
    stands on that day) and runs the 25th's sweep as of 20:00, labelled a catch-up. Its SMS
    leaves the next morning (the customer sending window closed at 21:00), so the notice
    counts from the 26th."""
    y = await fresh_year(db, test_year)
    lg = ledger(new_uid(), "catchup", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9))))
    due = datetime.combine(date(y, 10, 25), time(20, 0), BUSINESS_TZ)
    offset = (due + timedelta(hours=1) - datetime.now(UTC)).total_seconds()
    sweep_id = f"auto-{y}-10-25"
    # The guard off: other tests' owing products must not make the day's sweep a held one.
    async with guard(api, enabled=False), own_credit_control(
            services, stack, scheduler_enabled="true", scheduler_time="20:00",
            scheduler_catch_up_days="0", scheduler_month_end_catch_up_days="0",
            clock_offset_s=str(offset)):
        run = await run_done(api, sweep_id)
    assert run["catch_up"] is True
    assert datetime.fromisoformat(run["as_of"]) == due
    credit = await api.credit(lg.product_id)
    assert [d["decision"] for d in credit["decisions"]] == ["bill_notice", "suspension_warning"]
    warning = credit["decisions"][-1]
    assert datetime.fromisoformat(warning["as_of"]) == due
    assert warning["inputs"]["cause"] == "catch-up sweep"
    assert warning["inputs"]["catch_up"] == sweep_id
    # Really made at 21:00 on the 25th, when the customer sending window has closed: the
    # notifier holds its SMS until 08:00 on the 26th, and the notice (October's 6 days)
    # counts from then (ladder.first_sending_day): 26 + 6 = November 1st, not the 31st.
    assert credit["ladder"]["suspension_deadline"] == f"{y}-11-01"
    audit = (await api.http.get("/v1/audit", params={"entity": "sweep",
                                                     "entity_id": sweep_id})).json()
    assert [a["action"] for a in audit] == ["sweep catch-up"]
    sent = await api.outbox(lg.account_id, "credit.decisions.v1")
    assert [e["decision"] for e in sent if "decision" in e] == [
        "bill_notice", "suspension_warning"]
    async with db.connect() as conn:
        cid = await conn.scalar(text(
            "SELECT payload::jsonb ->> 'correlation_id' FROM credit.outbox_messages WHERE key = :k "
            "AND payload::jsonb -> 'payload' ->> 'decision' = 'suspension_warning'"),
            {"k": lg.account_id})
    assert cid == f"catch-up:{sweep_id}"
