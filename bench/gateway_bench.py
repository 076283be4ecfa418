"""Gateway-adapter bench: provisioning commands through the whole simulated chain (accepted by
the consumer with inbox → BOSS → EMOS order → industry gateway → results published from the
outbox), 4 vendors, no faults, in one process, each figure next to ceilings measured in the
same run on the same messages.

Usage: python bench/gateway_bench.py [--commands N] [--rate R] [--paced-commands M]
       [--warmup-s S] [--runs K] [--batch B] [--workers W] [--delay-ms D] [--cmpp-submits S]
       [--cmpp-connections C] [--cmpp-window W] [--only throughput|latency|cpu|cmpp]

- throughput: N commands waiting on their topic, then the chain drains them; steady state =
  from the first command blocked at the gateway to the last final result read back.
  Ceilings: a plain consumer reading the same messages (raw Kafka), and the gateway's own
  consumer plumbing (inbox, one transaction per partition batch, offsets) with no chain.
- latency: M commands sent at R/s (after a warm-up command, so the group has joined, and
  `--warmup-s` seconds of commands at the same rate, not measured); per
  command, send → gateway block (the transaction that blocked it committed) and send →
  final result read back from the results topic. Ceilings at the same rate: send → read by
  a plain consumer, send → committed by the plumbing with no chain.
- cpu: the accept path alone (no Kafka) on batches of 30 and of B commands: process CPU per
  command and statements per batch (BEGIN and COMMIT not counted).
- cmpp: S CMPP_SUBMITs through the CMPP 2.0 server (TCP on localhost, C connections for each
  of two enterprises, W unacknowledged each), half for an enterprise in service (Result 0),
  half for one blocked at the gateway (Result 9), each judged and recorded by the block check.
  Ceiling: the same judgement (`handlers.judge_submit`, one statement) called directly at the
  same concurrency, no CMPP and no TCP.
Every figure is the median of K runs. `--delay-ms D` gives every stage a fixed latency of D ms,
so every step is the stage worker's (W workers) instead of the consumer's.
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them).
Commands and results go to topics of the run's own (deleted at the end), so a running
gateway-adapter or credit-control does not see them.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _pg_waits
import _scratch
from _callgrind import Meter
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import gateway_adapter
from common.app import plumbing
from common.clock import SystemClock
from common.cmpp.client import CmppClient
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import ProductFamily
from common.envelope import parse, to_bytes, wrap
from common.kafka import Publisher, dead_letter_topic, ensure_topics
from common.runtime import tune_gc
from gateway_adapter.adapters import tables as t
from gateway_adapter.config import Settings
from gateway_adapter.domain.cmpp import CmppAccount
from gateway_adapter.domain.faults import Faults
from gateway_adapter.entrypoints import consumer
from gateway_adapter.entrypoints.cmpp_server import CmppConfig, CmppGateway
from gateway_adapter.service_layer import accept, handlers, results, worker
from gateway_adapter.service_layer.context import GatewayContext

MIGRATIONS = Path(gateway_adapter.__file__).parent / "adapters" / "migrations"

VENDORS = [("huawei", ProductFamily.MAS), ("jiaxun", ProductFamily.MAS),
           ("ruoya", ProductFamily.MAS), (None, ProductFamily.SMS_DIRECT)]
Message = tuple[str, bytes, bytes]


def commands(run: str, topic: str, n: int) -> list[Message]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        vendor, family = VENDORS[i % len(VENDORS)]
        product = f"bench-{run}-{i}"
        cmd = ProvisioningCommand(
            command_id=f"{product}-1", decision_id=f"{product}-d", product_id=product,
            account_id=f"A{product}", cpno=f"CP{i:08d}", family=family, vendor=vendor,
            action=ProvisioningAction.SUSPEND, sequence=1, requested_at=now,
            customer_id=f"G{run}")
        env = wrap(cmd, key=product, source="bench", occurred_at=now)
        out.append((topic, product.encode(), to_bytes(env)))
    return out


@dataclass
class Topics:
    """The run's own topics: never `provisioning.*`, so a credit-control on the same stack
    does not wade through hundreds of thousands of bench results later."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def commands(self) -> str:
        return f"bench.provisioning.commands.{self.run}"

    @property
    def results(self) -> str:
        return f"bench.provisioning.results.{self.run}"

    @property
    def raw(self) -> str:
        return f"bench.provisioning.raw.{self.run}"

    @property
    def plumbing(self) -> str:
        return f"bench.provisioning.plumbing.{self.run}"

    @property
    def all(self) -> list[str]:
        return [self.commands, self.results, self.raw, self.plumbing]


