"""credit-control benchmark, two parts, each next to what it is compared with in the same run:

1. balance events: over one topic of balance events, in this order and once per --repeat:
   - the raw aiokafka consume rate (no processing);
   - the exactly-once CEILING: a minimal consumer of the same topic and events (one-pass
     msgspec decode, one inbox insert, one state upsert and one decision insert per event,
     one transaction per batch, offsets after the commit), asyncpg straight, no framework.
     No real credit-control can beat it on this machine: credit-control is reported as a
     ratio to it;
   - credit-control (the real ConsumerRunner and batch handler, one process: inbox claim,
     positions, product states, decisions, history and outbox rows, all exactly once,
     offsets after the commit); with --processes 2 also two processes in one group;
   - the consumer process's CPU per event, decode + handler, no Kafka (`time.process_time`
     around parsing and the batch handler, fed the same messages in partition-sized
     batches), for credit-control and for the ceiling.
   The lines starting with RESULT are issue 16's "Done when" figures (medians over
   --repeat runs), each next to its same-run ceiling. A rate is timed from the group's
   committed offsets (asked of the broker every 50 ms), and the inbox is counted once at the
   end to check every event was applied;
2. month-end sweep: N product instances (1,000,000 by default) seeded with COPY into a
   database of their own, then the month-end sweep through the real service-layer function
   (`sweeps.run_sweep`, guard included), then once more (a re-run decides nothing), next to
   the same run's ceilings: one set-based UPDATE flipping the same share of the table's
   rows, and the write floor (the sweep's own rows written again, nothing decided: what the
   sweep cannot beat without writing less); --floor-parts also writes each kind of row alone,
   and variants (the outbox without its queue, the decisions' context by reference).
   --runs N repeats it on fresh databases and reports medians. --explain instead prints the
   sweep's first chunk under EXPLAIN (ANALYZE, BUFFERS) (rolled back).

Usage: python bench/credit_bench.py [--events N] [--accounts M] [--no-bill-runs]
                                    [--processes P] [--repeat R] [--cpu-events N]
                                    [--products N] [--runs N] [--floor-parts]
                                    [--skip-consume] [--skip-sweep] [--explain]
The lead's quiet-machine run of issue 16's figures:
    BENCH=credit_bench bash scripts/bench.sh --skip-sweep --repeat 3 --processes 2 \
        --events 400000 --accounts 40000
Each part runs in a database of its own, created, migrated and dropped by the script.
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them).
"""

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import _pg_waits
import _scratch
import _sections
import asyncpg
import msgspec
from _callgrind import Meter
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy import text

import credit_control
from common.app import plumbing
from common.clock import BUSINESS_TZ, SystemClock
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import parse, to_bytes, wrap
from common.kafka import Publisher, ensure_topics
from common.pg_arrays import array_text
from common.plumbing import outbox_queue_ddl
from common.runtime import tune_gc
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.adapters import sweep_sql
from credit_control.credit.domain import rules
from credit_control.credit.domain.commands import RunSweep
from credit_control.credit.entrypoints import consumer
from credit_control.credit.service_layer import sweeps
from credit_control.service_layer.context import CreditContext

MIGRATIONS = Path(credit_control.__file__).parent / "adapters" / "migrations"

# --- 1. balance events ------------------------------------------------------------------------


def events(run: str, topic: str, n: int, accounts: int,
           bill_runs: bool) -> list[tuple[str, bytes, bytes]]:
    """n events over `accounts` accounts, one ADC product each; each account's first event is
    a bill run with a balance below 0 (a bill notice) unless `bill_runs` is off."""
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
        bill_run = seq == 1 and bill_runs
        event = BalanceChanged(
            account_id=account, sequence=seq,
            cause=BalanceCause.BILL_RUN if bill_run else BalanceCause.PAYMENT,
            as_of=now, balance_fen=-due, amount_due_fen=due,
            dues=(BillMonthDue(bill_month="2026-10", amount_due_fen=due),),
            closed_bill_month="2026-10" if bill_run else None, customer=customer,
            products=(ProductSnapshot(product_id=f"{account}-p", cpno=f"CP{account}",
                                      name="集团V网", family=ProductFamily.ADC),))
        env = wrap(event, key=account, source="bench", occurred_at=now)
        out.append((topic, account.encode(), to_bytes(env)))
    return out


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


