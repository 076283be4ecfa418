"""Gateway-adapter bench: provisioning commands per second through the whole simulated chain
(accepted by the consumer with inbox → BOSS → EMOS order → industry gateway → results
published from the outbox), chain delays at 0, no faults, in one process.

Usage: python bench/gateway_bench.py [--commands N] [--workers W] [--batch B] [--rate R]
(--rate: commands sent at R/s, the latency from send to the final result read back instead).
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them).
Commands and results go to topics of their own, so a running gateway-adapter or credit-control
does not see them.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.app import plumbing
from common.clock import SystemClock
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import ProductFamily
from common.envelope import to_bytes, wrap
from common.kafka import Publisher, dead_letter_topic, ensure_topics
from gateway_adapter.adapters import tables as t
from gateway_adapter.config import Settings
from gateway_adapter.entrypoints import consumer
from gateway_adapter.service_layer import worker
from gateway_adapter.service_layer.context import GatewayContext

VENDORS = [("huawei", ProductFamily.MAS), ("jiaxun", ProductFamily.MAS),
           ("ruoya", ProductFamily.MAS), (None, ProductFamily.SMS_DIRECT)]


def commands(run: str, topic: str, n: int) -> list[tuple[str, bytes, bytes]]:
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


def results_topic(run: str) -> str:
    """Not provisioning.results.v1: a credit-control on the same stack would consume every
    bench result later (hundreds of thousands of them after a few runs)."""
    return f"bench.provisioning.results.{run}"


async def produce(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    publisher = Publisher(bootstrap, "bench-producer")
    await publisher.start()
    try:
        for i in range(0, len(messages), 5000):
            await publisher.send_many(messages[i:i + 5000])
    finally:
        await publisher.stop()


@dataclass
class Chain:
    engine: AsyncEngine
    tasks: list[asyncio.Task[None]]

    def check(self) -> None:
        for task in self.tasks:
            if task.done():
                task.result()  # a task that died says why


@contextlib.asynccontextmanager
async def running_chain(settings: Settings, run: str, topic: str,
                        workers: int) -> AsyncIterator[Chain]:
    """The gateway's consumer (inbox, set-wise accept, steps due at once), stage worker(s) and
    outbox relay in this process, on the run's own topics."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    await p.publisher.start()
    ctx = GatewayContext(p.engine, p.outbox, SystemClock(), worker_batch=settings.worker_batch,
                         results_topic=results_topic(run))
    runner = p.consumer(f"bench-gw-{run}", [topic], consumer.CONTRACTS, consumer.dispatcher(ctx),
                        batch_handler=consumer.batch_dispatcher(ctx))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop)), asyncio.create_task(p.relay.run(stop)),
             *(asyncio.create_task(worker.run(ctx, stop, settings.worker_idle_poll_s))
               for _ in range(workers))]
    try:
        yield Chain(p.engine, tasks)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await p.publisher.stop()
        await p.engine.dispose()


async def through_the_chain(settings: Settings, run: str, topic: str, n: int,
                            workers: int) -> tuple[float, float]:
    """Commands/s from start, and from the first command applied at the gateway on (steady
    state), until the last final result was read back from the results topic."""
    reader = FinalResults(settings.kafka_bootstrap, results_topic(run))
    await reader.start()
    try:
        async with running_chain(settings, run, topic, workers) as chain:
            started = datetime.now(UTC)
            await reader.wait_for(n, chain)
            first = await first_applied(chain.engine, run)
    finally:
        await reader.stop()
    return (n / (reader.last_at - started).total_seconds(),
            (n - 1) / (reader.last_at - first).total_seconds())


async def paced(settings: Settings, run: str, topic: str, n: int, rate: float,
                workers: int) -> list[float]:
    """Commands sent at `rate` per second once the chain is warm; per command, the seconds
    from its send to its final result read back from the results topic."""
    messages = commands(run, topic, n + 1)
    reader = FinalResults(settings.kafka_bootstrap, results_topic(run))
    publisher = Publisher(settings.kafka_bootstrap, "bench-producer")
    await publisher.start()
    await reader.start()
    try:
        async with running_chain(settings, run, topic, workers) as chain:
            await publisher.send_many(messages[-1:])  # warm-up: the group joins first
            await reader.wait_for(1, chain)
            sent = await send_paced(publisher, messages[:-1], rate)
            await reader.wait_for(n + 1, chain)
    finally:
        await reader.stop()
        await publisher.stop()
    return sorted(reader.seen[m[1].decode()] - sent[m[1].decode()] for m in messages[:-1])