# ---- when a transaction committed: the moment the gateway blocked a product ---------------

_PENDING: ContextVar[list[str] | None] = ContextVar("bench_pending", default=None)


class Stamps:
    """When each product was first committed as done: the transaction that wrote its final
    result (the gateway's block) committed. Keys are noted during the transaction and
    stamped only once it committed."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def engine(self, engine: AsyncEngine) -> Any:
        return _StampedEngine(engine, self)

    @staticmethod
    def note(keys: Iterator[str] | list[str]) -> None:
        pending = _PENDING.get()
        if pending is not None:
            pending.extend(keys)


class _StampedEngine:
    """The engine, with `begin()` stamping the keys noted in each committed transaction."""

    def __init__(self, engine: AsyncEngine, stamps: Stamps) -> None:
        self._engine, self._stamps = engine, stamps

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        pending: list[str] = []
        token = _PENDING.set(pending)
        try:
            async with self._engine.begin() as conn:
                yield conn
        finally:
            _PENDING.reset(token)
        now = time.perf_counter()  # committed
        for key in pending:
            self._stamps.at.setdefault(key, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _note_final_results() -> None:
    """Every final result the chain writes notes its product in the open transaction, read
    from the stage reports before they become outbox rows, and only in a stamped
    transaction. (Until the thirty-second session it parsed every outbox row back, packed
    rows message by message, in every transaction: ~38,000 instructions a command, ~10 % of
    what the chain's figures counted as the chain's own.)"""
    made = results.result_rows

    def noting(ctx: GatewayContext, reports: Any) -> Any:
        pending = _PENDING.get()
        if pending is not None:
            reports = list(reports)
            pending.extend([a.product_id for a, r, _ in reports if r.final])
        return made(ctx, reports)

    accept.result_rows = noting  # type: ignore[attr-defined]
    worker.result_rows = noting  # type: ignore[attr-defined]


_note_final_results()


# ---- the chain, and the ceilings, in this process ------------------------------------------

@dataclass
class Running:
    engine: AsyncEngine
    tasks: list[asyncio.Task[None]]
    stamps: Stamps

    def check(self) -> None:
        for task in self.tasks:
            if task.done():
                task.result()  # a task that died says why


@contextlib.asynccontextmanager
async def running_chain(settings: Settings, topics: Topics, workers: int,
                        faults: Faults) -> AsyncIterator[Running]:
    """The gateway's consumer (inbox, set-wise accept, steps due at once), stage worker(s) and
    outbox relay in this process, on the run's own topics."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    stamps = Stamps()
    await p.publisher.start()
    ctx = GatewayContext(stamps.engine(p.engine), p.outbox, SystemClock(),
                         default_faults=faults, worker_batch=settings.worker_batch,
                         results_topic=topics.results)
    runner = dataclasses.replace(p, engine=stamps.engine(p.engine)).consumer(
        f"bench-gw-{topics.run}", [topics.commands], consumer.CONTRACTS,
        consumer.dispatcher(ctx), batch_handler=consumer.batch_dispatcher(ctx))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop)), asyncio.create_task(p.relay.run(stop)),
             *(asyncio.create_task(worker.run(ctx, stop, settings.worker_idle_poll_s))
               for _ in range(workers))]
    try:
        yield Running(p.engine, tasks, stamps)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await p.publisher.stop()
        await p.engine.dispose()


