"""Soak: balance events at a steady rate for a while, through the four services as processes.

What it does:
- starts the four services (or, with --pids, watches ones already running), migrated;
- produces valid `BalanceChanged` envelopes straight to `billing.balance.v1` at --rate per
  second for --duration seconds (billing's HTTP API cannot take 1,000 writes/s on this
  machine, and the soak is about what comes after it). Each account gets a bill run first
  (balance below 0: a bill notice decision and one SMS) and then partial payments (no
  decision), with per-account sequences, so --decide-every events in N lead to a decision;
- samples every --sample seconds: the consumer lag of credit-control and notifier (committed
  offsets against the log end) and the RSS of every service process (/proc/<pid>/status);
- after the last event, waits until both groups have no lag and every SMS is submitted;
- reports, from the database timestamps: balance event (occurred_at) → decision row
  (created_at) → SMS submitted (submitted_at), p50/p95/p99/max; events lost (produced but
  not applied); RSS at start and end. A table on stdout and JSON in test-artifacts/soak.json.

The gateway path is not in this soak: a balance event alone never blocks a product (a
suspension comes from a calendar sweep), so it has no balance-event → block latency.

Usage: python bench/soak.py [--rate 1000] [--duration 60] [--accounts-per-s R]
                            [--pids name=pid,...] [--json PATH]
Needs CREDITCTL_DATABASE_URL and CREDITCTL_KAFKA_BOOTSTRAP (scripts/bench.sh sets them);
`make soak` runs it with RATE=1000 DURATION=600.
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _soak_gateway as gw
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.contracts import BALANCE_TOPIC, DECISIONS_TOPIC
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import to_bytes, wrap
from common.kafka import Publisher
from common.testing.groups import group_lag
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack, stack_from_env

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"credit-control": [BALANCE_TOPIC], "notifier": [DECISIONS_TOPIC]}
BILL_MONTH = "2026-10"


def specs(base: int) -> list[ServiceSpec]:
    return [
        ServiceSpec("billing-events", "billing_events", "BILLING_", base + 1),
        ServiceSpec("credit-control", "credit_control", "CREDIT_", base + 2, extra_env=(
            ("CREDIT_CONSUMER_POLL_MS", "200"),)),
        ServiceSpec("notifier", "notifier", "NOTIFIER_", base + 3, extra_env=(
            # the soak must not depend on the hour it runs at
            ("NOTIFIER_CUSTOMER_SENDING_HOURS", "00:00-24:00"),
            ("NOTIFIER_CONSUMER_POLL_MS", "200"))),
        ServiceSpec("gateway-adapter", "gateway_adapter", "GATEWAY_", base + 4, extra_env=(
            ("GATEWAY_RECONCILIATION_INTERVAL_S", "0"),
            # the industry gateway's CMPP 2.0 server, for the probes (soak_gateway.py)
            ("GATEWAY_CMPP_HOST", "127.0.0.1"), ("GATEWAY_CMPP_PORT", str(base + 5)))),
    ]


# --- the workload ---------------------------------------------------------------------------

class Workload:
    """Events for accounts `soak-<run>-<n>`: sequence 1 a bill run owing 10,000 fen, then
    payments of 100 fen (still owing: no decision)."""

    def __init__(self, run: str, decide_every: int) -> None:
        self.run = run
        self.decide_every = decide_every
        self.customer = CustomerSnapshot(
            customer_id=f"soak-{run}", name="浸泡测试集团", tier=Tier.MID,
            account_manager=Person(name="经理", phone="13900000000"),
            contacts=(Person(name="联系人", phone="13800000000"),))
        self.produced = 0
        self.bill_runs = 0
        self.settled = 0

    def next(self) -> tuple[str, bytes, bytes]:
        i = self.produced
        self.produced += 1
        account = f"soak-{self.run}-{i // self.decide_every}"
        seq = i % self.decide_every + 1
        due = 10_000 - (seq - 1) * 100
        bill_run = seq == 1
        self.bill_runs += bill_run
        now = datetime.now(UTC)
        event = BalanceChanged(
            account_id=account, sequence=seq,
            cause=BalanceCause.BILL_RUN if bill_run else BalanceCause.PAYMENT,
            as_of=now, balance_fen=-due, amount_due_fen=due,
            dues=(BillMonthDue(bill_month=BILL_MONTH, amount_due_fen=due),),
            closed_bill_month=BILL_MONTH if bill_run else None, customer=self.customer,
            products=(ProductSnapshot(product_id=f"{account}-p", cpno=f"CP{account}",
                                      name="集团V网", family=ProductFamily.ADC),))
        env = wrap(event, key=account, source="soak", occurred_at=now)
        return BALANCE_TOPIC, account.encode(), to_bytes(env)

    def settle(self) -> list[tuple[str, bytes, bytes]]:
        """A last payment per account, clearing it (arrears cleared, no SMS): a soak leaves
        no owing products behind for later sweeps in the same database."""
        out = []
        now = datetime.now(UTC)
        accounts = -(-self.produced // self.decide_every)
        for a in range(accounts):
            account = f"soak-{self.run}-{a}"
            seq = min(self.decide_every, self.produced - a * self.decide_every) + 1
            event = BalanceChanged(
                account_id=account, sequence=seq, cause=BalanceCause.PAYMENT, as_of=now,
                balance_fen=0, amount_due_fen=0, dues=(), customer=self.customer,
                products=(ProductSnapshot(product_id=f"{account}-p", cpno=f"CP{account}",
                                          name="集团V网", family=ProductFamily.ADC),))
            out.append((BALANCE_TOPIC, account.encode(),
                        to_bytes(wrap(event, key=account, source="soak", occurred_at=now))))
        self.settled = len(out)
        return out


async def produce(bootstrap: str, work: Workload, rate: int, duration: float) -> float:
    """Steady rate in 100 ms ticks; returns the rate achieved."""
    publisher = Publisher(bootstrap, "soak-producer")
    await publisher.start()
    start = time.perf_counter()
    try:
        tick = 0
        while (elapsed := time.perf_counter() - start) < duration:
            due = int(rate * min(elapsed + 0.1, duration)) - work.produced
            if due > 0:
                await publisher.send_many([work.next() for _ in range(due)])
            tick += 1
            await asyncio.sleep(max(start + tick * 0.1 - time.perf_counter(), 0))
        achieved = work.produced / (time.perf_counter() - start)
        await publisher.send_many(work.settle())
    finally:
        await publisher.stop()
    return achieved


# --- sampling -------------------------------------------------------------------------------

def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def lags(bootstrap: str) -> dict[str, int]:
    return {g: sum((await group_lag(bootstrap, g, topics)).values())
            for g, topics in GROUPS.items()}


async def sampler(bootstrap: str, pids: dict[str, int], every: float,
                  samples: list[dict[str, Any]], stop: asyncio.Event) -> None:
    start = time.perf_counter()
    while not stop.is_set():
        sample: dict[str, Any] = {"t": round(time.perf_counter() - start, 1)}
        try:
            sample["lag"] = await lags(bootstrap)
        except Exception as exc:  # a sample lost is not a reason to stop the soak
            sample["lag"] = repr(exc)
        sample["rss_mb"] = {n: rss_mb(p) for n, p in pids.items()}
        samples.append(sample)
        print(f"  t={sample['t']:>6}s lag={sample['lag']} rss={_fmt_rss(sample['rss_mb'])}",
              flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def _fmt_rss(rss: dict[str, float | None]) -> str:
    return " ".join(f"{n}:{v:.0f}MB" if v else f"{n}:-" for n, v in rss.items())


# --- outcome --------------------------------------------------------------------------------

async def counts(db: AsyncEngine, run: str) -> dict[str, int]:
    like = f"soak-{run}-%"
    async with db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT (SELECT coalesce(sum(sequence), 0) FROM credit.account_positions "
            "        WHERE account_id LIKE :like) AS applied, "
            "       (SELECT count(*) FROM credit.decisions WHERE account_id LIKE :like "
            "        AND decision = 'bill_notice') AS decisions, "
            "       (SELECT count(*) FROM notifier.messages WHERE account_id LIKE :like) "
            "         AS messages, "
            "       (SELECT count(*) FROM notifier.messages WHERE account_id LIKE :like "
            "        AND submitted_at IS NOT NULL) AS submitted, "
            # quiet hours (a service started with the default sending window): not a loss
            "       (SELECT count(*) FROM notifier.messages WHERE account_id LIKE :like "
            "        AND status = 'held') AS held, "
            # held by quiet hours, then the settle burst's payment made the reminder stale:
            # cancelled by the send-time re-check with its reason, never sent (issue 15)
            "       (SELECT count(*) FROM notifier.messages WHERE account_id LIKE :like "
            "        AND status = 'cancelled' AND status_reason IS NOT NULL) AS cancelled"),
            {"like": like})).one()
    return {k: int(v) for k, v in row._mapping.items()}  # sum() comes back as a Decimal


async def latencies(db: AsyncEngine, run: str
                    ) -> tuple[dict[str, dict[str, float]], list[dict[str, float]]]:
    """Percentiles in ms, and event → SMS by minute (`by_minute`). The workload stamps each
    event's `as_of` with the moment it made it (= the envelope's occurred_at), and a decision
    keeps its event's as_of, so decision.created_at − as_of is event → decision;
    submitted_at − as_of is event → SMS."""
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT extract(epoch FROM d.created_at - d.as_of) * 1000 AS to_decision, "
            "       extract(epoch FROM m.submitted_at - d.as_of) * 1000 AS to_sms, "
            "       extract(epoch FROM d.as_of) AS at "
            "FROM credit.decisions d LEFT JOIN notifier.messages m "
            "  ON m.source_id = 'decision:' || d.decision_id "
            "WHERE d.account_id LIKE :like AND d.decision = 'bill_notice'"),
            {"like": f"soak-{run}-%"})).all()
    out = {}
    for name, values in (("event_to_decision_ms", [r.to_decision for r in rows]),
                         ("event_to_sms_submitted_ms", [r.to_sms for r in rows])):
        vals = sorted(float(v) for v in values if v is not None)
        out[name] = _percentiles(vals)
    sms_by_minute = by_minute([(float(r.at), float(r.to_sms)) for r in rows
                               if r.to_sms is not None])
    return out, sms_by_minute


def by_minute(points: list[tuple[float, float]], over_ms: float = 250
              ) -> list[dict[str, float]]:
    """(event time in epoch seconds, latency ms) per minute of the run from its first event:
    how many, their p99, how many over `over_ms`. A p99 over the whole run hides whether its
    tail is one bad minute (a checkpoint, a cold start) or spread over all of them."""
    if not points:
        return []
    first = min(t for t, _ in points)
    minutes: dict[int, list[float]] = {}
    for t, ms in points:
        minutes.setdefault(int((t - first) // 60), []).append(ms)
    out = []
    for minute in sorted(minutes):
        vals = sorted(minutes[minute])
        out.append({"minute": minute, "n": len(vals), "p99": _percentiles(vals)["p99"],
                    "over": sum(1 for v in vals if v > over_ms)})
    return out


def _percentiles(vals: list[float]) -> dict[str, float]:
    if not vals:
        return {"n": 0}

    def at(q: float) -> float:
        return round(vals[min(int(q * len(vals)), len(vals) - 1)], 1)

    return {"n": len(vals), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
            "max": round(vals[-1], 1)}


async def drain(db: AsyncEngine, bootstrap: str, work: Workload, timeout: float) -> float:
    """Seconds until every event is applied, both groups have no lag and every SMS is
    submitted (or the timeout)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        c = await counts(db, work.run)
        lag = await lags(bootstrap)
        if (c["applied"] >= work.produced + work.settled and not any(lag.values())
                and c["decisions"] >= work.bill_runs
                and c["submitted"] + c["held"] + c["cancelled"] >= c["messages"]
                >= c["decisions"]):
            return time.perf_counter() - start
        await asyncio.sleep(1)
    return float("nan")