async def consume_until_stopped(settings: Settings, topic: str, group: str,
                                stop: asyncio.Event) -> None:
    """One credit-control consumer process's work: the real runner and batch handler."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    await p.publisher.start()
    ctx = CreditContext(p.engine, p.outbox, p.keys, SystemClock())
    runner = p.consumer(group, [topic], consumer.CONTRACTS, consumer.dispatcher(ctx),
                        batch_handler=consumer.batch_dispatcher(ctx))
    try:
        await runner.run(stop)
    finally:
        await p.publisher.stop()
        await p.engine.dispose()


Run = Callable[[Settings, str, str, asyncio.Event], Awaitable[None]]


async def _worker(settings: Settings, topic: str, group: str, run: Run) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await run(settings, topic, group, stop)


# --- the exactly-once ceiling -----------------------------------------------------------------


class _Product(msgspec.Struct):
    product_id: str


class _Balance(msgspec.Struct):
    account_id: str
    sequence: int
    balance_fen: int
    amount_due_fen: int
    as_of: str
    products: list[_Product]


class _Envelope(msgspec.Struct):
    event_id: str
    type: str
    payload: _Balance


_DECODE = msgspec.json.Decoder(_Envelope).decode

CEILING_DDL = """
    DROP SCHEMA IF EXISTS ceiling CASCADE; CREATE SCHEMA ceiling;
    CREATE TABLE ceiling.inbox (consumer text NOT NULL, event_id uuid NOT NULL,
        topic text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id));
    CREATE TABLE ceiling.state (product_id text PRIMARY KEY, account_id text NOT NULL,
        state text NOT NULL, sequence bigint NOT NULL, balance_fen bigint NOT NULL,
        amount_due_fen bigint NOT NULL, as_of timestamptz NOT NULL);
    CREATE TABLE ceiling.decisions (decision_id uuid PRIMARY KEY, product_id text NOT NULL,
        account_id text NOT NULL, sequence bigint NOT NULL, decision text NOT NULL,
        as_of timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"""
_CEILING_INBOX = """
    INSERT INTO ceiling.inbox (consumer, event_id, topic)
    SELECT $1, e, $3 FROM unnest($2::text::uuid[]) AS e ON CONFLICT DO NOTHING RETURNING event_id"""
# The batch claimed as all new first, as credit-control's runner does (common.inbox.claim_new):
# a redelivery fails it, and the batch is made again with the claim above.
_CEILING_INBOX_NEW = """
    INSERT INTO ceiling.inbox (consumer, event_id, topic)
    SELECT $1, e, $3 FROM unnest($2::text::uuid[]) AS e"""
_CEILING_STATE = """
    INSERT INTO ceiling.state (product_id, account_id, state, sequence, balance_fen,
        amount_due_fen, as_of)
    SELECT u.p, u.a, CASE WHEN u.d > 0 THEN 'warned' ELSE 'normal' END, u.s, u.b, u.d,
           u.t::timestamptz
    FROM unnest($1::text::text[], $2::text::text[], $3::text::bigint[], $4::text::bigint[],
                $5::text::bigint[], $6::text::text[]) AS u(p, a, s, b, d, t)
    ON CONFLICT (product_id) DO UPDATE SET account_id = excluded.account_id,
        state = excluded.state, sequence = excluded.sequence,
        balance_fen = excluded.balance_fen, amount_due_fen = excluded.amount_due_fen,
        as_of = excluded.as_of"""
_CEILING_DECISIONS = """
    INSERT INTO ceiling.decisions (decision_id, product_id, account_id, sequence, decision,
        as_of)
    SELECT u.i, u.p, u.a, u.s, 'noted', u.t::timestamptz
    FROM unnest($1::text::uuid[], $2::text::text[], $3::text::text[], $4::text::bigint[],
                $5::text::text[]) AS u(i, p, a, s, t)
    ON CONFLICT DO NOTHING"""


async def ceiling_apply(conn: asyncpg.Connection, group: str, topic: str,
                        values: list[bytes]) -> None:
    """One batch, exactly once: decode, inbox, one state upsert and one decision per event
    (the state row written once per product and batch: a statement cannot update a row
    twice), in one transaction."""
    decoded = [_DECODE(v) for v in values]
    try:
        await _ceiling_batch(conn, group, topic, decoded, all_new=True)
    except asyncpg.UniqueViolationError:
        await _ceiling_batch(conn, group, topic, decoded, all_new=False)


async def _ceiling_batch(conn: asyncpg.Connection, group: str, topic: str,
                         decoded: list[_Envelope], *, all_new: bool) -> None:
    async with conn.transaction():
        ids = _t([e.event_id for e in decoded], "uuid")
        if all_new:
            await conn.execute(_CEILING_INBOX_NEW, group, ids, topic)
            todo = decoded
        else:
            fresh = {str(r[0]) for r in await conn.fetch(_CEILING_INBOX, group, ids, topic)}
            todo = [e for e in decoded if e.event_id in fresh]
        newest = {p.product_id: e.payload for e in todo for p in e.payload.products}
        await conn.execute(_CEILING_STATE, _t(list(newest)),
                           _t([b.account_id for b in newest.values()]),
                           _t([b.sequence for b in newest.values()], "bigint"),
                           _t([b.balance_fen for b in newest.values()], "bigint"),
                           _t([b.amount_due_fen for b in newest.values()], "bigint"),
                           _t([b.as_of for b in newest.values()]))
        await conn.execute(_CEILING_DECISIONS, _t([e.event_id for e in todo], "uuid"),
                           _t([e.payload.products[0].product_id for e in todo]),
                           _t([e.payload.account_id for e in todo]),
                           _t([e.payload.sequence for e in todo], "bigint"),
                           _t([e.payload.as_of for e in todo]))


def _t(values: list[Any], element: str = "text") -> str:
    """An array as its text form, as credit-control's statements send theirs (DriverStatement):
    the ceiling pays no more per element than credit-control does."""
    return array_text(values, element)


async def ceiling_until_stopped(settings: Settings, topic: str, group: str,
                                stop: asyncio.Event) -> None:
    """One ceiling consumer process: getmany → one transaction → commit → offsets."""
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(settings.database_url))
    # The fetch wait credit-control's consumers have (common.settings.consumer_fetch_wait_ms).
    c = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         fetch_max_wait_ms=50)
    await c.start()
    try:
        while not stop.is_set():
            batches = await c.getmany(timeout_ms=200, max_records=5000)
            if not batches:
                continue
            await ceiling_apply(conn, group, topic,
                                [r.value for rs in batches.values() for r in rs if r.value])
            try:
                await c.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
            except (CommitFailedError, IllegalStateError):
                # A rebalance took the partition (two processes joining): its new owner
                # re-reads from the last commit and the inbox skips what was applied.
                continue
    finally:
        await c.stop()
        await conn.close()


# --- rates and CPU ------------------------------------------------------------------------------


@dataclass
class Rate:
    total: float  # events/s from the start, group join included
    steady: float  # events/s from the first committed batch on
    join_share: float  # the share of the run before the first commit (the group's join)
    # This process's CPU per event over the run (the consumer runs in it), and what
    # PostgreSQL's backends did meanwhile (bench/_pg_waits.py).
    process_cpu_us: float = float("nan")
    database: str = ""


async def _count(conn: asyncpg.Connection, table: str, group: str) -> int:
    return int(await conn.fetchval(
        f"SELECT count(*) FROM {table} WHERE consumer = $1", group) or 0)


async def _committed(admin: AIOKafkaAdminClient, group: str) -> int:
    """How many of the run's events the group has applied: its committed offsets (the run's
    topic holds exactly its events, from offset 0), which a consumer commits only after its
    transaction. Asked of the broker, not of PostgreSQL: a count of the inbox every 50 ms
    took 15-25 ms of the server's CPU each (an index scan growing with the run), a quarter of
    the core the consumers under measure need."""
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(max(o.offset, 0) for o in offsets.values())


async def measure(settings: Settings, topic: str, n: int, processes: int,
                  ceiling: bool) -> Rate:
    """Run `processes` consumers (this one and workers: this script again) in one group until
    all n events are applied, counted in the inbox."""
    group = f"bench-{'eo' if ceiling else 'cc'}-{uuid.uuid4()}"
    table = "ceiling.inbox" if ceiling else "credit.inbox"
    stop = asyncio.Event()
    env = {**os.environ, "CREDITCTL_DATABASE_URL": settings.database_url}
    role = "--ceiling-worker" if ceiling else "--worker"
    workers = [await asyncio.create_subprocess_exec(
        sys.executable, __file__, role, topic, group, env=env) for _ in range(processes - 1)]
    run = ceiling_until_stopped if ceiling else consume_until_stopped
    dsn = _scratch.asyncpg_dsn(settings.database_url)
    start, cpu = time.perf_counter(), time.process_time()
    first: tuple[float, int] | None = None
    task = asyncio.create_task(run(settings, topic, group, stop))
    poll = await asyncpg.connect(dsn)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        async with _pg_waits.sampled(dsn, every_s=0.05) as waits:
            while (done := await _committed(admin, group)) < n:
                if done and first is None:
                    first = (time.perf_counter(), done)
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        end, cpu = time.perf_counter(), time.process_time() - cpu
        applied = await _count(poll, table, group)  # once, after the clock stopped
        if applied != n:
            raise RuntimeError(f"{applied} events in the inbox, {n} committed in Kafka")
        if first is None:
            first = (start, 0)
        steady = (n - first[1]) / (end - first[0]) if end > first[0] else float("nan")
        return Rate(n / (end - start), steady, (first[0] - start) / (end - start),
                    cpu / n * 1e6, _pg_waits.busy_report(waits))
    finally:
        await admin.close()
        await poll.close()
        stop.set()
        for w in workers:
            w.send_signal(signal.SIGTERM)
        await asyncio.gather(task, *(w.wait() for w in workers))


def _partition_batches(messages: list[tuple[str, bytes, bytes]],
                       per_batch: int) -> list[list[bytes]]:
    """The messages as a consumer gets them: 6 partitions by account, in order, batches of
    about 5,000 / 6 per partition (what getmany(max_records=5000) hands out)."""
    parts: dict[int, list[bytes]] = {}
    for _, key, value in messages:
        parts.setdefault(hash(key) % 6, []).append(value)
    return [values[i:i + per_batch] for values in parts.values()
            for i in range(0, len(values), per_batch)]


async def cc_cpu(settings: Settings, messages: list[tuple[str, bytes, bytes]],
                 meter: Meter | None = None) -> float:
    """credit-control's CPU µs per event, decode + inbox claim + batch handler, no Kafka;
    `meter` counts the instructions of the same part."""
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = CreditContext(p.engine, p.outbox, p.keys, SystemClock())
    handler = consumer.batch_dispatcher(ctx)
    cpu = 0.0
    batches = _partition_batches(messages, 833)
    try:
        # The pool's connection made before, as a running service's is (its SCRAM login alone
        # is ~28 million instructions); the ceiling below connects before its loop too.
        async with p.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        with meter or contextlib.nullcontext():
            for values in batches:
                started = time.process_time()
                parsed = [parse(v, consumer.CONTRACTS) for v in values]
                async with p.engine.begin() as conn:  # all new: the runner's claim_new
                    await p.inbox.claim_new(conn, "bench-cpu",
                                            [(e.event_id, "bench") for e, _ in parsed])
                    await handler(conn, parsed)
                cpu += time.process_time() - started
    finally:
        await p.engine.dispose()
    return cpu / len(messages) * 1e6


async def ceiling_cpu(settings: Settings, messages: list[tuple[str, bytes, bytes]],
                      meter: Meter | None = None) -> float:
    """The ceiling consumer's CPU µs per event, the same way."""
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(settings.database_url))
    cpu = 0.0
    batches = _partition_batches(messages, 833)
    try:
        with meter or contextlib.nullcontext():
            for values in batches:
                started = time.process_time()
                await ceiling_apply(conn, "bench-cpu", "bench", values)
                cpu += time.process_time() - started
    finally:
        await conn.close()
    return cpu / len(messages) * 1e6


