"""The fault suite of the production-shaped topology (STACK=ha: three KRaft brokers with
replication factor 3 and min.insync.replicas=2, PostgreSQL under pg_auto_failover). Under the
reliability suite's seeded workload (charges, a bill run, payments in instalments, sweeps,
through the four services as processes):

1. kill -9 the broker leading the busiest balance partitions, mid-charges; it stays down;
2. kill -9 a second broker mid-bill-run for a few seconds (one broker left: no quorum, no
   ISR of 2, every write waits), then start it again;
3. kill -9 the PostgreSQL primary (its keeper too) mid-payments: the standby is promoted and
   the services follow it through their multi-host URL (target_session_attrs=read-write);
4. bring the old primary back: it rejoins as the new standby (pg_rewind), under a sweep;
5. the first broker comes back;
6. the busiest leader is cut off the network for 20 s (iptables DROP on its two ports,
   loopback only) while the last day's sweep runs, then reachable again.

After each: quiescent, then the invariant checker: 0 lost, 0 doubled, 0 wrong. Each fault's
figures (events in, recovery time, failover time, client-visible errors, /readyz outage)
go to test-artifacts/chaos_ha.json (docs/reliability.md, docs/scaling.md).

Only on the ha stack: `make chaos-ha`. Skipped elsewhere, so `make test` never runs it
(README: it needs the ha stack and takes ~10 minutes).
"""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts import BALANCE_TOPIC
from common.db import make_engine
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack
from tests.reliability.harness import CONSUMED
from tests.reliability.test_chaos import Suite, _reached, services_ready, sweep_after_quiet
from tests.reliability.workload import Scale, Workload, post_retrying, send_all

from .topology import (
    Seen,
    busiest_leader,
    counting_clients,
    dead_letters,
    first_write_after,
    ha,
    on_ha_stack,
    wait_pg_settled,
    watch_readyz,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.chaos,
              pytest.mark.skipif(not on_ha_stack(), reason="needs STACK=ha (make chaos-ha)")]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
YEAR_OFFSET = 36  # h21's test years: test_year + 36..38
BRIEF_OUTAGE_S = 8
CUT_S = 20


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    """The suite's own engine, built as the services build theirs (a pooled connection that
    sat idle is pinged): the failover kills every pooled connection to the old primary."""
    made = make_engine(stack.database_url, pool_size=4)
    yield made
    await made.dispose()