# --- main -----------------------------------------------------------------------------------

async def soak(args: argparse.Namespace, stack: Stack, pids: dict[str, int]) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    work = Workload(run, args.decide_every)
    db = create_async_engine(stack.database_url)
    samples: list[dict[str, Any]] = []
    stop = asyncio.Event()
    start_rss = {n: rss_mb(p) for n, p in pids.items()}
    print(f"soak {run}: {args.rate}/s for {args.duration}s, 1 decision in "
          f"{args.decide_every} events; services {pids}", flush=True)
    sampling = asyncio.create_task(sampler(stack.kafka_bootstrap, pids, args.sample,
                                           samples, stop))
    probes = [gw.Probe(run, k) for k in range(int(args.duration / args.probe_every) - 1)
              ] if args.probe_every > 0 else []
    probing_done = asyncio.Event()
    try:
        async with contextlib.AsyncExitStack() as probing:
            if probes:
                await gw.register(db, probes)
                await probing.enter_async_context(gw.threshold_on(db))
            prober = asyncio.create_task(gw.run_probes(
                stack.kafka_bootstrap, args.cmpp_port, probes, args.probe_every,
                args.probe_interval_ms / 1000, args.probe_timeout, probing_done))
            try:
                achieved = await produce(stack.kafka_bootstrap, work, args.rate,
                                         args.duration)
            finally:
                probing_done.set()
                await prober
        drained_s = await drain(db, stack.kafka_bootstrap, work, args.drain_timeout)
    finally:
        stop.set()
        await sampling
    end_rss = {n: rss_mb(p) for n, p in pids.items()}
    outcome = await counts(db, run)
    lat, sms_by_minute = await latencies(db, run)
    gateway = await gw.latencies(db, probes, _percentiles) if probes else {}
    await db.dispose()
    return {
        "run": run, "rate_target": args.rate, "rate_achieved": round(achieved, 1),
        "duration_s": args.duration, "events": work.produced, "bill_runs": work.bill_runs,
        "applied": outcome["applied"],
        "lost": work.produced + work.settled - outcome["applied"], "settled": work.settled,
        "decisions": outcome["decisions"], "sms": outcome["messages"],
        "sms_submitted": outcome["submitted"], "sms_held": outcome["held"],
        "sms_cancelled": outcome["cancelled"],
        "drain_s": round(drained_s, 1),
        "latency": {**lat, **{k: v for k, v in gateway.items() if k.endswith("_ms")}},
        "probes": {k: v for k, v in gateway.items() if not k.endswith("_ms")},
        "sms_by_minute": sms_by_minute,
        "rss_mb_start": start_rss, "rss_mb_end": end_rss,
        "rss_mb_max": {n: max((s["rss_mb"].get(n) or 0) for s in samples) if samples else None
                       for n in pids},
        # while producing at the steady rate; the settle burst at the end is not a rate
        "max_lag": {g: max((s["lag"].get(g, 0) for s in samples
                            if isinstance(s["lag"], dict) and s["t"] <= args.duration),
                           default=0) for g in GROUPS},
        "samples": samples,
    }


