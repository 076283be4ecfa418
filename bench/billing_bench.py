"""Billing-events bench: bulk load, a bill run over ≥100,000 accounts, and the outbox relay.

Runs against the stack `scripts/bench.sh` exports (CREDITCTL_DATABASE_URL,
CREDITCTL_KAFKA_BOOTSTRAP). Loads a synthetic base (one bill month) through the CSV import,
closes the month with a bill run (set-based: a handful of statements, one outbox row per
account), then drains the outbox to Kafka with the service's relay and reports events/s.
"""

import argparse
import asyncio
import csv
import os
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_events.adapters import tables as t
from billing_events.domain.commands import RunBill
from billing_events.service_layer.bulk import HEADERS, import_file
from billing_events.service_layer.context import BillingContext
from billing_events.service_layer.handlers import run_bill
from billing_events.synthetic import generate
from common.clock import BUSINESS_TZ, FixedClock
from common.db import make_engine
from common.idempotency import IdempotencyKeys
from common.kafka import Publisher, ensure_topics
from common.outbox import Outbox, OutboxRelay


async def main(groups: int, seed: int) -> None:
    url = os.environ["CREDITCTL_DATABASE_URL"]
    bootstrap = os.environ["CREDITCTL_KAFKA_BOOTSTRAP"]
    engine = make_engine(url)
    async with engine.connect() as conn:
        newest = await conn.scalar(text(
            "SELECT max(extract(year FROM bill_month))::int FROM billing.bill_runs"))
    year = max(int(newest or 0) + 1, 3000)  # a year nobody billed: the month is ours
    month = date(year, 1, 1)
    clock = FixedClock(datetime(year, 2, 2, 9, tzinfo=BUSINESS_TZ))
    outbox = Outbox(t.outbox)
    ctx = BillingContext(engine, outbox, IdempotencyKeys(t.idempotency_keys), clock)
    prefix = f"b{year}"  # the bench's accounts, and so its outbox rows' keys
    base = generate(groups, seed, [month], prefix=prefix)
    with tempfile.TemporaryDirectory() as tmp:
        rows = 0
        started = time.perf_counter()
        for kind in ("customers", "accounts", "products", "charges"):
            path = Path(tmp) / f"{kind}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=HEADERS[kind])
                writer.writeheader()
                writer.writerows(getattr(base, kind))
            report = await import_file(ctx, path)
            assert not report.rejected, report.rejected[:5]
            rows += report.loaded
        load_s = time.perf_counter() - started
    print(f"import: {rows:,} rows (customers, accounts, products, charges with their balance "
          f"events) in {load_s:.1f} s = {rows / load_s:,.0f} rows/s")

    await _drain(engine, outbox, bootstrap, prefix)  # the charges' events, not timed
    started = time.perf_counter()
    answer = await run_bill(ctx, RunBill(bill_run_id=f"bench-{year}", bill_month=f"{year}-01",
                                         as_of=clock.now() + timedelta(0)))
    bill_s = time.perf_counter() - started
    billed = answer.body["accounts_billed"]
    print(f"RESULT bill run: {billed:,} accounts in {bill_s:.2f} s = "
          f"{billed / bill_s:,.0f} accounts/s (target: 100,000 in < 10 s)")
    sent, relay_s = await _drain(engine, outbox, bootstrap, prefix)
    print(f"RESULT outbox relay → Kafka: {sent:,} balance events in {relay_s:.2f} s = "
          f"{sent / relay_s:,.0f} events/s")
    await engine.dispose()


BENCH_TOPIC = "bench.billing.balance.v1"


async def _drain(
    engine: AsyncEngine, outbox: Outbox, bootstrap: str, prefix: str
) -> tuple[int, float]:
    """Publish the bench's rows to a topic of their own: the same bytes, but credit-control
    (group from earliest) must not find 200,000 bench events in its way at the next start."""
    async with engine.begin() as conn:
        await conn.execute(text(
            "UPDATE billing.outbox SET topic = :t "
            "WHERE id IN (SELECT id FROM billing.outbox_pending) "
            "AND key LIKE :p AND topic = 'billing.balance.v1'"),
            {"t": BENCH_TOPIC, "p": f"{prefix}-%"})
    await ensure_topics(bootstrap, [BENCH_TOPIC], 6)
    publisher = Publisher(bootstrap, "billing-bench")
    await publisher.start()
    relay = OutboxRelay(engine, outbox, publisher, batch_size=5_000)
    started = time.perf_counter()
    try:
        sent = await relay.drain()
    finally:
        await publisher.stop()
    return sent, time.perf_counter() - started


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2011)
    args, _ = parser.parse_known_args()  # bench.sh passes every script the same ARGS
    asyncio.run(main(args.groups, args.seed))
