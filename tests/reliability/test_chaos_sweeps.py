"""The fault suite's sweep faults: credit-control SIGKILLed while a confirmed held sweep makes
its suspensions, SIGKILLed between the chunks of a plain sweep, and down across a scheduled
sweep time. After each: quiescent, then the invariant checker finds nothing lost, nothing
doubled, nothing wrong, and the sweep run is done.

A seeded workload of its own (a bill run, early payers, then the 10th, 25th and last-day
sweeps), so it runs on its own in the short form of `make test` (~40 groups, about two
minutes); `make chaos` runs it with more groups (CHAOS_SCALE=full). The session's
credit-control is replaced, for the whole test, by one with a one-product chunk
(`CREDIT_SWEEP_CHUNK=1`: every product its own transaction, so a kill lands between chunks),
and for the scheduled-time fault by one whose clock stands on the workload's day with the
scheduler on; the session's process is put back at the end. Recovery times go to
test-artifacts/reliability-sweeps.json and docs/reliability.md.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack
from tests.reliability.harness import figures, quiescent
from tests.reliability.invariants import verify
from tests.reliability.workload import Scale, Workload, post_retrying, send_all

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
CC = "credit-control"
SCHEDULED = "20:00"


class Sweeps:
    """The workload, the credit-control process of the moment, and the figures."""

    def __init__(self, services: ServiceProcesses, stack: Stack, db: AsyncEngine,
                 clients: dict[str, httpx.AsyncClient], w: Workload) -> None:
        self.services, self.stack, self.db, self.w = services, stack, db, w
        self.credit = clients[CC]
        self.own: ServiceProcesses | None = None
        self.rows: list[dict[str, Any]] = []
        self.ready_at = 0.0  # when the last credit-control started answered /readyz

    @property
    def scope(self) -> str:
        return f"{self.w.prefix}-"

    async def start(self, **env: str) -> None:
        """credit-control with these settings (CREDIT_…) in place of what runs now."""
        await self.stop()
        spec = self.services.specs[CC]
        extra = {"CREDIT_SWEEP_CHUNK": "1", **{f"CREDIT_{k.upper()}": v for k, v in env.items()}}
        self.own = ServiceProcesses([replace(spec, extra_env=(*spec.extra_env, *extra.items()))],
                                    self.stack, self.services.log_dir, TOKEN)
        self.own.start(CC)
        await asyncio.to_thread(self.own.wait_ready, CC, 120)
        self.ready_at = time.monotonic()

    async def stop(self) -> None:
        if self.own is not None and self.own.running(CC):
            await asyncio.to_thread(self.own.stop, CC)
        elif self.services.running(CC):
            await asyncio.to_thread(self.services.stop, CC)

    async def kill(self) -> None:
        assert self.own is not None
        await asyncio.to_thread(self.own.kill, CC)

    async def restore_session(self) -> None:
        await self.stop()
        self.services.start(CC)
        await asyncio.to_thread(self.services.wait_ready, CC, 120)

    async def quiet(self) -> float:
        return await quiescent(self.db, self.stack.kafka_bootstrap, self.credit, self.scope)

    async def settle(self, name: str, fault_at: float, sweep_id: str) -> None:
        """The run done, quiescent, then the checker; one row of figures."""
        await run_done(self.credit, sweep_id)
        # from the restarted process's readiness to the sweep done: the resume itself
        finished = round(time.monotonic() - self.ready_at, 1)
        await self.quiet()
        recovery = time.monotonic() - fault_at
        report = await verify(self.db, self.stack.kafka_bootstrap, self.scope,
                              self.services.specs["gateway-adapter"].url, TOKEN)
        row = {**figures(name, 0, 1, recovery, report), "ready_to_done_s": finished}
        self.rows.append(row)
        print(json.dumps(row, ensure_ascii=False))
        assert report.ok, (name, report.as_json())

    async def decided(self, sweep_id: str) -> int:
        async with self.db.connect() as conn:
            return int(await conn.scalar(text(
                "SELECT COALESCE(sum(decided), 0) FROM credit.sweep_steps WHERE sweep_id = :s"),
                {"s": sweep_id}) or 0)

    async def kill_mid_sweep(self, sweep_id: str,
                             request: Callable[[], Coroutine[Any, Any, httpx.Response]]) -> float:
        """Sends the request that runs the sweep; SIGKILLs credit-control once two one-product
        chunks of it committed (beyond what a held run decided before). Returns the kill
        moment."""
        before = await self.decided(sweep_id)
        sent = asyncio.create_task(request())
        deadline = time.monotonic() + 120
        while (await self.decided(sweep_id) < before + 2  # noqa: ASYNC110
               and time.monotonic() < deadline):
            await asyncio.sleep(0.01)
        at = time.monotonic()
        await self.kill()
        with contextlib.suppress(httpx.TransportError):
            r = await sent
            pytest.fail(f"{sweep_id} finished before the kill: {r.status_code} {r.text}")
        async with self.db.connect() as conn:
            status = await conn.scalar(text(
                "SELECT status FROM credit.sweep_runs WHERE sweep_id = :s"), {"s": sweep_id})
        assert status == "running", (sweep_id, status)
        return at


async def run_done(credit: httpx.AsyncClient, sweep_id: str) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        with contextlib.suppress(httpx.TransportError):
            body: dict[str, Any] = (await credit.get(f"/v1/sweeps/{sweep_id}")).json()
            return body
        return {}
    return await eventually(get, lambda b: b.get("status") == "done", timeout=300,
                            what=f"sweep {sweep_id} done")


@contextlib.asynccontextmanager
async def guard(credit: httpx.AsyncClient, **settings: Any) -> AsyncIterator[None]:
    keys = ("enabled", "max_share", "min_active")
    old = (await credit.get("/v1/guard")).json()
    r = await credit.put("/v1/guard", json={"changed_by": "chaos", **{k: old[k] for k in keys},
                                            **settings})
    assert r.status_code == 200, r.text
    try:
        yield
    finally:
        r = await credit.put("/v1/guard", json={"changed_by": "chaos",
                                                **{k: old[k] for k in keys}})
        assert r.status_code == 200, r.text


async def test_chaos_sweeps_finish_and_missed_days_are_caught_up(
    services: ServiceProcesses, db: AsyncEngine, stack: Stack,
    clients: dict[str, httpx.AsyncClient], test_year: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    full = Scale.from_env().groups >= 3000
    # Its own year (test_year + 12): the scheduled day's id auto-YYYY-11-10 is fresh.
    w = Workload(f"cs{uuid.uuid4().hex[:8]}", test_year + 12, seed=20261203,
                 scale=Scale(groups=400 if full else 40))
    s = Sweeps(services, stack, db, clients, w)
    billing, credit = clients["billing-events"], clients[CC]
    started = time.monotonic()
    w.import_master_data(services, tmp_path_factory.mktemp("chaos-sweeps"))
    await send_all(billing, w.charges(), 8)
    await post_retrying(billing, *w.bill_run())
    await send_all(billing, w.instalments(w.early_payers(), "early", 11, 3), 8)
    # The guard off (its own settings for fault 3): the days' sweeps also judge other tests'
    # owing products, which must not make the scheduled day a held one.
    try:
        async with guard(credit, enabled=False):
            await faults(s, credit)
    finally:
        await s.restore_session()
    _write_figures(s, full, time.monotonic() - started)


async def faults(s: Sweeps, credit: httpx.AsyncClient) -> None:
    w = s.w
    # 1. Down across the 10th's scheduled time: back at 21:00 (its clock on that day),
    #    it runs the 10th's sweep as of 20:00 by itself, labelled a catch-up.
    await s.quiet()
    day = f"{w.year}-11-10"
    due = datetime.fromisoformat(w.day(11, 10, 20))
    offset = (due + timedelta(hours=1) - datetime.now(UTC)).total_seconds()
    await s.stop()
    at = time.monotonic()
    # Only the sweep's scheduler: the checker replays with profiles and exemptions as they
    # are now, so a rating run (new stars, limits, tiers) or a red-list lapse on this day
    # would rewrite the inputs of decisions taken before it.
    await s.start(scheduler_enabled="true", scheduler_time=SCHEDULED,
                  scheduler_catch_up_days="0", scheduler_month_end_catch_up_days="0",
                  clock_offset_s=str(offset), rating_scheduler_enabled="false",
                  collections_scheduled="false")
    await s.settle("credit-control down across a scheduled sweep time (catch-up)", at,
                   f"auto-{day}")
    run = (await credit.get(f"/v1/sweeps/auto-{day}")).json()
    assert run["catch_up"] is True and datetime.fromisoformat(run["as_of"]) == due, run
    assert run["decisions"], run  # the workload's warnings were decided

    # 2. SIGKILL between the chunks of the 25th's plain sweep; nobody re-posts it: the
    #    restarted credit-control resumes it from its cursors by itself.
    await s.start()
    sweep_id = f"{w.prefix}-11-25"
    body = {"sweep_id": sweep_id, "as_of": w.day(11, 25, 20)}
    at = await s.kill_mid_sweep(sweep_id, lambda: credit.post("/v1/sweeps", json=body))
    await s.start()
    await s.settle("SIGKILL credit-control between a plain sweep's chunks", at, sweep_id)

    # 3. SIGKILL while the last day's sweep, held by the guard and confirmed, makes its
    #    suspensions; the confirmation is posted again after the restart.
    sweep_id = f"{w.prefix}-11-30"
    async with guard(credit, enabled=True, max_share=1e-9, min_active=0):  # any suspension
        r = await post_retrying(credit, "/v1/sweeps",
                                {"sweep_id": sweep_id, "as_of": w.day(11, 30, 20)})
        assert r.json()["status"] == "held", r.text
        at = await s.kill_mid_sweep(sweep_id, lambda: credit.post(
            f"/v1/sweeps/{sweep_id}/confirm", json={"note": "chaos"}))
        await s.start()
        again = await credit.post(f"/v1/sweeps/{sweep_id}/confirm", json={})
        assert again.status_code in (200, 202), again.text
        await s.settle("SIGKILL credit-control during a confirmed held sweep", at,
                       sweep_id)
    assert (await credit.post(f"/v1/sweeps/{sweep_id}/confirm", json={})).status_code == 409


def _write_figures(s: Sweeps, full: bool, total_s: float) -> None:
    out = ROOT / "test-artifacts" / "reliability-sweeps.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"scale": "full" if full else "short",
                               "groups": s.w.scale.groups, "seed": s.w.seed,
                               "total_s": round(total_s, 1), "scenarios": s.rows},
                              indent=2, ensure_ascii=False))