async def _ceiling_schema(settings: Settings) -> None:
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(settings.database_url))
    try:
        await conn.execute(CEILING_DDL)
    finally:
        await conn.close()


@dataclass
class Round:
    raw: float
    ceiling: Rate
    cc: Rate
    cc2: Rate | None
    ceiling2: Rate | None
    cpu: float
    ceiling_cpu: float


async def one_round(args: argparse.Namespace, settings: Settings, topic: str,
                    messages: list[tuple[str, bytes, bytes]],
                    cpu_messages: list[tuple[str, bytes, bytes]]) -> Round:
    """One of each, back to back: raw, ceiling, credit-control (each in a fresh database)."""
    n = args.events
    raw = await raw_consume(settings.kafka_bootstrap, topic, n)
    async with scratch_database(settings, migrate=False) as scratch:
        await _ceiling_schema(scratch)
        ceiling = await measure(scratch, topic, n, 1, ceiling=True)
        ceiling2 = None
        if args.processes > 1:
            await _ceiling_schema(scratch)  # afresh: the same decisions again would conflict
            ceiling2 = await measure(scratch, topic, n, args.processes, ceiling=True)
    async with scratch_database(settings) as scratch:
        cc = await measure(scratch, topic, n, 1, ceiling=False)
    cc2 = None
    if args.processes > 1:
        async with scratch_database(settings) as scratch:
            cc2 = await measure(scratch, topic, n, args.processes, ceiling=False)
    async with scratch_database(settings) as scratch:
        cpu = await cc_cpu(scratch, cpu_messages)
        await _ceiling_schema(scratch)
        eo_cpu = await ceiling_cpu(scratch, cpu_messages)
    return Round(raw, ceiling, cc, cc2, ceiling2, cpu, eo_cpu)