@contextlib.asynccontextmanager
async def running_plumbing(settings: Settings, topic: str) -> AsyncIterator[Running]:
    """Ceiling: the same consumer plumbing (inbox, a transaction per partition batch, offsets
    after commit) on the same messages, with a handler that does nothing."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    stamps = Stamps()
    await p.publisher.start()

    async def one(conn: AsyncConnection, envelope: Any, payload: Any) -> None:
        Stamps.note([envelope.key])

    async def batch(conn: AsyncConnection, items: list[tuple[Any, Any]]) -> None:
        Stamps.note([e.key for e, _ in items])

    runner = dataclasses.replace(p, engine=stamps.engine(p.engine)).consumer(
        f"bench-gw-plumbing-{topic}", [topic], consumer.CONTRACTS, one,
        batch_handler=batch)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop))]
    try:
        yield Running(p.engine, tasks, stamps)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await p.publisher.stop()
        await p.engine.dispose()


class Reader:
    """Reads a topic from its end (or its start) without a group: when each key's first
    message (or first final result) arrived."""

    def __init__(self, bootstrap: str, topic: str, finals_only: bool) -> None:
        self._bootstrap, self._topic, self._finals = bootstrap, topic, finals_only
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap,
                                          enable_auto_commit=False, fetch_max_wait_ms=50)
        await self._consumer.start()
        parts = self._consumer.partitions_for_topic(self._topic)
        while not parts:
            await self._consumer._client.force_metadata_update()
            parts = (await self._consumer._client.fetch_all_metadata()).partitions_for_topic(
                self._topic)
        tps = [TopicPartition(self._topic, p) for p in parts]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=50)).values():
                now = time.perf_counter()
                for r in records:
                    # Cheap on purpose (the key is the product): this process is measured.
                    if r.key is not None and (not self._finals
                                              or b'"final":true' in (r.value or b"")):
                        self.seen.setdefault(r.key.decode(), now)

    async def wait_for(self, n: int, running: Running | None = None) -> None:
        while len(self.seen) < n:
            if running is not None:
                running.check()
            if self._task is not None and self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


async def produce(bootstrap: str, messages: list[Message]) -> None:
    publisher = Publisher(bootstrap, "bench-producer")
    await publisher.start()
    try:
        for i in range(0, len(messages), 5000):
            await publisher.send_many(messages[i:i + 5000])
    finally:
        await publisher.stop()


async def send_paced(publisher: Publisher, messages: list[Message],
                     rate: float) -> dict[str, float]:
    """Every 2 ms, what is due by then; returns each key's send instant."""
    sent: dict[str, float] = {}
    start, i = time.perf_counter(), 0
    while i < len(messages):
        due = min(len(messages), int((time.perf_counter() - start) * rate) + 1)
        now = time.perf_counter()
        sent.update((m[1].decode(), now) for m in messages[i:due])
        for topic, key, value in messages[i:due]:
            await publisher._producer.send(topic, value=value, key=key)  # no wait for acks
        i = due
        await asyncio.sleep(0.002)
    return sent


async def stamped(running: Running, n: int) -> None:
    """Until `n` keys were stamped."""
    while len(running.stamps.at) < n:
        running.check()
        await asyncio.sleep(0.02)


def steady(stamps: dict[str, float], last: float) -> float:
    """Per second, from the first stamp on to `last` (the first is the start line)."""
    first = min(stamps.values())
    return (len(stamps) - 1) / (last - first) if last > first else 0.0


# ---- one run of each kind --------------------------------------------------------------------