def report(result: dict[str, Any]) -> None:
    print(f"\nsoak {result['run']}: {result['events']} events at {result['rate_achieved']}/s "
          f"(target {result['rate_target']}/s), {result['duration_s']} s; "
          f"drained {result['drain_s']} s after the last event")
    print(f"  events applied {result['applied']} (lost {result['lost']}), decisions "
          f"{result['decisions']} (bill runs {result['bill_runs']}), SMS {result['sms']} "
          f"(submitted {result['sms_submitted']}, held for quiet hours {result['sms_held']}, "
          f"cancelled as stale {result['sms_cancelled']})")
    print(f"  max consumer lag while producing: {result['max_lag']}")
    if result["probes"]:
        print(f"  gateway probes (CMPP clients of MAS enterprises suspended mid-soak): "
              f"{result['probes']}")
    print(f"  {'latency (ms)':<28}{'n':>8}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}")
    for name, p in result["latency"].items():
        print(f"  {name:<28}{p.get('n', 0):>8}" + "".join(
            f"{p.get(k, float('nan')):>10}" for k in ("p50", "p95", "p99", "max")))
    if result["sms_by_minute"]:
        print("  event -> SMS submitted by minute (minute: p99 ms / over 250 ms): " + ", ".join(
            f"{m['minute']}: {m['p99']} / {m['over']}" for m in result["sms_by_minute"]))
    print(f"  {'RSS (MB)':<28}{'start':>10}{'max':>10}{'end':>10}")
    for name in result["rss_mb_start"]:
        print(f"  {name:<28}{_mb(result['rss_mb_start'][name])}{_mb(result['rss_mb_max'][name])}"
              f"{_mb(result['rss_mb_end'][name])}")
    sms = result["latency"]["event_to_sms_submitted_ms"]
    refused = result["latency"].get("probe_decision_to_refused_ms", {})
    print(f"RESULT soak {result['rate_achieved']}/s for {result['duration_s']} s: lost "
          f"{result['lost']}, event→SMS p50 {sms.get('p50')} ms p99 {sms.get('p99')} ms"
          + (f", decision→refused CMPP_SUBMIT p50 {refused.get('p50')} ms p99 "
             f"{refused.get('p99')} ms (n {refused.get('n')})" if refused else ""))