async def cpu_part(args: argparse.Namespace, settings: Settings) -> None:
    """The CPU per event alone, each run in a fresh database, credit-control then ceiling;
    with `--instructions` (under callgrind) also the instructions per event of each."""
    cc, eo, cc_ir, eo_ir = [], [], [], []
    for _ in range(args.repeat):
        # Counted: the same events and batches every time (the run's name picks the batches).
        run = "counted" if args.instructions else uuid.uuid4().hex[:8]
        messages = events(run, "bench", args.cpu_events, max(1, args.cpu_events // 10),
                          bill_runs=not args.no_bill_runs)
        cc_meter = Meter(args.instructions) if args.instructions else None
        eo_meter = Meter(args.instructions) if args.instructions else None
        async with scratch_database(settings) as scratch:
            with _sections.sections() if args.sections else contextlib.nullcontext() as parts:
                cc.append(await cc_cpu(scratch, messages, cc_meter))
            if parts is not None:
                print(f"  credit-control's CPU per event by part (run {len(cc)}: {cc[-1]:.1f} "
                      "µs):", *_sections.report(parts, len(messages), cc[-1]), sep="\n")
            await _ceiling_schema(scratch)
            eo.append(await ceiling_cpu(scratch, messages, eo_meter))
        if cc_meter and eo_meter:
            cc_ir.append(cc_meter.counted / len(messages))
            eo_ir.append(eo_meter.counted / len(messages))
    if args.instructions:
        print(f"RESULT consumer instructions per event, decode + handler, no Kafka: "
              f"{_median(cc_ir):,.0f} (runs {', '.join(f'{c:,.0f}' for c in cc_ir)}; "
              f"ceiling consumer {_median(eo_ir):,.0f}; counted by callgrind, whose CPU "
              "times below are ~40x slower than native)")
    print(f"RESULT consumer CPU per event, decode + handler, no Kafka: {_median(cc):.1f} µs "
          f"(runs {', '.join(f'{c:.1f}' for c in cc)}; ceiling consumer {_median(eo):.1f} µs; "
          f"target <= 25 µs)")


def _median(values: list[float]) -> float:
    return statistics.median(values)


async def balance_part(args: argparse.Namespace, settings: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    topic = f"bench.balance.{run}"
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=6)
    messages = events(run, topic, args.events, args.accounts, bill_runs=not args.no_bill_runs)
    await produce(settings.kafka_bootstrap, messages)
    cpu_run = uuid.uuid4().hex[:8]
    cpu_messages = events(cpu_run, topic, args.cpu_events, max(1, args.cpu_events // 10),
                          bill_runs=not args.no_bill_runs)
    share = "none" if args.no_bill_runs else f"{args.accounts / args.events:.0%}"
    print(f"balance events: {args.events} over {args.accounts} accounts (topic {topic}); "
          f"events leading to a decision: {share}; runs: {args.repeat}")
    rounds = []
    for i in range(args.repeat):
        r = await one_round(args, settings, topic, messages, cpu_messages)
        rounds.append(r)
        print(f"  run {i + 1}: raw {r.raw:,.0f}/s · ceiling {r.ceiling.steady:,.0f}/s steady "
              f"({r.ceiling.total:,.0f} incl. join) · credit-control {r.cc.steady:,.0f}/s "
              f"steady ({r.cc.total:,.0f} incl. join) = {r.cc.steady / r.ceiling.steady:.3f} "
              f"× ceiling · CPU/event {r.cpu:.1f} µs (ceiling {r.ceiling_cpu:.1f} µs)"
              + (f" · 2 processes: credit-control {r.cc2.steady:,.0f}/s steady "
                 f"({r.cc2.total:,.0f} incl. join, join {r.cc2.join_share:.0%} of the run), "
                 f"ceiling {r.ceiling2.steady:,.0f}/s"
                 if r.cc2 is not None and r.ceiling2 is not None else ""))
        for name, rate in (("ceiling", r.ceiling), ("credit-control", r.cc)):
            print(f"    {name}: this process {rate.process_cpu_us:.1f} µs of CPU an event "
                  f"(Kafka included); PostgreSQL: {rate.database}")
    _report_balance(args, rounds)


def _report_balance(args: argparse.Namespace, rounds: list[Round]) -> None:
    m = _median
    raw = m([r.raw for r in rounds])
    ceiling = m([r.ceiling.steady for r in rounds])
    cc = m([r.cc.steady for r in rounds])
    cc_total = m([r.cc.total for r in rounds])
    ratio = m([r.cc.steady / r.ceiling.steady for r in rounds])
    cpu, eo_cpu = m([r.cpu for r in rounds]), m([r.ceiling_cpu for r in rounds])
    of = f"median of {len(rounds)}"
    met = "met" if ratio >= 0.7 and cc >= 25_000 else "NOT met"
    print(f"RESULT credit-control balance events, 1 process: {cc:,.0f}/s steady "
          f"({cc_total:,.0f}/s incl. group join) = {ratio:.2f} × the same-run exactly-once "
          f"ceiling of {ceiling:,.0f}/s (raw consume {raw:,.0f}/s; {of}; target >= 0.7 × and "
          f">= 25,000/s: {met})")
    print(f"RESULT consumer CPU per event, decode + handler, no Kafka: {cpu:.1f} µs "
          f"(ceiling consumer {eo_cpu:.1f} µs; {of}; target <= 25 µs: "
          f"{'met' if cpu <= 25 else 'NOT met'})")
    if args.processes > 1:
        cc2 = m([r.cc2.steady for r in rounds if r.cc2])
        cc2_total = m([r.cc2.total for r in rounds if r.cc2])
        join = m([r.cc2.join_share for r in rounds if r.cc2])
        eo2 = m([r.ceiling2.steady for r in rounds if r.ceiling2])
        scale = m([r.cc2.total / r.cc.steady for r in rounds if r.cc2])
        ok = "met" if scale >= 1.6 and join < 0.1 else "NOT met"
        print(f"RESULT credit-control balance events, {args.processes} processes: "
              f"{cc2_total:,.0f}/s incl. group join ({cc2:,.0f}/s steady; the join is "
              f"{join:.0%} of the run) = {scale:.2f} × one process (ceiling with "
              f"{args.processes} processes {eo2:,.0f}/s; {of}; target >= 1.6 × with the join "
              f"< 10 %: {ok})")


# --- 2. month-end sweep -----------------------------------------------------------------------

FAMILIES = [("ADC", None), ("ADC", None), ("MAS", "huawei"), ("MAS", "jiaxun"),
            ("SMS_DIRECT", None), ("WORK_ORDER", None)]
TIERS = ["low", "mid", "mid", "high"]
# Oldest bill month still owing, by share: most products owe nothing; the rest owe since
# October (arrears month 1 on 30 November), September, August or July.
OLDEST = [None] * 9 + [date(2026, 10, 1)] * 6 + [date(2026, 9, 1)] * 3 + [date(2026, 8, 1)] + [
    date(2026, 7, 1)]
PRODUCTS_PER_ACCOUNT = 4
SWEEP_AS_OF = datetime(2026, 11, 30, 20, 0, tzinfo=BUSINESS_TZ)  # the month's last day
NOTICE_ON = date(2026, 11, 25)  # the seeded suspension warnings' day


@contextlib.asynccontextmanager
async def scratch_database(settings: Settings, migrate: bool = True) -> AsyncIterator[Settings]:
    """A migrated database of the bench's own, dropped afterwards (bench/_scratch.py): the
    bench's products must not end up in the tests' sweeps (nor the tests' in the bench's)."""
    async with _scratch.scratch_database(settings.database_url, "ccbench",
                                         MIGRATIONS if migrate else None,
                                         settings.db_schema) as url:
        yield settings.model_copy(update={"database_url": url})




def _account_rows(accounts: int) -> list[tuple[Any, ...]]:
    as_of = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    rows = []
    for a in range(accounts):
        oldest = OLDEST[a % len(OLDEST)]
        due = 0 if oldest is None else 5_000 + a % 997 * 10
        dues = "[]" if oldest is None else (
            f'[{{"bill_month": "{oldest:%Y-%m}", "amount_due_fen": {due}}}]')
        tier = TIERS[a % len(TIERS)]
        # As the balance path stores it: the snapshot's text as msgspec writes it (json).
        customer = msgspec.json.encode(CustomerSnapshot(
            customer_id=f"C{a // 3}", name=f"集团{a // 3}", tier=Tier(tier), star_level=a % 6,
            account_manager=Person(name="经理", phone="13900000000"),
            contacts=(Person(name="联系人", phone=f"138{a:08d}"),))).decode()
        rows.append((f"A{a:07d}", 1, -due, due, dues, customer, "bill_run", as_of))
    return rows


def _product_rows(accounts: int, products: int) -> list[tuple[Any, ...]]:
    changed = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    rows = []
    for i in range(products):
        a = i % accounts
        oldest = OLDEST[a % len(OLDEST)]
        due = 0 if oldest is None else 5_000 + a % 997 * 10
        family, vendor = FAMILIES[i % len(FAMILIES)]
        warned = oldest is not None and i % 2 == 0
        # Every other warned product already had its suspension warning on the 25th, naming
        # the month's last day (the notice before suspension): those the month-end sweep may
        # suspend; the rest get a late suspension warning instead (docs/rules.md).
        noticed = warned and i % 4 == 0
        product_id = f"P{i:08d}"
        product = msgspec.json.encode(ProductSnapshot(
            product_id=product_id, cpno=f"CP{i:08d}", name=f"产品{i}",
            family=ProductFamily(family), vendor=vendor or None)).decode()
        state = "suspension_warned" if noticed else "warned" if warned else "normal"
        rows.append((product_id, f"A{a:07d}", family, product, state, changed, f"C{a // 3}",
                     TIERS[a % len(TIERS)], a % 6, -due, due, oldest, 1 if warned else 0,
                     due, oldest, NOTICE_ON if noticed else None,
                     SWEEP_AS_OF.date() if noticed else None))
    return rows


async def seed(url: str, products: int) -> float:
    """COPY the accounts' positions and the products; returns the seconds it took."""
    accounts = max(1, products // PRODUCTS_PER_ACCOUNT)
    start = time.perf_counter()
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(url))
    try:
        await conn.copy_records_to_table(
            "account_positions", schema_name="credit", records=_account_rows(accounts),
            columns=["account_id", "sequence", "balance_fen", "amount_due_fen", "dues",
                     "customer", "cause", "as_of"])
        await conn.copy_records_to_table(
            "product_credit", schema_name="credit", records=_product_rows(accounts, products),
            columns=["product_id", "account_id", "family", "product", "state",
                     "state_changed_at", "customer_id", "tier", "star_level", "balance_fen",
                     "amount_due_fen", "oldest_due_month", "warning_level",
                     "product_amount_due_fen", "ladder_month", "suspension_warned_on",
                     "suspension_deadline"])
        # The suspension warnings reached their contacts on the day they were decided
        # (docs/rules.md: no suspension without a delivered warning).
        await conn.execute(
            "UPDATE credit.product_credit SET suspension_warning_id = 'bench-' || product_id, "
            "notice_status = 'delivered', notice_sent_at = suspension_warned_on::timestamptz, "
            "notice_delivered_at = suspension_warned_on::timestamptz, "
            "notice_days = GREATEST(1, suspension_deadline - suspension_warned_on) "
            "WHERE suspension_warned_on IS NOT NULL")
        # The mass-suspension guard still counts; this run is allowed to suspend its share.
        await conn.execute(
            "INSERT INTO credit.guard_settings (id, max_share, min_active, enabled, "
            "updated_by, updated_at) VALUES (1, 1.0, 0, true, 'bench', now())")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - start


async def _counts(ctx: CreditContext) -> dict[str, int]:
    await asyncio.sleep(1.5)  # the statistics of the sweep's last transactions flush
    async with ctx.engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT (SELECT count(*) FROM credit.decisions) AS decisions, "
            "(SELECT count(*) FROM credit.outbox) AS outbox, "
            "(SELECT count(*) FROM credit.outbox_messages) AS outbox_messages, "
            "(SELECT count(*) FROM credit.state_history) AS history, "
            "(SELECT count(*) FROM credit.work_orders) AS work_orders, "
            "(SELECT n_tup_upd FROM pg_stat_user_tables WHERE schemaname = 'credit' "
            " AND relname = 'product_credit') AS updates, "
            "(SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = 'credit' "
            " AND relname = 'product_credit') AS hot_updates"))).one()
    return dict(row._mapping)


