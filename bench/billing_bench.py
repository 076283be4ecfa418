"""Billing-events bench: the bill run over N accounts on a fresh database and with three
earlier bases present, the outbox's size against its payloads, and the relay.

Runs against the stack `scripts/bench.sh` exports (CREDITCTL_DATABASE_URL,
CREDITCTL_KAFKA_BOOTSTRAP), in a database of its own that it creates, migrates and drops
(so "fresh" is fresh whatever the stack holds). For each of `--bases` synthetic bases (N
groups, one bill month, 1–3 products each, loaded through the CSV import): the bill run of
that month, then the relay drains the outbox to Kafka (a topic of its own,
`bench.billing.balance.v1`, so credit-control never meets the bench's events). The first
base is measured on the fresh database, the last one with the earlier bases present
(billed and relayed). A measured bill run is timed `--runs` times: the committed run first
(the outbox is measured after it and its relay, before any repeat), then repeats of the same
pass rolled back (VACUUM before each, so each starts from the same tables); the median is
reported, with this process's CPU time per account (Python's share of the run). Each figure
is printed next to the same run's ceiling: a binary COPY of the same rows into a table of
the outbox's shape, and nothing else.
"""

import argparse
import asyncio
import csv
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import billing_events.adapters as billing_adapters
from billing_events.adapters import tables as t
from billing_events.domain.commands import RunBill
from billing_events.service_layer.bulk import HEADERS, import_file
from billing_events.service_layer.context import BillingContext
from billing_events.service_layer.handlers import close_month, run_bill
from billing_events.synthetic import generate
from common.clock import BUSINESS_TZ, BusinessTimeBounds, FixedClock, configure_business_time
from common.db import make_engine
from common.idempotency import IdempotencyKeys
from common.kafka import Publisher, ensure_topics
from common.migrations import upgrade
from common.outbox import Outbox, OutboxRelay

BENCH_TOPIC = "bench.billing.balance.v1"
MIGRATIONS = Path(billing_adapters.__file__).parent / "migrations"
# The outbox: its rows (never rewritten) and the narrow queue of those not yet published,
# tables, indexes and TOAST.
OUTBOX_SIZE = ("SELECT pg_total_relation_size('billing.outbox')"
               " + pg_total_relation_size('billing.outbox_pending')")


@dataclass
class Measured:
    label: str
    accounts: int
    runs: list[float]  # wall seconds, the committed run first
    python_cpu_s: float  # this process's CPU in the committed run
    ceiling_s: float  # COPY of the same rows into a table of the outbox's shape
    relay_s: float
    growth_bytes: int  # the outbox's growth through the run and its relay
    payload_bytes: int  # the run's payloads
    outbox_bytes: int  # the whole outbox after the relay
    outbox_payload_bytes: int  # every payload in it

    def report(self) -> None:
        median = statistics.median(self.runs)
        runs = ", ".join(f"{r:.2f}" for r in self.runs)
        print(f"RESULT bill run, {self.label}: {self.accounts:,} accounts in {median:.2f} s "
              f"(median of {len(self.runs)}: {runs}) = {self.accounts / median:,.0f} accounts/s;"
              f" ceiling: COPY of the same rows {self.ceiling_s:.2f} s "
              f"(= {median / self.ceiling_s:.1f} x); Python CPU {self.python_cpu_s:.2f} s "
              f"= {self.python_cpu_s / self.accounts * 1e6:.1f} µs per account")
        print(f"RESULT outbox, {self.label}: grew {mb(self.growth_bytes)} through the run and "
              f"its relay for {mb(self.payload_bytes)} of payloads = "
              f"{self.growth_bytes / self.payload_bytes:.2f} x (target ≤ 2 x); whole outbox "
              f"{mb(self.outbox_bytes)} for {mb(self.outbox_payload_bytes)} of payloads = "
              f"{self.outbox_bytes / self.outbox_payload_bytes:.2f} x")
        print(f"RESULT outbox relay → Kafka, {self.label}: {self.accounts:,} events in "
              f"{self.relay_s:.2f} s = {self.accounts / self.relay_s:,.0f} events/s")


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


async def fresh_database(url: str) -> str:
    """A database of the bench's own in the stack's cluster, migrated to head."""
    name = f"bench_billing_{os.getpid()}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    own = url.rsplit("/", 1)[0] + f"/{name}"
    await asyncio.to_thread(upgrade, MIGRATIONS, own, t.SCHEMA)
    return own


async def drop_database(url: str, own: str) -> None:
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{own.rsplit("/", 1)[1]}"'))
    await admin.dispose()


async def load_base(ctx: BillingContext, groups: int, seed: int, month: date,
                    prefix: str) -> tuple[int, float]:
    base = generate(groups, seed, [month], prefix=prefix)
    rows, started = 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("customers", "accounts", "products", "charges"):
            path = Path(tmp) / f"{kind}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=HEADERS[kind])
                writer.writeheader()
                writer.writerows(getattr(base, kind))
            report = await import_file(ctx, path)
            assert not report.rejected, report.rejected[:5]
            rows += report.loaded
    return rows, time.perf_counter() - started


