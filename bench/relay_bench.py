"""Outbox relay bench: N events already in an outbox → Kafka with the library's OutboxRelay,
next to the same run's ceiling: the raw idempotent producer (the service's `Publisher`, same
settings) sending the same messages, nothing read from or written to PostgreSQL.

Runs against the stack `scripts/bench.sh` exports (CREDITCTL_DATABASE_URL,
CREDITCTL_KAFKA_BOOTSTRAP), in a schema and on topics of its own (dropped/deleted at the end).
The outbox is filled once (COPY through `common.outbox.add_rows`; `--packed 16`: sixteen events
a row, their keys mixed, as the month-end sweep writes them); every round re-queues the
same rows (their ids back into `outbox_pending`) and times, interleaved, the ceiling then the
relay. Prints each round and the medians, the relay's process CPU per event, and the outbox's
size next to its payloads.
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import make_engine
from common.kafka import Publisher, ensure_topics
from common.outbox import Outbox, OutboxRelay, OutboxRow, add_rows, packed
from common.plumbing import outbox_table

SCHEMA = "relay_bench"


def envelope(i: int) -> bytes:
    """A balance event of the size the bill run writes (~1 KB: three product snapshots)."""
    account = f"ACC{i:09d}"
    return orjson.dumps({
        "event_id": str(uuid.uuid4()), "type": "billing.balance_changed",
        "source": "billing-events", "occurred_at": datetime.now(UTC).isoformat(),
        "correlation_id": None, "schema_version": 1, "key": account,
        "payload": {"account_id": account, "customer_id": f"C{i:09d}",
                    "balance_fen": -(i % 100_000), "credit_limit_fen": 5_000,
                    "deposit_fen": 0, "sequence": i, "cause": "bill_run",
                    "as_of": "2026-12-01T00:00:00+08:00",
                    "products": [{"product_id": f"P{i:09d}{j}", "cpno": f"1{i:010d}",
                                  "name": "畅享套餐 128元", "family": "mobile",
                                  "vendor": "HUAWEI", "channel": "direct"} for j in range(3)]},
    })


async def fill(engine: AsyncEngine, outbox: Outbox, topic: str, events: int,
               accounts: int, pack: int = 1) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        await conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
        await conn.run_sync(outbox.table.metadata.create_all)
    for start in range(0, events, 50_000):
        rows = [OutboxRow(uuid.uuid4(), topic, f"ACC{i % accounts:09d}", "billing.balance_changed",
                          envelope(i)) for i in range(start, min(start + 50_000, events))]
        if pack > 1:  # `pack` messages a row, whatever their keys (common.outbox.packed)
            rows = packed(rows, size=pack)
        async with engine.begin() as conn:
            await add_rows(conn, rows, schema=SCHEMA)
    async with engine.begin() as conn:
        await conn.execute(text(f'TRUNCATE "{SCHEMA}".outbox_pending'))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'VACUUM ANALYZE "{SCHEMA}".outbox'))


async def requeue(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'INSERT INTO "{SCHEMA}".outbox_pending (id) '
                                f'SELECT id FROM "{SCHEMA}".outbox'))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'VACUUM ANALYZE "{SCHEMA}".outbox_pending'))


async def ceiling(publisher: Publisher, engine: AsyncEngine, topic: str,
                  chunk: int) -> tuple[float, float]:
    """The same messages straight from memory through the same producer: (events/s, CPU µs)."""
    async with engine.connect() as conn:
        messages = [(topic, r.key.encode(), r.payload.encode()) for r in await conn.execute(
            text(f'SELECT key, payload FROM "{SCHEMA}".outbox_messages ORDER BY id, position'))]
    cpu, started = time.process_time(), time.perf_counter()
    acks = []
    for i in range(0, len(messages), chunk):
        acks += await publisher.enqueue_many(messages[i:i + chunk])
    await asyncio.gather(*acks)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(messages) / wall, cpu / len(messages) * 1e6


async def relay_round(relay: OutboxRelay, events: int) -> tuple[float, float]:
    cpu, started = time.process_time(), time.perf_counter()
    sent = await relay.drain()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert sent == events, f"relayed {sent} of {events}"
    assert await relay.backlog() == 0
    return sent / wall, cpu / sent * 1e6


async def sizes(engine: AsyncEngine) -> tuple[int, int, int]:
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            f"SELECT pg_total_relation_size('\"{SCHEMA}\".outbox'), "
            f"pg_total_relation_size('\"{SCHEMA}\".outbox_pending'), "
            f'sum(octet_length(payload)) FROM "{SCHEMA}".outbox'))).one()
    return int(row[0]), int(row[1]), int(row[2])


async def main(args: argparse.Namespace) -> None:
    url = os.environ["CREDITCTL_DATABASE_URL"]
    bootstrap = os.environ["CREDITCTL_KAFKA_BOOTSTRAP"]
    engine = make_engine(url)
    run = uuid.uuid4().hex[:8]
    relay_topic, raw_topic = f"bench.relay.{run}", f"bench.relay.raw.{run}"
    await ensure_topics(bootstrap, [relay_topic, raw_topic], args.partitions)
    outbox = Outbox(outbox_table(MetaData(schema=SCHEMA)))
    await fill(engine, outbox, relay_topic, args.events, args.accounts, args.packed)
    publisher = Publisher(bootstrap, "relay-bench")
    await publisher.start()
    relay = OutboxRelay(engine, outbox, publisher, batch_size=args.batch_size,
                        pipeline=args.pipeline)
    print(f"relay bench: {args.events:,} events (~{len(envelope(0)):,} bytes) over "
          f"{args.accounts:,} keys, {args.partitions} partitions; batch {args.batch_size:,}, "
          f"pipeline {args.pipeline}; producer idempotent, acks=all, linger_ms=2, "
          f"max_batch_size 256 KiB", flush=True)
    relayed, raw = [], []
    try:
        for n in range(1, args.rounds + 1):
            raw.append(await ceiling(publisher, engine, raw_topic, args.batch_size))
            await requeue(engine)
            relayed.append(await relay_round(relay, args.events))
            print(f"round {n}: relay {relayed[-1][0]:,.0f} events/s "
                  f"({relayed[-1][1]:.1f} µs CPU/event) | raw producer "
                  f"{raw[-1][0]:,.0f} events/s ({raw[-1][1]:.1f} µs CPU/event)", flush=True)
        rate = statistics.median(r for r, _ in relayed)
        top = statistics.median(r for r, _ in raw)
        table, pending, payloads = await sizes(engine)
        print(f"RESULT outbox relay → Kafka: {rate:,.0f} events/s, median of {args.rounds} "
              f"(same-run raw idempotent producer {top:,.0f} events/s, ratio {rate / top:.2f}; "
              f"target ≥ 50,000 events/s); relay CPU "
              f"{statistics.median(c for _, c in relayed):.1f} µs/event")
        print(f"RESULT outbox size after {args.rounds} relays: {table / 2**20:,.1f} MiB for "
              f"{payloads / 2**20:,.1f} MiB of payloads ({table / payloads:.2f} ×; "
              f"outbox_pending {pending / 2**20:,.1f} MiB)")
    finally:
        await publisher.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([relay_topic, raw_topic])
        finally:
            await admin.close()
        if not args.keep:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="rows in the outbox")
    parser.add_argument("--accounts", type=int, default=100_000, help="distinct keys")
    parser.add_argument("--packed", type=int, default=1,
                        help="events a row, as the month-end sweep and the gateway write them")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=5_000, help="rows per relay batch")
    parser.add_argument("--pipeline", type=int, default=4, help="relay batches in flight")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    args, _ = parser.parse_known_args()  # bench.sh passes every script the same ARGS
    asyncio.run(main(args))
