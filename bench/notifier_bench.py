"""Notifier benchmark: SMS/s from decision event (on Kafka) to the simulated SMSC's submit.

Produces N bill-notice decisions (one group contact each) onto a fresh topic, then runs the
notifier's real consumer (inbox, batch handler writing the messages) and its real sender
(batch claim → simulated SMSC submit → batch record) in this process until every message has
been accepted by the SMSC. Prints SMS/s including the consumer group join and steady state,
the notifier's own CPU per SMS (steadier than SMS/s on a shared machine) and the load average.

Usage: python bench/notifier_bench.py [--decisions N] [--accounts M] [--batch B]
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them).
"""

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import text

from common.app import plumbing
from common.clock import SystemClock
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    DecisionType,
    NoticeContext,
)
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import to_bytes, wrap
from common.kafka import ConsumerRunner, Publisher, ensure_topics
from notifier.adapters import tables as t
from notifier.adapters.providers import Submission, SubmitOutcome
from notifier.bootstrap import context
from notifier.config import Settings
from notifier.entrypoints import consumer
from notifier.service_layer.sending import run_sender


def decisions(topic: str, run: str, n: int, accounts: int) -> list[tuple[str, bytes, bytes]]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        account = f"bench-{run}-{i % accounts}"
        ctx = NoticeContext(
            customer=CustomerSnapshot(
                customer_id=f"bench-{run}", name="基准测试集团", tier=Tier.MID,
                account_manager=Person(name="经理", phone="13900000000"),
                contacts=(Person(name="联系人", phone=f"138{i % 100_000_000:08d}"),)),
            product=ProductSnapshot(product_id=f"bench-{run}-p{i}", cpno=f"CP{i}",
                                    name="集团V网", family=ProductFamily.ADC),
            amount_due_fen=12_345, as_of_date=date(2026, 11, 2), deadline=date(2026, 11, 25))
        event = CreditDecisionMade(
            decision_id=f"bench-{run}-d{i}", account_id=account, product_id=ctx.product.product_id,
            decision=DecisionType.BILL_NOTICE, rule_id="bench", reason="bench",
            state_before=CreditState.NORMAL, state_after=CreditState.WARNED, as_of=now,
            context=ctx)
        env = wrap(event, key=account, source="bench", occurred_at=now)
        out.append((topic, account.encode(), to_bytes(env)))
    return out


class Counting:
    """Wraps the simulated SMSC to note when submits were accepted."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.accepted = 0
        self.first: float | None = None
        self.done = asyncio.Event()
        self.target = 0

    async def submit_many(self, batch: Sequence[Submission]) -> list[SubmitOutcome]:
        outcomes: list[SubmitOutcome] = await self.inner.submit_many(batch)  # type: ignore[attr-defined]
        if self.first is None:
            self.first = time.perf_counter()
        self.accepted += sum(o.provider_message_id is not None for o in outcomes)
        if self.accepted >= self.target:
            self.done.set()
        return outcomes


async def main(n: int, accounts: int, batch: int) -> None:
    run = uuid.uuid4().hex[:8]
    topic = f"bench.notifier.{run}"
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"],
                        kafka_bootstrap=os.environ["CREDITCTL_KAFKA_BOOTSTRAP"],
                        customer_sending_hours="00:00-24:00", send_batch_size=batch,
                        consumer_batch_size=batch, smsc_receipt_delay_s=3600)
    await ensure_topics(settings.kafka_bootstrap, [topic], 6)
    publisher = Publisher(settings.kafka_bootstrap, "bench-producer")
    await publisher.start()
    messages = decisions(topic, run, n, accounts)
    for i in range(0, n, 5000):
        await publisher.send_many(messages[i:i + 5000])
    await publisher.stop()

    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = context(settings, p.engine, SystemClock())
    counting = Counting(ctx.provider)
    counting.target = n
    ctx.provider = counting
    runner = ConsumerRunner(
        name=f"bench-notifier-{run}", engine=p.engine, bootstrap=settings.kafka_bootstrap,
        group_id=f"bench-notifier-{run}", topics=[topic], decoder=consumer.CONTRACTS,
        handler=consumer.dispatcher(ctx), inbox=p.inbox, publisher=p.publisher,
        batch_size=batch, poll_ms=50, batch_handler=consumer.batch_dispatcher(ctx))
    stop = asyncio.Event()
    load_before = os.getloadavg()[0]
    cpu_start = time.process_time()
    start = time.perf_counter()
    tasks = [asyncio.create_task(runner.run(stop)),
             asyncio.create_task(run_sender(ctx, stop, 0.02))]
    try:
        await asyncio.wait_for(counting.done.wait(), timeout=110)
    finally:
        end = time.perf_counter()
        cpu = time.process_time() - cpu_start
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with p.engine.begin() as conn:
            # No receipts are owed for benchmark traffic: leave no backlog for the receipt loop.
            await conn.execute(text(
                "UPDATE notifier.smsc_received s SET receipt_sent_at = now(), "
                "receipt_status = 'delivered' FROM notifier.messages m "
                "WHERE m.message_id = s.client_ref AND m.product_id LIKE :p "
                "AND s.receipt_sent_at IS NULL"), {"p": f"bench-{run}-%"})
        await p.engine.dispose()
    total = n / (end - start)
    steady = n / (end - (counting.first or start))
    print(f"notifier: {n} decisions → {counting.accepted} SMS at the simulated SMSC in "
          f"{end - start:.1f}s: {total:,.0f} SMS/s incl. group join, {steady:,.0f} SMS/s "
          f"from the first submit (batch {batch}); notifier CPU {cpu / n * 1e6:.0f} µs/SMS; "
          f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.decisions, args.accounts, args.batch))