async def _ceiling(url: str, share: float) -> float:
    """The same run's ceiling: ONE set-based UPDATE over the same table flipping the same share
    of its rows as the sweep changed (rolled back, so it leaves nothing behind)."""
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(url))
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL work_mem = '{sweep_sql.WORK_MEM}'")
            start = time.perf_counter()
            await conn.execute(
                "UPDATE credit.product_credit SET state = CASE state WHEN 'normal' THEN 'warned'"
                " ELSE 'normal' END, state_changed_at = now() "
                "WHERE abs(hashtext(product_id)) % 100000 < $1", round(share * 100_000))
            seconds = time.perf_counter() - start
            raise _Rollback
    except _Rollback:
        return seconds
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


# --- the write floor: the sweep's own rows written again, nothing computed ----------------
# After a sweep, its rows are staged (decisions, state history, work orders, outbox rows with
# the product each is about, the new columns of the products whose state changed), then
# written again into empty tables of the same shape (`LIKE … INCLUDING ALL`: the same keys
# and indexes, the outbox's pending-queue trigger) and onto the same product rows, by the
# sweep's lanes, one transaction per 50,000 products of the id range, one statement each:
# what writing those rows costs on this machine with nothing to decide and no text to build.
# The sweep cannot be faster than this without writing less.

_FLOOR_PRODUCT_COLUMNS = (
    "state", "state_changed_at", "warning_level", "ladder_month", "suspension_warned_on",
    "suspension_deadline", "suspension_warning_id", "notice_status", "notice_sent_at",
    "notice_delivered_at", "notice_reason", "notice_permanent", "notice_days",
    "notice_failures", "command_seq", "pending_command_id", "pending_decision_id",
    "command_action", "command_at", "command_attempt", "command_sent_at", "retry_at",
    "pending_work_order_id")

