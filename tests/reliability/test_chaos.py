"""The fault suite: a seeded workload (a bill run, sweeps on the 10th, 25th and last day,
payments in instalments, restores through the chain, December 15th's deductions from
deposits) while, one after another, each service is SIGKILLed mid-batch and restarted, the
broker and the database restart, EMOS fails 30 % and the gateway stage is down a while,
billing-events is SIGKILLed as it collects the deductions, poison lands on every consumed
topic, and a slice of every topic is delivered again. After each fault: wait until
quiescent, then the invariant checker must find nothing lost, nothing doubled, nothing
wrong.

Short form in `make test` (500 groups, ~2,000 balance events); `make chaos` runs
CHAOS_SCALE=full (3,000 groups, >10,000 events) and writes docs/reliability.md's figures to
test-artifacts/reliability.json.

It shares the session's services (their consumer groups and inbox names are the services'
names, so a second set of processes would compete for the same partitions) and restarts the
broker and the database under them: every service must reconnect on its own.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack
from tests.reliability.bounded_poison import bounded_poison
from tests.reliability.harness import (
    dead_lettered,
    feed_poison,
    figures,
    poison_messages,
    quiescent,
    replay_slice,
    stack_verb,
)
from tests.reliability.invariants import Report, verify
from tests.reliability.test_invariants import sweep
from tests.reliability.workload import Scale, Workload, post_retrying, send_all

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"


class Suite:
    def __init__(self, services: ServiceProcesses, db: AsyncEngine, stack: Stack,
                 clients: dict[str, httpx.AsyncClient], w: Workload) -> None:
        self.services, self.db, self.stack, self.clients, self.w = services, db, stack, clients, w
        self.rows: list[dict[str, Any]] = []
        self.events_before = 0

    @property
    def scope(self) -> str:
        return f"{self.w.prefix}-"

    async def balance_events(self) -> int:
        async with self.db.connect() as conn:
            return int(await conn.scalar(text(
                "SELECT count(*) FROM billing.outbox WHERE key LIKE :p"),
                {"p": self.scope + "%"}) or 0)

    async def settle(self, name: str, fault_at: float, faults: int,
                     extra_in: int = 0) -> Report:
        """Quiescent, then the checker; one row of figures."""
        await quiescent(self.db, self.stack.kafka_bootstrap, self.clients["credit-control"],
                        self.scope)
        recovery = time.monotonic() - fault_at
        report = await verify(self.db, self.stack.kafka_bootstrap, self.scope,
                              self.services.specs["gateway-adapter"].url, TOKEN)
        now = await self.balance_events()
        row = figures(name, now - self.events_before + extra_in, faults, recovery, report)
        self.events_before = now
        self.rows.append(row)
        print(json.dumps(row, ensure_ascii=False))
        if not report.ok:  # in full: pytest's assertion message is cut short
            print(json.dumps(report.as_json(), ensure_ascii=False, default=str))
        assert report.ok, (name, report.as_json())
        return report

    def restart(self, name: str) -> None:
        self.services.kill(name)
        self.services.start(name)
        self.services.wait_ready(name)

    async def kill_when(self, name: str, reached: Callable[[], Awaitable[bool]]) -> float:
        """SIGKILL `name` once `reached()` says it is mid-batch; returns the kill moment."""
        deadline = time.monotonic() + 120
        while not await reached() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        at = time.monotonic()
        await asyncio.to_thread(self.restart, name)
        return at

    async def count(self, sql: str) -> int:
        async with self.db.connect() as conn:
            return int(await conn.scalar(text(sql), {"p": self.scope + "%"}) or 0)


async def test_chaos_nothing_lost_nothing_doubled(
    services: ServiceProcesses, db: AsyncEngine, stack: Stack,
    clients: dict[str, httpx.AsyncClient], test_year: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    scale = Scale.from_env()
    w = Workload(f"ch{uuid.uuid4().hex[:8]}", test_year + 6, seed=20110901, scale=scale)
    s = Suite(services, db, stack, clients, w)
    billing, credit, gateway = (clients["billing-events"], clients["credit-control"],
                                clients["gateway-adapter"])
    w.import_master_data(services, tmp_path_factory.mktemp("chaos"))
    started = time.monotonic()
    s.events_before = await s.balance_events()

    # 1. billing-events SIGKILLed while charges pour in (the HTTP clients retry).
    charges = w.charges()
    kill: dict[str, float] = {}

    async def kill_billing(total: int) -> None:
        kill["at"] = await s.kill_when("billing-events", lambda: _reached(
            s, "SELECT count(*) FROM billing.outbox WHERE key LIKE :p", total // 3))
    await send_all(billing, charges, scale.concurrency, kill_billing)
    await s.settle("SIGKILL billing-events mid-batch (charges)", kill["at"], 1)

    # 2. credit-control SIGKILLed while it applies the bill run's events.
    accounts = len(w.accounts)
    applied_sql = ("SELECT count(*) FROM credit.inbox i JOIN billing.outbox o USING (event_id) "
                   "WHERE i.consumer = 'credit-control' AND o.key LIKE :p")
    before = await s.count(applied_sql)
    await post_retrying(billing, *w.bill_run())
    at = await s.kill_when("credit-control", lambda: _reached(
        s, applied_sql, before + accounts // 3))
    await s.settle("SIGKILL credit-control mid-batch (bill run)", at, 1)

    # 3. notifier SIGKILLed while it sends the bill notices of the early payers' round.
    early = w.early_payers()
    sms_sql = "SELECT count(*) FROM notifier.messages WHERE account_id LIKE :p"
    sms_before = await s.count(sms_sql)
    payments = asyncio.create_task(send_all(billing, w.instalments(early, "early", 11, 3),
                                            scale.concurrency))
    at = await s.kill_when("notifier", lambda: _reached(s, applied_sql, before + accounts + 5))
    await payments
    await s.settle("SIGKILL notifier mid-batch (payments)", at, 1)
    assert await s.count(sms_sql) >= sms_before

    # 4. Kafka broker restarted, then the 10th's sweep (warnings).
    at = time.monotonic()
    await asyncio.to_thread(stack_verb, "kafka-restart")
    await sweep_after_quiet(s, credit, 10)
    await s.settle("Kafka broker restart (+ sweep of the 10th)", at, 1)

    # 5. PostgreSQL restarted, then the 25th's sweep (suspension warnings).
    at = time.monotonic()
    await asyncio.to_thread(stack_verb, "pg-restart")
    await services_ready(services)
    await sweep_after_quiet(s, credit, 25)
    await s.settle("PostgreSQL restart (+ sweep of the 25th)", at, 1)

    # 6. EMOS fails 30 % while the last day's suspensions go down the chain; gateway-adapter
    #    SIGKILLed mid-chain; then the faults clear and the loop retries what failed.
    at = time.monotonic()
    await put_faults(gateway, {"seed": 7, "emos": {"failure_rate": 0.3}})
    await sweep_after_quiet(s, credit, 30)
    await s.kill_when("gateway-adapter", lambda: _reached(
        s, "SELECT count(*) FROM gateway.attempts WHERE product_id LIKE :p", 3))
    await asyncio.sleep(2)
    await gateway.delete("/v1/faults")
    await s.settle("EMOS 30 % failures + SIGKILL gateway-adapter (suspensions)", at, 2)

    # 7. The gateway stage is down while restores (late payments) go down the chain.
    late = w.late_payers()
    at = time.monotonic()
    down = datetime.now(UTC) + timedelta(seconds=8)
    await put_faults(gateway, {"gateway": {"down_until": down.isoformat()}})
    await send_all(billing, w.instalments(late, "late", 12, 3), scale.concurrency)
    await asyncio.sleep(max(0.0, (down - datetime.now(UTC)).total_seconds()))
    await gateway.delete("/v1/faults")
    await s.settle("gateway stage outage (restores)", at, 1)

    # 8. billing-events SIGKILLed while it collects December 15th's deductions (划扣) from
    #    the deposits of the accounts still owing: each collected once, never more than the
    #    deposit held nor what was owed, each notice quoting what was collected.
    holders = w.deposit_holders()
    await send_all(billing, w.deposits(holders), scale.concurrency)
    await quiescent(db, stack.kafka_bootstrap, credit, s.scope)
    deducted_sql = "SELECT count(*) FROM billing.deductions WHERE account_id LIKE :p"
    before = await s.count(deducted_sql)
    await sweep(credit, f"{w.prefix}-12-15", w.day(12, 15, 9))
    at = await s.kill_when("billing-events", lambda: _reached(
        s, deducted_sql, before + max(1, len(holders) // 3)))
    await s.settle("SIGKILL billing-events mid-batch (deductions of the 15th)", at, 1)
    await _deductions_exact(s, holders, w.owed())

    # 9. Poison on every consumed topic: bad JSON, unknown type, schema 99, oversized, the
    #    valid-shaped values the domain or the database cannot hold, and a message at the
    #    broker's size limit (tests/reliability/bounded_poison.py).
    marker = f"poison-{w.prefix}"
    at = time.monotonic()
    sent = await feed_poison(stack.kafka_bootstrap, marker)
    await s.settle("poison messages on every consumed topic", at, sent, extra_in=sent)
    dead = await dead_lettered(stack.kafka_bootstrap, marker)
    for topic, reasons in dead.items():
        # Each consumer of the topic dead-letters each poison once (per source offset).
        expected = poison_messages(topic, marker)
        assert len(reasons) == len(expected), (topic, reasons)
        assert any("not an envelope" in r for r in reasons), reasons
        assert any("schema_version 99" in r for r in reasons), reasons
        for word, _ in bounded_poison(topic, marker, "x"):
            assert any(word in r for r in reasons), (topic, word, reasons)

    # 10. A slice of every consumed topic delivered again (same bytes, same event ids).
    at = time.monotonic()
    replayed = await replay_slice(stack.kafka_bootstrap, s.scope, 50 if scale.groups < 1000
                                  else 500)
    await s.settle("replayed slice of every consumed topic", at, replayed, extra_in=replayed)

    total_s = time.monotonic() - started
    _write_figures(s, scale, total_s)
    assert sum(r["events_in"] for r in s.rows) >= (10_000 if scale.groups >= 3000 else 2_000)


async def _deductions_exact(s: Suite, holders: list[str], owed: dict[str, int]) -> None:
    """Per holder: one deduction per decision, what it collected moved out of the deposit
    and in as a payment (source deposit) once, never more than the deposit or the debt."""
    async with s.db.connect() as conn:
        rows = (await conn.execute(text("""
            SELECT a, coalesce((SELECT sum(collected_fen) FROM billing.deductions d
                                 WHERE d.account_id = a), 0),
                   coalesce((SELECT sum(amount_fen) FROM billing.payments p
                              WHERE p.account_id = a AND p.source = 'deposit'), 0),
                   coalesce((SELECT sum(-amount_fen) FROM billing.deposit_movements m
                              WHERE m.account_id = a AND m.kind = 'deduction'), 0),
                   coalesce((SELECT sum(amount_fen) FROM billing.deposit_movements m
                              WHERE m.account_id = a AND m.kind = 'deposit'), 0)
              FROM unnest(CAST(:ids AS text[])) AS a"""), {"ids": holders})).all()
    wrong = [tuple(r) for r in rows
             if not (r[1] == r[2] == r[3] and 0 <= r[1] <= min(r[4], owed[r[0]]))]
    assert not wrong, ("deductions not exact (account, collected, paid, moved, deposit)",
                       wrong[:5])
    assert sum(r[1] for r in rows) > 0, "no deduction collected anything"


async def _reached(s: Suite, sql: str, n: int) -> bool:
    return await s.count(sql) >= n


async def sweep_after_quiet(s: Suite, credit: httpx.AsyncClient, day: int) -> None:
    await quiescent(s.db, s.stack.kafka_bootstrap, credit, s.scope)
    await sweep(credit, f"{s.w.prefix}-11-{day}", s.w.day(11, day, 20))


async def put_faults(gateway: httpx.AsyncClient, body: dict[str, Any]) -> None:
    r = await gateway.put("/v1/faults", json=body)
    assert r.status_code == 200, r.text


async def services_ready(services: ServiceProcesses) -> None:
    for name in services.specs:
        await asyncio.to_thread(services.wait_ready, name, 120)


def _write_figures(s: Suite, scale: Scale, total_s: float) -> None:
    out = ROOT / "test-artifacts" / "reliability.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"scale": "full" if scale.groups >= 3000 else "short",
                               "groups": scale.groups, "seed": s.w.seed,
                               "total_s": round(total_s, 1), "scenarios": s.rows},
                              indent=2, ensure_ascii=False))
