"""First benchmark: raw aiokafka consume rate of balance events vs credit-control's
processing rate (inbox + position + product state + decisions + outbox, exactly once) over
the same topic, in the same run, on this machine.

Usage: python bench/consume_bench.py [--events N] [--accounts M]
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them).
"""

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from common.app import plumbing
from common.clock import SystemClock
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import CustomerSnapshot, Person, ProductFamily, ProductSnapshot
from common.envelope import to_bytes, wrap
from common.kafka import Publisher, ensure_topics
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.entrypoints import consumer
from credit_control.service_layer.handlers import CreditContext


def events(run: str, n: int, accounts: int, bill_runs: bool) -> list[tuple[str, bytes, bytes]]:
    customer = CustomerSnapshot(customer_id=f"bench-{run}", name="基准测试集团", tier="mid",
                                account_manager=Person(name="经理", phone="13900000000"),
                                contacts=(Person(name="联系人", phone="13800000000"),))
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        a = i % accounts
        seq = i // accounts + 1
        account = f"bench-{run}-{a}"
        due = 10_000 - (seq % 5) * 1_000
        event = BalanceChanged(
            account_id=account, sequence=seq,
            cause=BalanceCause.BILL_RUN if seq == 1 and bill_runs else BalanceCause.PAYMENT,
            as_of=now, balance_fen=-due, amount_due_fen=due,
            dues=(BillMonthDue(bill_month="2026-10", amount_due_fen=due),),
            closed_bill_month="2026-10" if seq == 1 and bill_runs else None, customer=customer,
            products=(ProductSnapshot(product_id=f"{account}-p", cpno=f"CP{account}",
                                      name="集团V网", family=ProductFamily.ADC),))
        env = wrap(event, key=account, source="bench", occurred_at=now)
        out.append((TOPIC_OF[run], account.encode(), to_bytes(env)))
    return out


TOPIC_OF: dict[str, str] = {}


async def produce(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    publisher = Publisher(bootstrap, "bench-producer")
    await publisher.start()
    try:
        for i in range(0, len(messages), 5000):
            await publisher.send_many(messages[i:i + 5000])
    finally:
        await publisher.stop()


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4()}",
                         auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    try:
        seen, start = 0, time.perf_counter()
        while seen < n:
            batch = await c.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(v) for v in batch.values())
        return n / (time.perf_counter() - start)
    finally:
        await c.stop()


async def credit_control_rate(settings: Settings, topic: str, n: int) -> tuple[float, float]:
    """Events/s from start (group join included) and in steady state (from the first
    committed batch on, which leaves out the consumer group's join)."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    await p.publisher.start()
    ctx = CreditContext(p.engine, p.outbox, p.keys, SystemClock())
    group = f"bench-cc-{uuid.uuid4()}"
    runner = p.consumer(group, [topic], consumer.CONTRACTS, consumer.dispatcher(ctx),
                        batch_handler=consumer.batch_dispatcher(ctx))
    stop = asyncio.Event()
    start = time.perf_counter()
    first: tuple[float, int] | None = None
    task = asyncio.create_task(runner.run(stop))
    try:
        while True:
            async with p.engine.connect() as conn:
                done = int(await conn.scalar(text(
                    "SELECT count(*) FROM credit.inbox WHERE consumer = :c"), {"c": group}) or 0)
            if done and first is None:
                first = (time.perf_counter(), done)
            if done >= n:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        end = time.perf_counter()
        assert first is not None
        steady = (n - first[1]) / (end - first[0]) if end > first[0] else float("nan")
        return n / (end - start), steady
    finally:
        stop.set()
        await task
        await p.publisher.stop()
        await p.engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--no-bill-runs", action="store_true",
                        help="payments only: no event leads to a decision")
    args = parser.parse_args()
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"],
                        kafka_bootstrap=os.environ["CREDITCTL_KAFKA_BOOTSTRAP"],
                        consumer_batch_size=5000)
    run = uuid.uuid4().hex[:8]
    topic = TOPIC_OF[run] = f"bench.balance.{run}"
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=6)
    messages = events(run, args.events, args.accounts, bill_runs=not args.no_bill_runs)
    await produce(settings.kafka_bootstrap, messages)
    raw = await raw_consume(settings.kafka_bootstrap, topic, args.events)
    total, steady = await credit_control_rate(settings, topic, args.events)
    share = "none" if args.no_bill_runs else f"{args.accounts / args.events:.0%}"
    print(f"events: {args.events} over {args.accounts} accounts (topic {topic}); "
          f"events leading to a decision: {share}")
    print(f"raw aiokafka consume:                       {raw:>10,.0f} events/s")
    print(f"credit-control, exactly once, steady state: {steady:>10,.0f} events/s")
    print(f"credit-control, incl. consumer group join:  {total:>10,.0f} events/s")
    print(f"ratio (steady / raw):                       {steady / raw:>10.3f}")


if __name__ == "__main__":
    asyncio.run(main())