def _mb(v: float | None) -> str:
    return f"{v:>10.0f}" if v else f"{'-':>10}"


def parse_pids(value: str) -> dict[str, int]:
    return {n: int(p) for n, p in (item.split("=") for item in value.split(",") if item)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=1000, help="balance events per second")
    ap.add_argument("--duration", type=float, default=60, help="seconds of production")
    ap.add_argument("--decide-every", type=int, default=10,
                    help="events per account: the first decides (bill notice), the rest not")
    ap.add_argument("--sample", type=float, default=5, help="seconds between samples")
    ap.add_argument("--drain-timeout", type=float, default=300)
    ap.add_argument("--pids", type=parse_pids, default=None,
                    help="watch running services (name=pid,...) instead of starting them")
    ap.add_argument("--base-port", type=int,
                    default=int(os.environ.get("CREDITCTL_SOAK_BASE_PORT", "18300")))
    ap.add_argument("--probe-every", type=float, default=None,
                    help="seconds between gateway probes (MAS enterprises suspended mid-soak, "
                         "watched by a CMPP client); 0 = none. Default 2 when the soak starts "
                         "the services, none with --pids unless --cmpp-port is given (the "
                         "probes publish a rule-table version: not in someone else's stack)")
    ap.add_argument("--probe-interval-ms", type=float, default=5,
                    help="a probe's CMPP client submits this often")
    ap.add_argument("--probe-timeout", type=float, default=15,
                    help="seconds a probe waits for its refusal, then for its restore")
    ap.add_argument("--cmpp-port", type=int, default=None,
                    help="the gateway's CMPP port (default: the started gateway's, base + 5)")
    ap.add_argument("--json", type=Path, default=ROOT / "test-artifacts" / "soak.json")
    args = ap.parse_args()
    if args.probe_every is None:
        args.probe_every = 2.0 if args.pids is None or args.cmpp_port is not None else 0.0
    if args.cmpp_port is None:
        args.cmpp_port = args.base_port + 5
    stack = stack_from_env()
    if stack is None:
        sys.exit("CREDITCTL_DATABASE_URL / CREDITCTL_KAFKA_BOOTSTRAP not set "
                 "(run through scripts/bench.sh or make soak)")
    procs = None
    if args.pids is None:
        procs = ServiceProcesses(specs(args.base_port), stack,
                                 ROOT / "test-artifacts" / "logs-soak", "soak-token")
        for name in procs.specs:
            procs.migrate(name)
        procs.start_all()
    try:
        pids = args.pids if args.pids is not None else procs.pids() if procs else {}
        result = asyncio.run(soak(args, stack, pids))
    finally:
        if procs is not None:
            procs.stop_all()
    report(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"(written to {args.json})")


if __name__ == "__main__":
    main()