async def throughput(settings: Settings, n: int, workers: int, faults: Faults,
                     processes: int = 0) -> dict[str, float]:
    topics = Topics()
    await ensure_topics(settings.kafka_bootstrap, topics.all, 6)
    try:
        messages = commands(topics.run, topics.commands, n)
        await produce(settings.kafka_bootstrap, messages)
        raw = Reader(settings.kafka_bootstrap, topics.commands, finals_only=False)
        began = time.perf_counter()
        await raw.start()
        await raw.wait_for(n)
        await raw.stop()
        raw_rate = n / (max(raw.seen.values()) - began)

        async with running_plumbing(settings, topics.commands) as plumbed:
            await stamped(plumbed, n)
            plumbing_rate = steady(plumbed.stamps.at, max(plumbed.stamps.at.values()))

        results = Reader(settings.kafka_bootstrap, topics.results, finals_only=True)
        await results.start()
        try:
            if processes:
                chain_rate, cpu, waits = await _chain_in_processes(
                    settings, topics, workers, faults, processes, results, n)
                where = f"the chain's {processes} process(es)"
            else:
                chain_rate, cpu, waits = await _chain_here(settings, topics, workers, faults,
                                                           results, n)
                where = "the bench's process"
        finally:
            await results.stop()
        print(f"  (this run: {chain_rate:,.0f} commands/s steady through the chain; {where} "
              f"{cpu / n * 1e6:,.0f} µs of CPU a command; "
              f"PostgreSQL: {_pg_waits.busy_report(waits)})")
        return {"chain": chain_rate, "raw": raw_rate, "plumbing": plumbing_rate}
    finally:
        await drop_topics(settings.kafka_bootstrap, topics.all)


async def _chain_here(settings: Settings, topics: Topics, workers: int, faults: Faults,
                      results: Reader, n: int) -> tuple[float, float, Any]:
    """The chain in the bench's process: its rate from the first final result written (the
    transaction's commit) to the last read back; the process's CPU (consumer, stage worker,
    relay and the results' reader) and PostgreSQL's backends meanwhile."""
    cpu = time.process_time()
    async with _pg_waits.sampled(_scratch.asyncpg_dsn(settings.database_url),
                                 every_s=0.05) as waits, \
            running_chain(settings, topics, workers, faults) as chain:
        await results.wait_for(n, chain)
        rate = steady(chain.stamps.at, max(results.seen.values()))
    return rate, time.process_time() - cpu, waits