async def drain(engine: AsyncEngine, outbox: Outbox, bootstrap: str) -> tuple[int, float]:
    publisher = Publisher(bootstrap, "billing-bench")
    await publisher.start()
    relay = OutboxRelay(engine, outbox, publisher, batch_size=5_000)
    started = time.perf_counter()
    try:
        sent = await relay.drain()
    finally:
        await publisher.stop()
    return sent, time.perf_counter() - started


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def vacuum(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM billing.accounts, billing.outbox, billing.outbox_pending,"
                                " billing.bill_runs"))


async def copy_ceiling(engine: AsyncEngine, after_id: int) -> float:
    """Binary COPY of the run's rows (read beforehand) into a table of the outbox's shape."""
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        rows = await raw.fetch("SELECT event_id, topic, key, event_type, payload "
                               "FROM billing.outbox WHERE id > $1 ORDER BY id", after_id)
        await raw.execute("DROP TABLE IF EXISTS billing.bench_ceiling; CREATE TABLE "
                          "billing.bench_ceiling (LIKE billing.outbox INCLUDING ALL)")
        started = time.perf_counter()
        async with raw.transaction():
            await raw.copy_records_to_table(
                "bench_ceiling", schema_name="billing", records=[tuple(r) for r in rows],
                columns=["event_id", "topic", "key", "event_type", "payload"])
        elapsed = time.perf_counter() - started
        await raw.execute("DROP TABLE billing.bench_ceiling")
    return elapsed


async def measure(ctx: BillingContext, bootstrap: str, label: str, year: int,
                  runs: int) -> Measured:
    engine, outbox = ctx.engine, ctx.outbox
    size0 = int(await scalar(engine, OUTBOX_SIZE))
    last_id = int(await scalar(engine, "SELECT coalesce(max(id), 0) FROM billing.outbox"))
    cmd = RunBill(bill_run_id=f"bench-{year}", bill_month=f"{year}-01", as_of=ctx.clock.now())
    cpu, started = time.process_time(), time.perf_counter()
    billed = (await run_bill(ctx, cmd)).body["accounts_billed"]
    times = [time.perf_counter() - started]
    cpu = time.process_time() - cpu
    sent, relay_s = await drain(engine, outbox, bootstrap)
    assert sent == billed, (sent, billed)
    size1 = int(await scalar(engine, OUTBOX_SIZE))
    payloads = int(await scalar(
        engine, "SELECT sum(octet_length(payload)) FROM billing.outbox WHERE id > :i", i=last_id))
    everything = int(await scalar(engine, "SELECT sum(octet_length(payload)) FROM billing.outbox"))
    ceiling = await copy_ceiling(engine, last_id)
    for n in range(1, runs):  # the same pass again, rolled back
        await vacuum(engine)
        async with engine.connect() as conn:
            tx = await conn.begin()
            await conn.execute(text("DELETE FROM billing.bill_runs WHERE bill_month = :m"),
                               {"m": date(year, 1, 1)})
            started = time.perf_counter()
            again = await close_month(ctx, conn, RunBill(
                bill_run_id=f"bench-{year}-again{n}", bill_month=f"{year}-01",
                as_of=ctx.clock.now()))
            times.append(time.perf_counter() - started)
            await tx.rollback()
        assert again["accounts_billed"] == billed
    return Measured(label, billed, times, cpu, ceiling, relay_s, size1 - size0, payloads,
                    size1, everything)


async def main(groups: int, seed: int, bases: int, runs: int, keep: bool) -> None:
    configure_business_time(BusinessTimeBounds(simulation=True))  # bill months in year 3001+
    url, bootstrap = os.environ["CREDITCTL_DATABASE_URL"], os.environ["CREDITCTL_KAFKA_BOOTSTRAP"]
    own = await fresh_database(url)
    engine = make_engine(own)
    await ensure_topics(bootstrap, [BENCH_TOPIC], 6)
    results = []
    try:
        for b in range(1, bases + 1):
            year = 3000 + b
            clock = FixedClock(datetime(year, 2, 2, 9, tzinfo=BUSINESS_TZ))
            ctx = BillingContext(engine, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                                 clock, balance_topic=BENCH_TOPIC)
            rows, load_s = await load_base(ctx, groups, seed + b, date(year, 1, 1), f"b{b}")
            await drain(engine, ctx.outbox, bootstrap)  # the import's events, not timed
            print(f"base {b}: {rows:,} rows imported in {load_s:.1f} s = "
                  f"{rows / load_s:,.0f} rows/s")
            if b == 1 or b == bases:
                label = ("fresh database" if b == 1
                         else f"{b - 1} earlier bases present")
                results.append(await measure(ctx, bootstrap, label, year, runs))
                results[-1].report()
            else:
                await run_bill(ctx, RunBill(bill_run_id=f"bench-{year}",
                                            bill_month=f"{year}-01", as_of=clock.now()))
                await drain(engine, ctx.outbox, bootstrap)
    finally:
        await engine.dispose()
        if not keep:
            await drop_database(url, own)
    print("targets: 100,000 accounts < 5 s fresh, < 8 s with three earlier bases; "
          "outbox growth ≤ 2 x its payloads")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=100_000, help="accounts per base")
    parser.add_argument("--seed", type=int, default=2011)
    parser.add_argument("--bases", type=int, default=4,
                        help="bases loaded one after the other; the first and last are timed")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed passes per measured bill run (median reported)")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench's database")
    args, _ = parser.parse_known_args()  # bench.sh passes every script the same ARGS
    asyncio.run(main(args.groups, args.seed, args.bases, args.runs, args.keep_db))