async def send_paced(publisher: Publisher, messages: list[tuple[str, bytes, bytes]],
                     rate: float) -> dict[str, float]:
    """Every 5 ms, what is due by then; returns each product's send instant."""
    sent: dict[str, float] = {}
    start, i = time.perf_counter(), 0
    while i < len(messages):
        due = min(len(messages), int((time.perf_counter() - start) * rate) + 1)
        now = time.perf_counter()
        sent.update((m[1].decode(), now) for m in messages[i:due])
        await publisher.send_many(messages[i:due])
        i = due
        await asyncio.sleep(0.005)
    return sent


class FinalResults:
    """Reads the run's results topic: when each product's final result arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                          auto_offset_reset="earliest", enable_auto_commit=False)
        self.seen: dict[str, float] = {}
        self.last_at = datetime.now(UTC)  # when the newest final result arrived
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=50)).values():
                now, self.last_at = time.perf_counter(), datetime.now(UTC)
                for r in records:
                    # Cheap on purpose (the key is the product): this process is measured.
                    if r.key is not None and b'"final":true' in (r.value or b""):
                        self.seen.setdefault(r.key.decode(), now)

    async def wait_for(self, n: int, chain: Chain) -> None:
        while len(self.seen) < n:
            chain.check()
            if self._task is not None and self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


async def first_applied(engine: AsyncEngine, run: str) -> datetime:
    """When the run's first command was applied at the gateway (the database's clock)."""
    async with engine.connect() as conn:
        first: datetime = await conn.scalar(text(
            "SELECT min(finished_at) FROM gateway.attempts WHERE product_id >= :lo "
            "AND product_id < :hi AND outcome = 'applied'"),
            {"lo": f"bench-{run}-", "hi": f"bench-{run}."})  # '.' follows '-'
    return first


async def drop_topics(bootstrap: str, topics: list[str]) -> None:
    """The run's own topics (and their dead-letter topics) go when it is done."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([n for t in topics for n in (t, dead_letter_topic(t))])
    finally:
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000,
                        help="consumer batch (records per poll) and stage worker batch")
    parser.add_argument("--rate", type=float, default=0,
                        help="send commands at this rate and report latencies (0: a backlog, "
                             "throughput)")
    args = parser.parse_args()
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"],
                        kafka_bootstrap=os.environ["CREDITCTL_KAFKA_BOOTSTRAP"],
                        consumer_batch_size=args.batch, worker_batch=args.batch)
    run = uuid.uuid4().hex[:8]
    topic = f"bench.provisioning.commands.{run}"
    await ensure_topics(settings.kafka_bootstrap, [topic, results_topic(run)], 6)
    print(f"commands: {args.commands} suspensions, one product each, 4 vendors; chain delays 0; "
          f"stage workers: {args.workers}; batch {args.batch}")
    try:
        if args.rate > 0:
            await report_latency(settings, run, topic, args)
        else:
            await report_throughput(settings, run, topic, args)
    finally:
        await drop_topics(settings.kafka_bootstrap, [topic, results_topic(run)])


async def report_throughput(settings: Settings, run: str, topic: str,
                            args: argparse.Namespace) -> None:
    await produce(settings.kafka_bootstrap, commands(run, topic, args.commands))
    total, steady = await through_the_chain(settings, run, topic, args.commands, args.workers)
    print(f"through the chain (accept → BOSS → EMOS → gateway → results published), "
          f"steady state: {steady:>8,.0f} commands/s")
    print(f"including the consumer group join:                                     "
          f"{total:>8,.0f} commands/s")


async def report_latency(settings: Settings, run: str, topic: str,
                         args: argparse.Namespace) -> None:
    latencies = await paced(settings, run, topic, args.commands, args.rate, args.workers)
    ms = [1000 * x for x in latencies]
    q = statistics.quantiles(ms, n=100)
    print(f"command sent → final gateway result read back, at {args.rate:,.0f} commands/s: "
          f"p50 {q[49]:.0f} ms · p95 {q[94]:.0f} ms · p99 {q[98]:.0f} ms · max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