async def _chain_in_processes(settings: Settings, topics: Topics, workers: int,
                              faults: Faults, processes: int, results: Reader, n: int,
                              ) -> tuple[float, float, Any]:
    """The chain in `processes` processes of its own, one consumer group (as deployed: a
    gateway-adapter's process is its consumer, stage worker and relay, nothing else), the
    results read back here. Its rate from the first final result read back to the last;
    the chain processes' CPU. They start together once each has imported, and join the
    group together."""
    mp = multiprocessing.get_context("spawn")
    ready, go, stop, cpu = mp.Semaphore(0), mp.Event(), mp.Event(), mp.Queue()
    procs = [mp.Process(target=_chain_process,
                        args=(settings, topics, workers, faults, ready, go, stop, cpu))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            while not ready.acquire(block=False):
                _check_alive(procs)
                await asyncio.sleep(0.02)
        async with _pg_waits.sampled(_scratch.asyncpg_dsn(settings.database_url),
                                     every_s=0.05) as waits:
            go.set()
            while len(results.seen) < n:
                _check_alive(procs)
                await asyncio.sleep(0.02)
        seen = results.seen.values()
        rate = (n - 1) / (max(seen) - min(seen))
    finally:
        stop.set()
        for proc in procs:
            await asyncio.to_thread(proc.join, 60)
    return rate, sum(cpu.get(timeout=5) for _ in procs), waits


def _check_alive(procs: list[Any]) -> None:
    dead = [p.exitcode for p in procs if p.exitcode is not None]
    if dead:
        raise RuntimeError(f"a chain process exited ({dead})")


def _chain_process(settings: Settings, topics: Topics, workers: int, faults: Faults,
                   ready: Any, go: Any, stop: Any, cpu: Any) -> None:
    tune_gc()  # as the gateway-adapter process does at start (common.runtime)

    async def main() -> float:
        started = time.process_time()
        async with running_chain(settings, topics, workers, faults) as chain:
            while not stop.is_set():
                chain.check()
                await asyncio.sleep(0.02)
        return time.process_time() - started

    ready.release()  # imported: the processes start together
    go.wait()
    cpu.put(asyncio.run(main()))


async def latency(settings: Settings, n: int, rate: float, workers: int, faults: Faults,
                  warmup: int = 0) -> dict[str, float]:
    topics = Topics()
    await ensure_topics(settings.kafka_bootstrap, topics.all, 6)
    publisher = Publisher(settings.kafka_bootstrap, "bench-producer")
    await publisher.start()
    try:
        raw_msgs = commands(topics.run, topics.raw, n)
        raw = Reader(settings.kafka_bootstrap, topics.raw, finals_only=False)
        await raw.start()
        sent = await send_paced(publisher, raw_msgs, rate)
        await raw.wait_for(n)
        await raw.stop()
        out = quantiles("raw", raw.seen, sent)

        # Warm-up: one command (the group joins), then `warmup` commands at the rate, not
        # measured: a process's first second (first statements on each connection, first
        # renderings, the pool growing) is not the steady state the figure is about.
        first = commands(topics.run, topics.plumbing, n + 1 + warmup)
        async with running_plumbing(settings, topics.plumbing) as plumbed:
            await publisher.send_many(first[-1:])
            await stamped(plumbed, 1)
            await send_paced(publisher, first[n:n + warmup], rate)
            sent = await send_paced(publisher, first[:n], rate)
            await stamped(plumbed, n + 1 + warmup)
            out |= quantiles("plumbing", plumbed.stamps.at, sent)

        second = commands(topics.run + "c", topics.commands, n + 1 + warmup)
        results = Reader(settings.kafka_bootstrap, topics.results, finals_only=True)
        await results.start()
        try:
            async with running_chain(settings, topics, workers, faults) as chain:
                await publisher.send_many(second[-1:])
                await results.wait_for(1, chain)
                await send_paced(publisher, second[n:n + warmup], rate)
                sent = await send_paced(publisher, second[:n], rate)
                await results.wait_for(n + 1 + warmup, chain)
                await asyncio.sleep(0.1)
                out |= quantiles("block", chain.stamps.at, sent)
                out |= quantiles("final", results.seen, sent)
        finally:
            await results.stop()
        return out
    finally:
        await publisher.stop()
        await drop_topics(settings.kafka_bootstrap, topics.all)


def quantiles(name: str, seen: dict[str, float], sent: dict[str, float]) -> dict[str, float]:
    ms = sorted(1000 * (seen[k] - s) for k, s in sent.items())
    q = statistics.quantiles(ms, n=100)
    return {f"{name}_p50": q[49], f"{name}_p99": q[98]}


_TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK")  # counted apart: "(+ BEGIN, COMMIT)"


async def statements_of(engine: Any, work: Awaitable[None]) -> int:
    """The statements `work` sends, BEGIN and COMMIT not counted: SQLAlchemy's, and those
    sent to asyncpg itself (common.db.DriverStatement), which pass SQLAlchemy by."""
    seen = [0]

    def count(*_: Any) -> None:
        seen[0] += 1

    def through_driver(query: Any) -> None:
        if not query.query.startswith(_TRANSACTION):
            count()

    async with engine.connect() as conn:  # the pool's one connection, the batch's too
        raw = (await conn.get_raw_connection()).driver_connection
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    raw.add_query_logger(through_driver)
    try:
        await work
    finally:
        raw.remove_query_logger(through_driver)
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    return seen[0]


async def cpu(settings: Settings, batch: int, counted_to: str | None = None
              ) -> dict[str, float]:
    """The accept path alone: a transaction per batch with the inbox claim and the chain,
    as the consumer runs it, without Kafka. `counted_to` (under callgrind, its
    --callgrind-out-file): also the instructions per command of the same part."""
    topics = Topics()
    await ensure_topics(settings.kafka_bootstrap, [topics.results], 1)
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = GatewayContext(p.engine, p.outbox, SystemClock(), results_topic=topics.results)
    handle = consumer.batch_dispatcher(ctx)

    async def one_batch(chunk: list[Any]) -> None:
        async with p.engine.begin() as conn:
            await p.inbox.claim_many(conn, "bench-gw-cpu",
                                     [(e.event_id, topics.commands) for e, _ in chunk])
            await handle(conn, chunk)

    out: dict[str, float] = {}
    try:
        # The pool's connection made before, as a running service's is (its SCRAM login alone
        # is ~28 million instructions).
        async with p.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        for size in (30, batch):
            n = max(6 * size, 3000)
            items = [parse(m[2], consumer.CONTRACTS)
                     for m in commands(f"{topics.run}{size}", topics.commands, n + size)]
            spent = 0.0
            meter = Meter(counted_to) if counted_to else None
            with meter or contextlib.nullcontext():
                for i in range(0, n, size):
                    c0 = time.process_time()
                    await one_batch(items[i:i + size])
                    spent += time.process_time() - c0
            out[f"cpu_{size}"] = 1e6 * spent / n
            # One batch more, after the measure, its statements counted: asyncpg's query
            # logger costs ~17,000 instructions a command while attached.
            out[f"statements_{size}"] = await statements_of(p.engine, one_batch(items[n:]))
            if meter is not None:
                out[f"instructions_{size}"] = meter.counted / n
    finally:
        async with p.engine.begin() as conn:  # nobody is to publish these
            await conn.execute(text(
                "DELETE FROM gateway.outbox_pending WHERE id IN "
                "(SELECT id FROM gateway.outbox WHERE topic = :t)"), {"t": topics.results})
            await conn.execute(text("DELETE FROM gateway.outbox WHERE topic = :t"),
                               {"t": topics.results})
        await p.engine.dispose()
        await drop_topics(settings.kafka_bootstrap, [topics.results])
    return out


async def cmpp(settings: Settings, submits: int, connections: int, window: int
               ) -> dict[str, float]:
    """CMPP submits/s through the server with the block check, and its ceiling."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = GatewayContext(p.engine, p.outbox, SystemClock())
    run = uuid.uuid4().hex[:5]
    open_, blocked = CmppAccount(f"o{run}", "bench", f"benchcmpp-{run}-open", connections,
                                 1e6), \
        CmppAccount(f"b{run}", "bench", f"benchcmpp-{run}-blocked", connections, 1e6)
    now = datetime.now(UTC)
    async with p.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO gateway.chain_products (product_id, cpno, family, vendor, "
            "last_sequence, boss_status, boss_updated_at, gateway_blocked, gateway_updated_at) "
            "VALUES (:p, :p, 'MAS', 'huawei', 1, 'arrears_suspended', :now, true, :now)"),
            {"p": blocked.product_id, "now": now})
    for account in (open_, blocked):
        await handlers.save_cmpp_account(ctx, account)
    gateway = CmppGateway(ctx, CmppConfig(window=window))
    stop, ready = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(gateway.serve(stop, "127.0.0.1", 0, ready))
    await ready.wait()
    assert gateway.port is not None
    per = max(1, submits // (2 * connections))
    try:
        # The MAS clients in a process of their own, as real ones are: the server's process
        # then spends its CPU on the gateway's side only.
        logins = [(a.source_addr, 0 if a is open_ else 9) for a in (open_, blocked)
                  for _ in range(connections)]
        cpu0 = time.process_time()
        elapsed = await asyncio.get_running_loop().run_in_executor(
            None, _clients_in_a_process, gateway.port, logins, per, window)
        server_cpu = (time.process_time() - cpu0) / (2 * connections * per)
        through = 2 * connections * per / elapsed

        slots = asyncio.Semaphore(2 * connections * window)

        async def judge(account: CmppAccount) -> None:
            async with slots:
                await handlers.judge_submit(ctx, account.product_id, "bench", channel="cmpp",
                                            source_addr=account.source_addr)

        t0 = time.perf_counter()
        await asyncio.gather(*(judge(a) for a in (open_, blocked) for _ in range(
            connections * per)))
        direct = 2 * connections * per / (time.perf_counter() - t0)
    finally:
        stop.set()
        await serving
        async with p.engine.begin() as conn:
            for table, column in (("submits", "product_id"), ("cmpp_accounts", "product_id"),
                                  ("chain_products", "product_id")):
                await conn.execute(text(f"DELETE FROM gateway.{table} WHERE {column} "
                                        "LIKE :p"), {"p": f"benchcmpp-{run}-%"})
        await p.engine.dispose()
    return {"cmpp": through, "judge": direct, "server_cpu_us": 1e6 * server_cpu}


def _clients_in_a_process(port: int, logins: list[tuple[str, int]], per: int,
                          window: int) -> float:
    """Run the CMPP clients in a spawned process; the seconds from their first submit to
    the last response (after every login)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_clients_main, (port, logins, per, window))