_FLOOR_STAGE = f"""
DROP SCHEMA IF EXISTS floor_stage CASCADE; CREATE SCHEMA floor_stage;
CREATE UNLOGGED TABLE floor_stage.decisions AS SELECT * FROM credit.decisions;
CREATE UNLOGGED TABLE floor_stage.history AS SELECT * FROM credit.state_history;
CREATE UNLOGGED TABLE floor_stage.work_orders AS SELECT * FROM credit.work_orders;
CREATE UNLOGGED TABLE floor_stage.outbox AS
  -- a group's rows (sweep_sql.OUTBOX_GROUP messages) by their first message's product
  SELECT o.*, COALESCE(o.payload::json -> 'payload' ->> 'product_id',
                       o.payload::json -> 0 -> 'payload' ->> 'product_id') AS product_id
  FROM credit.outbox o;
CREATE UNLOGGED TABLE floor_stage.decisions_ref AS SELECT * FROM credit.decisions;
UPDATE floor_stage.decisions_ref SET context = to_json(decision_id);
CREATE UNLOGGED TABLE floor_stage.products AS
  SELECT product_id, {', '.join(_FLOOR_PRODUCT_COLUMNS)} FROM credit.product_credit
  WHERE product_id IN (SELECT product_id FROM credit.state_history);
CREATE INDEX ON floor_stage.decisions (product_id);
CREATE INDEX ON floor_stage.decisions_ref (product_id);
CREATE INDEX ON floor_stage.history (product_id);
CREATE INDEX ON floor_stage.work_orders (product_id);
CREATE INDEX ON floor_stage.outbox (product_id, id);
CREATE INDEX ON floor_stage.products (product_id);
ANALYZE floor_stage.decisions, floor_stage.decisions_ref, floor_stage.history,
        floor_stage.work_orders, floor_stage.outbox, floor_stage.products;
"""
# Empty tables of the written ones' shape, afresh for every measurement.
_FLOOR_TABLES = """
DROP SCHEMA IF EXISTS floor CASCADE; CREATE SCHEMA floor;
CREATE TABLE floor.decisions (LIKE credit.decisions INCLUDING ALL);
CREATE TABLE floor.state_history (LIKE credit.state_history INCLUDING ALL);
CREATE TABLE floor.work_orders (LIKE credit.work_orders INCLUDING ALL);
CREATE TABLE floor.outbox (LIKE credit.outbox INCLUDING ALL);
CREATE TABLE floor.outbox_pending (LIKE credit.outbox_pending INCLUDING ALL);
CREATE TABLE floor.outbox_unqueued (LIKE credit.outbox INCLUDING ALL);
CREATE TABLE floor.decisions_ref (LIKE credit.decisions INCLUDING ALL);
"""

_IN_RANGE = "product_id > $1 AND product_id <= $2"


def _copied(target: str, source: str) -> str:
    """Rows of the chunk's range copied whole from a staged table (decisions' shape)."""
    return (f"INSERT INTO floor.{target} SELECT * FROM floor_stage.{source} "
            f"WHERE {_IN_RANGE} ON CONFLICT DO NOTHING RETURNING 1")


def _outbox_rows(target: str) -> str:
    """The chunk's outbox rows into `target`, in the sweep's order, new ids as it takes them."""
    return (f"INSERT INTO floor.{target} (event_id, topic, key, event_type, payload) "
            f"SELECT event_id, topic, key, event_type, payload FROM floor_stage.outbox "
            f"WHERE {_IN_RANGE} ORDER BY product_id, id RETURNING 1")


# Each part of a chunk: a data-modifying WITH query over the chunk's product id range.
_FLOOR_PARTS = {
    "decisions": _copied("decisions", "decisions"),
    "history": f"""
  INSERT INTO floor.state_history (product_id, state_before, state_after, cause, decision_id,
      at)
  SELECT product_id, state_before, state_after, cause, decision_id, at
  FROM floor_stage.history WHERE {_IN_RANGE} RETURNING 1""",
    "work orders": _copied("work_orders", "work_orders"),
    "outbox": _outbox_rows("outbox"),
    # Not part of the floor, measured alone: the outbox rows without the pending queue; the
    # decisions with the context replaced by a reference (the decision's id), to weigh that
    # change of the contracts.
    "outbox unqueued": _outbox_rows("outbox_unqueued"),
    "decisions, context by reference": _copied("decisions_ref", "decisions_ref"),
    "products": f"""
  UPDATE credit.product_credit p SET
    {', '.join(f'{c} = s.{c}' for c in _FLOOR_PRODUCT_COLUMNS)}
  FROM floor_stage.products s
  WHERE p.product_id = s.product_id AND s.product_id > $1 AND s.product_id <= $2
  RETURNING 1""",
}


# Measured alone only (`--floor-parts`), never part of the floor itself.
_FLOOR_VARIANTS = ("outbox unqueued", "decisions, context by reference")


def _floor_chunk(parts: list[str]) -> str:
    queries = ", ".join(f"p{i} AS ({_FLOOR_PARTS[k]})" for i, k in enumerate(parts))
    counts = ", ".join(f"(SELECT count(*) FROM p{i})" for i in range(len(parts)))
    return f"WITH {queries} SELECT {counts}"


