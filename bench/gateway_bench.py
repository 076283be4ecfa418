"""Gateway-adapter bench: provisioning commands per second through the whole simulated chain
(accepted by the consumer with inbox → BOSS → EMOS order → industry gateway → results
published from the outbox), chain delays at 0, no faults, in one process.

Usage: python bench/gateway_bench.py [--commands N] [--workers W]
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them).
Commands go to a topic of their own, so a running gateway-adapter does not see them.
"""

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from common.app import plumbing
from common.clock import SystemClock
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import ProductFamily
from common.envelope import to_bytes, wrap
from common.kafka import Publisher, ensure_topics
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


async def produce(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    publisher = Publisher(bootstrap, "bench-producer")
    await publisher.start()
    try:
        for i in range(0, len(messages), 5000):
            await publisher.send_many(messages[i:i + 5000])
    finally:
        await publisher.stop()


async def through_the_chain(settings: Settings, run: str, topic: str, n: int,
                            workers: int) -> tuple[float, float]:
    """Commands/s from start, and from the first applied command on (steady state)."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    await p.publisher.start()
    ctx = GatewayContext(p.engine, p.outbox, SystemClock(), worker_batch=settings.worker_batch)
    runner = p.consumer(f"bench-gw-{run}", [topic], consumer.CONTRACTS, consumer.dispatcher(ctx),
                        batch_handler=consumer.batch_dispatcher(ctx))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop)), asyncio.create_task(p.relay.run(stop)),
             *(asyncio.create_task(worker.run(ctx, stop, 0.02)) for _ in range(workers))]
    start, first = time.perf_counter(), None
    try:
        while True:
            done = await applied(p.engine, run)
            if done >= n:
                done = await applied_and_published(p.engine, run)
            if done and first is None:
                first = (time.perf_counter(), done)
            if done >= n:
                break
            for task in tasks:
                if task.done():
                    task.result()
            await asyncio.sleep(0.05)
        end = time.perf_counter()
        assert first is not None
        steady = (n - first[1]) / (end - first[0]) if end > first[0] else float("nan")
        return n / (end - start), steady
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await p.publisher.stop()
        await p.engine.dispose()


# A range on the product id (indexed), not LIKE: polling must not load the database it measures.
THIS_RUN = "product_id >= :lo AND product_id < :hi"


def _run_range(run: str) -> dict[str, str]:
    return {"lo": f"bench-{run}-", "hi": f"bench-{run}."}  # '.' follows '-'


async def applied(engine: object, run: str) -> int:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(await conn.scalar(text(
            f"SELECT count(*) FROM gateway.attempts WHERE {THIS_RUN} AND outcome = 'applied'"),
            _run_range(run)) or 0)


async def applied_and_published(engine: object, run: str) -> int:
    """Attempts applied at the gateway whose final result has left the outbox."""
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(await conn.scalar(text(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM gateway.outbox WHERE published_at IS NULL) "
            f"THEN 0 ELSE (SELECT count(*) FROM gateway.attempts WHERE {THIS_RUN} "
            "AND outcome = 'applied') END"), _run_range(run)) or 0)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000,
                        help="consumer batch (records per poll) and stage worker batch")
    args = parser.parse_args()
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"],
                        kafka_bootstrap=os.environ["CREDITCTL_KAFKA_BOOTSTRAP"],
                        consumer_batch_size=args.batch, worker_batch=args.batch)
    run = uuid.uuid4().hex[:8]
    topic = f"bench.provisioning.commands.{run}"
    await ensure_topics(settings.kafka_bootstrap, [topic, "provisioning.results.v1"], 6)
    await produce(settings.kafka_bootstrap, commands(run, topic, args.commands))
    total, steady = await through_the_chain(settings, run, topic, args.commands, args.workers)
    print(f"commands: {args.commands} suspensions, one product each, 4 vendors; chain delays 0; "
          f"stage workers: {args.workers}; batch {args.batch}")
    print(f"through the chain (accept → BOSS → EMOS → gateway → results published), "
          f"steady state: {steady:>8,.0f} commands/s")
    print(f"including the consumer group join:                                     "
          f"{total:>8,.0f} commands/s")


if __name__ == "__main__":
    asyncio.run(main())