async def test_ha_topology_nothing_lost_nothing_doubled(
    services: ServiceProcesses, engine: AsyncEngine, stack: Stack, test_year: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    scale = Scale.from_env()
    w = Workload(f"ha{uuid.uuid4().hex[:8]}", test_year + YEAR_OFFSET, seed=20261203,
                 scale=scale)
    urls = {name: spec.url for name, spec in services.specs.items()}
    seen = Seen()
    clients = counting_clients(urls, TOKEN, seen)
    s = Suite(services, engine, stack, clients, w)
    billing, credit = clients["billing-events"], clients["credit-control"]
    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(watch_readyz(urls, seen, stop_watch))
    started = time.monotonic()
    try:
        w.import_master_data(services, tmp_path_factory.mktemp("chaos_ha"))
        s.events_before = await s.balance_events()

        # 1. The leader of the busiest balance partitions, kill -9 mid-charges; stays down.
        await post_retrying(billing, *w.charges()[0])  # the topic exists and has records
        victim, led = await busiest_leader(stack.kafka_bootstrap, BALANCE_TOPIC)
        kill: dict[str, float] = {}

        async def kill_leader(total: int) -> None:
            sql = "SELECT count(*) FROM billing.outbox WHERE key LIKE :p"
            while not await _reached(s, sql, total // 3):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            kill["at"] = time.monotonic()
            await asyncio.to_thread(ha, "broker-kill", str(victim))

        seen.take()
        await send_all(billing, w.charges(), scale.concurrency, kill_leader)
        await s.settle(f"kill -9 broker {victim} (leader of the busiest partitions), kept down",
                       kill["at"], 1)
        _extend(s, seen, {"broker": victim, "records_led_before": led})

        # 2. A second broker down for a few seconds mid-bill-run: one broker left.
        second = next(b for b in (1, 2, 3) if b != victim)
        accounts = len(w.accounts)
        applied_sql = ("SELECT count(*) FROM credit.inbox i JOIN billing.outbox o "
                       "USING (event_id) WHERE i.consumer = 'credit-control' AND o.key LIKE :p")
        before = await s.count(applied_sql)
        await post_retrying(billing, *w.bill_run())
        deadline = time.monotonic() + 120
        while not await _reached(s, applied_sql, before + accounts // 4) \
                and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        at = time.monotonic()
        await asyncio.to_thread(ha, "broker-kill", str(second))
        await asyncio.sleep(BRIEF_OUTAGE_S)
        await asyncio.to_thread(ha, "broker-start", str(second))
        back = time.monotonic() - at
        await s.settle(f"kill -9 broker {second} for {BRIEF_OUTAGE_S} s (one broker left), "
                       "mid-bill-run", at, 1)
        _extend(s, seen, {"broker": second, "down_s": round(back, 1)})

        # 3. The PostgreSQL primary, kill -9 (keeper and postgres) mid-payments.
        primary = await asyncio.to_thread(ha, "pg-primary")
        payments = asyncio.create_task(send_all(
            billing, w.instalments(w.early_payers(), "early", 11, 3), scale.concurrency))
        await asyncio.sleep(3)
        at = time.monotonic()
        await asyncio.to_thread(ha, "pg-kill", primary)
        failover_s = await first_write_after(stack.database_url, at)
        await payments
        await services_ready(services)
        new_primary = await asyncio.to_thread(ha, "pg-primary")
        await sweep_after_quiet(s, credit, 10)
        await s.settle(f"kill -9 PostgreSQL primary (node {primary}); standby promoted "
                       "(+ sweep of the 10th)", at, 1)
        _extend(s, seen, {"old_primary": primary, "new_primary": new_primary,
                          "failover_s": round(failover_s, 1)})
        assert new_primary and new_primary != primary

        # 4. The old primary back, as the new standby, while the 25th's sweep runs.
        at = time.monotonic()
        await asyncio.to_thread(ha, "pg-start", primary)
        sweeping = asyncio.create_task(sweep_after_quiet(s, credit, 25))
        settled_primary = await wait_pg_settled()
        rejoin_s = time.monotonic() - at
        await sweeping
        await s.settle(f"old primary (node {primary}) rejoins as standby (+ sweep of the 25th)",
                       at, 1)
        _extend(s, seen, {"rejoin_s": round(rejoin_s, 1), "primary": settled_primary})
        assert settled_primary == new_primary  # rejoining never takes the primary back

        # 5. The first broker back; the late payers pay (restores).
        at = time.monotonic()
        await asyncio.to_thread(ha, "broker-start", str(victim))
        await send_all(billing, w.instalments(w.late_payers(), "late", 12, 3),
                       scale.concurrency)
        await s.settle(f"broker {victim} back (+ late payments)", at, 1)
        _extend(s, seen, {"broker": victim})

        # 6. The busiest leader cut off the network (iptables, loopback) while the last
        #    day's sweep suspends; then reachable again.
        cut, led = await busiest_leader(stack.kafka_bootstrap, BALANCE_TOPIC)
        at = time.monotonic()
        await asyncio.to_thread(ha, "broker-cut", str(cut))
        try:
            sweeping = asyncio.create_task(sweep_after_quiet(s, credit, 30))
            await asyncio.sleep(CUT_S)
        finally:
            await asyncio.to_thread(ha, "broker-heal", str(cut))
        await sweeping
        await s.settle(f"broker {cut} cut off the network for {CUT_S} s (+ sweep of the "
                       "last day)", at, 1)
        _extend(s, seen, {"broker": cut, "records_led_before": led})
        # Never dead-lettered: no fault may cost an event its place in the log.
        s.rows[-1]["dead_letters"] = await dead_letters(stack.kafka_bootstrap, CONSUMED)
        assert not any(s.rows[-1]["dead_letters"].values()), s.rows[-1]["dead_letters"]
    finally:
        stop_watch.set()
        await watcher
        for client in clients.values():
            await client.aclose()
        _write_figures(s, scale, time.monotonic() - started)
    assert sum(r["events_in"] for r in s.rows) >= 2_000


def _extend(s: Suite, seen: Seen, extra: dict[str, Any]) -> None:
    s.rows[-1].update(extra, **seen.take())
    print(json.dumps(s.rows[-1], ensure_ascii=False))


def _write_figures(s: Suite, scale: Scale, total_s: float) -> None:
    out = ROOT / "test-artifacts" / "chaos_ha.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"groups": scale.groups, "seed": s.w.seed,
                               "total_s": round(total_s, 1), "scenarios": s.rows},
                              indent=2, ensure_ascii=False))