async def _write_floor(url: str, lanes: int, chunk: int, parts: list[str]
                       ) -> tuple[float, list[int]]:
    """The sweep's rows of `parts` written again (`_FLOOR_PARTS`, from the rows
    `_FLOOR_STAGE` staged): seconds, and each part's rows written, as a check that all of
    them were."""
    dsn = _scratch.asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_FLOOR_TABLES)
        if "outbox" in parts:
            for statement in outbox_queue_ddl("floor"):
                await conn.execute(statement)
        bounds = [r[0] for r in await conn.fetch(
            "SELECT product_id FROM (SELECT product_id, row_number() OVER (ORDER BY product_id)"
            " AS n FROM credit.product_credit) x WHERE n % $1 = 0 ORDER BY 1", chunk)]
        last = await conn.fetchval("SELECT max(product_id) FROM credit.product_credit")
    finally:
        await conn.close()
    ranges = [(lo, hi) for lo, hi in zip(["", *bounds], [*bounds, last], strict=True)
              if lo != hi]
    per_lane = -(-len(ranges) // lanes)
    totals = [0] * len(parts)
    sql = _floor_chunk(parts)

    async def lane(mine: list[tuple[str, str]]) -> None:
        c = await asyncpg.connect(dsn)
        try:
            for lo, hi in mine:
                async with c.transaction():
                    await c.execute(f"SET LOCAL work_mem = '{sweep_sql.WORK_MEM}'")
                    row = await c.fetchrow(sql, lo, hi)
                for i, n in enumerate(row):
                    totals[i] += n
        finally:
            await c.close()

    start = time.perf_counter()
    await asyncio.gather(*(lane(ranges[i * per_lane:(i + 1) * per_lane]) for i in range(lanes)))
    return time.perf_counter() - start, totals


async def _floors(url: str, lanes: int, chunk: int, parts: bool
                  ) -> tuple[float, dict[str, int], dict[str, float]]:
    """The write floor with every part, then (`parts`) each part alone, the products' UPDATE
    last (each measurement writes its rows afresh; the products' rows take a version more
    each time)."""
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(url))
    try:
        await conn.execute(_FLOOR_STAGE)
        # Each kind's row size as stored (a row over ~2 KB would be compressed or toasted).
        sizes = {k: await conn.fetchrow(
            f"SELECT round(avg(pg_column_size(x.*))) AS avg, max(pg_column_size(x.*)) AS max, "
            f"count(*) FILTER (WHERE pg_column_size(x.*) > 2032) AS over FROM {table} x")
            for k, table in (("decision", "credit.decisions"),
                             ("history", "credit.state_history"),
                             ("outbox", "credit.outbox"),
                             ("decision, context by reference", "floor_stage.decisions_ref"))}
        print("  rows as stored, bytes (average / largest / over 2,032): " + ", ".join(
            f"{k} {r['avg']:,.0f} / {r['max']:,} / {r['over']:,}" for k, r in sizes.items()))
        every = [k for k in _FLOOR_PARTS if k not in _FLOOR_VARIANTS]
        lsn = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        seconds, counts = await _write_floor(url, lanes, chunk, every)
        wal = await conn.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::text::pg_lsn)", lsn)
    finally:
        await conn.close()
    print(f"  write floor's WAL {wal / 2**20:,.0f} MiB")
    rows = dict(zip(every, counts, strict=True))
    alone = {}
    if parts:
        for part in [*(k for k in _FLOOR_PARTS if k != "products"), "products"]:
            alone[part] = (await _write_floor(url, lanes, chunk, [part]))[0]
    return seconds, rows, alone


async def _one_sweep(ctx: CreditContext, sweep_id: str, url: str
                     ) -> tuple[dict[str, Any], float]:
    # Unvalidated: the bench's month end may be ahead of the wall clock.
    cmd = RunSweep.model_construct(sweep_id=sweep_id, as_of=SWEEP_AS_OF)
    dsn = _scratch.asyncpg_dsn(url)
    stats = await asyncpg.connect(dsn)  # the WAL's position and counters, before and after
    try:
        lsn = await stats.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        wal_before = await _pg_waits.wal_stats(stats)
        async with _pg_waits.sampled(dsn, every_s=0.05) as waits:
            start = time.perf_counter()
            stored = await sweeps.run_sweep(ctx, cmd)
            seconds = time.perf_counter() - start
        wal_counts = _pg_waits.wal_delta(wal_before, await _pg_waits.wal_stats(stats))
        wal_bytes, lsn_after = await stats.fetchrow(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::text::pg_lsn), "
            "pg_current_wal_insert_lsn()::text", lsn)
    finally:
        await stats.close()
    # The LSNs too: `pg_waldump --stats=record -s FROM -e TO` says which records the bytes are
    # (with `wal_keep_size` set: the scratch database's DROP checkpoints and recycles them).
    return {**stored.body, "wal_bytes": int(wal_bytes), "wal_from": lsn, "wal_to": lsn_after,
            "wal_report": _pg_waits.report(wal_counts, waits)}, seconds