def _clients_main(port: int, logins: list[tuple[str, int]], per: int, window: int) -> float:
    return asyncio.run(_clients(port, logins, per, window))


async def _clients(port: int, logins: list[tuple[str, int]], per: int, window: int) -> float:
    clients = [(await CmppClient.connect("127.0.0.1", port, source, "bench", window=window,
                                         timeout=60), want) for source, want in logins]

    async def send(client: CmppClient, want: int) -> None:
        results = await asyncio.gather(*(client.submit(["13800138000"], "会议通知")
                                         for _ in range(per)))
        wrong = [r[0].result for r in results if r[0].result != want]
        if wrong:
            raise RuntimeError(f"results {set(wrong)}, not {want}")

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(send(c, want) for c, want in clients))
        return time.perf_counter() - t0
    finally:
        for client, _ in clients:
            await client.terminate()


async def drop_topics(bootstrap: str, topics: list[str]) -> None:
    """The run's own topics (and their dead-letter topics) go when it is done."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([n for t in topics for n in (t, dead_letter_topic(t))])
    finally:
        await admin.close()


# ---- the report ------------------------------------------------------------------------------

async def medians(runs: int, one: Callable[[], Awaitable[dict[str, float]]]
                  ) -> dict[str, float]:
    found: list[dict[str, float]] = []
    for _ in range(runs):
        found.append(await one())
    return {k: statistics.median(r[k] for r in found) for k in found[0]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=20_000,
                        help="commands for the throughput run (a backlog)")
    parser.add_argument("--rate", type=float, default=1000, help="offered commands/s, latency")
    parser.add_argument("--paced-commands", type=int, default=10_000,
                        help="commands sent at --rate for the latency run")
    parser.add_argument("--warmup-s", type=float, default=1.0,
                        help="latency: seconds of commands at --rate before the measured ones "
                        "(0: only the one command that waits for the group to join)")
    parser.add_argument("--runs", type=int, default=3, help="runs; figures are their medians")
    parser.add_argument("--workers", type=int, default=1, help="stage workers")
    parser.add_argument("--processes", type=int, default=0,
                        help="throughput: the chain in P processes of its own (one consumer "
                        "group), the results read back by the bench's; 0: in the bench's")
    parser.add_argument("--batch", type=int, default=1000,
                        help="consumer batch (records per poll) and stage worker batch")
    parser.add_argument("--delay-ms", type=float, default=0,
                        help="every stage's fixed latency: > 0 makes every step the worker's")
    parser.add_argument("--cmpp-submits", type=int, default=20_000,
                        help="CMPP_SUBMITs for the cmpp run (half of them refused)")
    parser.add_argument("--cmpp-connections", type=int, default=2,
                        help="CMPP connections per enterprise (two enterprises)")
    parser.add_argument("--cmpp-window", type=int, default=16,
                        help="unacknowledged CMPP_SUBMITs per connection")
    parser.add_argument("--only", choices=["throughput", "latency", "cpu", "cmpp"],
                        default=None)
    parser.add_argument("--instructions", metavar="CALLGRIND_OUT",
                        help="with --only cpu, under valgrind's callgrind (started with "
                        "--instr-atstart=no --callgrind-out-file=CALLGRIND_OUT): also count "
                        "the instructions per command (docs/benchmarks.md)")
    args = parser.parse_args()
    if args.instructions and args.only != "cpu":
        parser.error("--instructions counts the accept path: give --only cpu")
    tune_gc()  # as the gateway-adapter process does at start (common.runtime)
    # A database of the bench's own (bench/_scratch.py): its hundreds of thousands of chain
    # products must not end up in the suite's reconciliations, nor the suite's in its figures.
    async with _scratch.scratch_database(os.environ["CREDITCTL_DATABASE_URL"], "gwbench",
                                         MIGRATIONS, "gateway") as url:
        await _run(args, Settings(database_url=url,
                                  kafka_bootstrap=os.environ["CREDITCTL_KAFKA_BOOTSTRAP"],
                                  consumer_batch_size=args.batch, worker_batch=args.batch))


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    faults = Faults.model_validate({s: {"latency": {"min_ms": args.delay_ms}}
                                    for s in ("boss", "emos", "gateway")})
    print(f"gateway chain: suspensions, one product each, 4 vendors, 6 partitions; chain "
          f"delays {args.delay_ms:g} ms; {args.workers} stage worker(s); batch {args.batch}; "
          f"median of {args.runs} run(s)")
    if args.only in (None, "throughput"):
        r = await medians(args.runs, lambda: throughput(settings, args.commands, args.workers,
                                                        faults, args.processes))
        print(f"throughput, {args.commands:,} commands waiting:\n"
              f"  through the chain (accept → BOSS → EMOS → gateway → result read back), "
              f"steady {r['chain']:>9,.0f} commands/s\n"
              f"  ceiling: the consumer plumbing alone (inbox, commit, offsets), steady  "
              f"{r['plumbing']:>9,.0f} commands/s  (chain = {r['chain'] / r['plumbing']:.2f} ×)\n"
              f"  ceiling: raw Kafka consume of the same messages                        "
              f"{r['raw']:>9,.0f} messages/s  (chain = {r['chain'] / r['raw']:.3f} ×)")
    if args.only in (None, "latency"):
        warmup = int(args.warmup_s * args.rate)
        r = await medians(args.runs, lambda: latency(settings, args.paced_commands, args.rate,
                                                     args.workers, faults, warmup))
        print(f"latency at {args.rate:,.0f} commands/s, {args.paced_commands:,} commands "
              f"after {warmup:,} at the same rate not measured (from the send):\n"
              f"  command → gateway block (its transaction committed)  "
              f"p50 {r['block_p50']:6.1f} ms · p99 {r['block_p99']:6.1f} ms\n"
              f"  command → final result read back from Kafka          "
              f"p50 {r['final_p50']:6.1f} ms · p99 {r['final_p99']:6.1f} ms\n"
              f"  ceiling: committed by the consumer plumbing alone    "
              f"p50 {r['plumbing_p50']:6.1f} ms · p99 {r['plumbing_p99']:6.1f} ms\n"
              f"  ceiling: raw Kafka, send → consumed                  "
              f"p50 {r['raw_p50']:6.1f} ms · p99 {r['raw_p99']:6.1f} ms")
    if args.only in (None, "cpu"):
        r = await medians(args.runs, lambda: cpu(settings, args.batch, args.instructions))
        print("accept path alone (inbox + chain, no Kafka), process CPU per command:\n"
              + "".join(f"  batch {size:>5}: {r[f'cpu_{size}']:6.0f} µs/command, "
                        f"{r[f'statements_{size}']:.0f} statements per batch "
                        "(+ BEGIN, COMMIT)"
                        + (f", {r[f'instructions_{size}']:,.0f} instructions/command "
                           "(callgrind)" if args.instructions else "")
                        + "\n" for size in (30, args.batch)), end="")
    if args.only in (None, "cmpp"):
        r = await medians(args.runs, lambda: cmpp(settings, args.cmpp_submits,
                                                  args.cmpp_connections, args.cmpp_window))
        print(f"CMPP 2.0, {args.cmpp_submits:,} submits, {args.cmpp_connections} connection(s) "
              f"per enterprise × 2, window {args.cmpp_window} (half refused: blocked):\n"
              f"  CMPP_SUBMIT → SUBMIT_RESP through the server, block check and record  "
              f"{r['cmpp']:>9,.0f} submits/s\n"
              f"  ceiling: the same judgement called directly (no CMPP, no TCP)         "
              f"{r['judge']:>9,.0f} submits/s  (CMPP = {r['cmpp'] / r['judge']:.2f} ×)\n"
              f"  the gateway process's CPU per submit (CMPP server and judgement)         "
              f"{r['server_cpu_us']:>9,.0f} µs")


if __name__ == "__main__":
    asyncio.run(main())