async def sweep_once(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """One run on a fresh scratch database: seed, sweep, re-run, ceiling."""
    async with scratch_database(settings) as scratch:
        seconds_seed = await seed(scratch.database_url, args.products)
        p = plumbing(scratch, t.outbox, t.inbox, t.idempotency_keys)
        ctx = CreditContext(p.engine, p.outbox, p.keys, SystemClock(), settings=scratch)
        try:
            first, seconds = await _one_sweep(ctx, "bench-month-end", scratch.database_url)
            written = await _counts(ctx)
            again, seconds_again = await _one_sweep(ctx, "bench-month-end-rerun",
                                                     scratch.database_url)
        finally:
            await p.engine.dispose()
        ceiling = await _ceiling(scratch.database_url, written["history"] / args.products)
        lanes = (settings.sweep_lanes if args.products >= settings.sweep_lanes_min_products
                 else 1)
        floor, floor_rows, floor_parts = await _floors(
            scratch.database_url, lanes, settings.sweep_chunk, args.floor_parts)
    result = {"seed": seconds_seed, "sweep": seconds, "rerun": seconds_again,
              "ceiling": ceiling, "floor": floor, "floor_rows": floor_rows,
              "floor_parts": floor_parts, "first": first, "again": again, **written}
    _report_run(args.products, result)
    return result


async def explain_chunk(args: argparse.Namespace, settings: Settings) -> None:
    """--explain: on a freshly seeded database, the sweep's first chunk under EXPLAIN
    (ANALYZE, BUFFERS), rolled back: where a chunk's time goes, node by node."""
    async with scratch_database(settings) as scratch:
        await seed(scratch.database_url, args.products)
        p = plumbing(scratch, t.outbox, t.inbox, t.idempotency_keys)
        ctx = CreditContext(p.engine, p.outbox, p.keys, SystemClock(), settings=scratch)
        today = SWEEP_AS_OF.astimezone(BUSINESS_TZ).date()
        try:
            async with ctx.engine.connect() as conn:
                table = await ctx.rules.current(conn)
                steps = list(enumerate(rules.sweep_plan(table, today, scratch.notice_policy)))
                values = sweep_sql.params(
                    steps, SWEEP_AS_OF, datetime.now(UTC), table.version, "",
                    scratch.sweep_chunk, ctx.source, None, SWEEP_AS_OF, today)
                await conn.rollback()
                used = {k: v for k, v in values.items() if f":{k} " in sweep_sql.STATEMENT}
                async with conn.begin() as tx:
                    await sweep_sql.tune_chunk(conn)  # as a sweep's chunk runs
                    start = time.perf_counter()
                    plan = (await conn.execute(text(
                        "EXPLAIN (ANALYZE, BUFFERS) " + sweep_sql.STATEMENT), used)).all()
                    seconds = time.perf_counter() - start
                    await tx.rollback()
        finally:
            await p.engine.dispose()
    print("\n".join(r[0] for r in plan))
    print(f"first chunk of {scratch.sweep_chunk:,} products (of {args.products:,}) under "
          f"EXPLAIN ANALYZE: {seconds:.2f} s (rolled back)")


async def sweep_part(args: argparse.Namespace, settings: Settings) -> None:
    if args.explain:
        await explain_chunk(args, settings)
        return
    results = [await sweep_once(args, settings) for _ in range(args.runs)]
    lanes = (settings.sweep_lanes if args.products >= settings.sweep_lanes_min_products else 1)
    print(f"  (chunks of {settings.sweep_chunk:,} products, {lanes} lane(s): "
          f"CREDIT_SWEEP_CHUNK, CREDIT_SWEEP_LANES, CREDIT_SWEEP_LANES_MIN_PRODUCTS)")
    _report_sweep(args.products, results)


def _report_run(products: int, r: dict[str, Any]) -> None:
    decisions = Counter(r["first"]["decisions"])
    print(f"month-end sweep: {products:,} product instances seeded with COPY in "
          f"{r['seed']:.1f} s; as_of {SWEEP_AS_OF.isoformat()}")
    print(f"  decisions: {dict(decisions)} (held: {r['first']['held'] is not None})")
    print(f"  rows written: {r['decisions']:,} decisions, {r['history']:,} state "
          f"changes, {r['work_orders']:,} work orders, {r['outbox_messages']:,} events in "
          f"{r['outbox']:,} outbox rows; "
          f"product_credit updates {r['updates']:,} of which HOT {r['hot_updates']:,}")
    print(f"  sweep:  {r['sweep']:>6.1f} s = {products / r['sweep']:>10,.0f} products/s; "
          f"re-run {r['rerun']:.2f} s, new decisions: {sum(r['again']['decisions'].values())}; "
          f"ceiling (one UPDATE flipping the same share) {r['ceiling']:.2f} s")
    print(f"  write floor: the sweep's rows written again, nothing decided {r['floor']:.1f} s "
          f"(rows: {', '.join(f'{k} {n:,}' for k, n in r['floor_rows'].items())})")
    if r["floor_parts"]:
        print("  each part alone: " + ", ".join(
            f"{k} {sec:.1f} s" for k, sec in r["floor_parts"].items()))
    print(f"  WAL written by the sweep {r['first']['wal_bytes'] / 2**20:,.0f} MiB "
          f"({r['first']['wal_bytes'] / max(r['decisions'], 1):,.0f} bytes a decision), "
          f"by its re-run {r['again']['wal_bytes'] / 2**20:,.1f} MiB (the sweep's LSNs "
          f"{r['first']['wal_from']} → {r['first']['wal_to']})")
    print(f"  the sweep's {r['first']['wal_report']}")


def _report_sweep(products: int, results: list[dict[str, Any]]) -> None:
    def med(k: str) -> float:
        return float(statistics.median(r[k] for r in results))
    last = results[-1]
    print(f"RESULT credit-control month-end sweep: {products:,} products in {med('sweep'):.1f} s "
          f"(median of {len(results)}; target < 10 s), {last['decisions']:,} decisions, "
          f"{last['outbox_messages']:,} events in {last['outbox']:,} outbox rows; "
          f"re-run {med('rerun'):.2f} s (target < 2 s); "
          f"same-run ceilings: one UPDATE flipping the same share {med('ceiling'):.2f} s, "
          f"the sweep's rows written again (write floor) {med('floor'):.1f} s")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--no-bill-runs", action="store_true",
                        help="payments only: no event leads to a decision")
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--skip-consume", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--processes", type=int, default=1,
                        help="credit-control consumer processes in one group")
    parser.add_argument("--rerun", action="store_true",
                        help="(always on) the month-end sweep runs a second time, deciding nothing")
    parser.add_argument("--explain", action="store_true",
                        help="instead of timing the sweep: its first chunk (CREDIT_SWEEP_CHUNK "
                        "products) under EXPLAIN (ANALYZE, BUFFERS), rolled back")
    parser.add_argument("--floor-parts", action="store_true",
                        help="after the write floor, each kind of row of it written alone, and "
                        "its variants (the outbox unqueued, the decisions' context by reference)")
    parser.add_argument("--runs", type=int, default=1,
                        help="sweep runs, each on a fresh database; the figures are medians")
    parser.add_argument("--repeat", type=int, default=1,
                        help="balance-event runs (raw, ceiling, credit-control each); the "
                        "RESULT lines give medians (3 for the quiet-machine figures)")
    parser.add_argument("--cpu-events", type=int, default=20_000,
                        help="events fed without Kafka for the CPU per event")
    parser.add_argument("--cpu-only", action="store_true",
                        help="only the CPU per event (decode + handler, no Kafka), --repeat "
                        "times: the steady before/after measure on a loaded machine")
    parser.add_argument("--sections", action="store_true",
                        help="with --cpu-only, credit-control's CPU per event by part of the "
                        "batch: each read and write of the store, deciding, the rating's "
                        "inputs, the inbox claim (bench/_sections.py)")
    parser.add_argument("--instructions", metavar="CALLGRIND_OUT",
                        help="with --cpu-only, under valgrind's callgrind (started with "
                        "--instr-atstart=no --callgrind-out-file=CALLGRIND_OUT): also count "
                        "the instructions per event (scripts/instructions.sh)")
    parser.add_argument("--worker", nargs=2, metavar=("TOPIC", "GROUP"), help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-worker", nargs=2, metavar=("TOPIC", "GROUP"),
                        help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # make bench passes every script the same ARGS
    if (args.instructions or args.sections) and not args.cpu_only:
        parser.error("--instructions and --sections look at the --cpu-only part: give it")
    tune_gc()  # as every service process does at start (common.runtime)
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"],
                        kafka_bootstrap=os.environ["CREDITCTL_KAFKA_BOOTSTRAP"],
                        consumer_batch_size=5000)
    if args.worker:
        await _worker(settings, *args.worker, consume_until_stopped)
        return
    if args.ceiling_worker:
        await _worker(settings, *args.ceiling_worker, ceiling_until_stopped)
        return
    if args.cpu_only:
        await cpu_part(args, settings)
        return
    if not args.skip_consume:
        await balance_part(args, settings)
    if not args.skip_sweep:
        await sweep_part(args, settings)


if __name__ == "__main__":
    asyncio.run(main())
