"""The one-pass sweep against the path it replaced, row by row (issue 17).

Two scratch databases get the same data set: the credit bench's products (by default 100,000)
made more varied (deposits to deduct from, red-listed customers, credit limits that clear the
arrears, suspended products whose retention ran out, late suspension warnings, ladders without
a month, products already warned at a higher level, suspension warnings whose SMS was delivered
late, only sent, not heard of, lost and owed again, or lost for good). Then the same days are
swept in both: 30 November (the month's last day), 15 December, and 15 December once more (it
must decide nothing):

- "old": every rule row of `sweep_plan` as its own statement per chunk, in plan order
  (bench/legacy_sweep_sql.py, the SQL the service ran before);
- "new": the service's own `run_sweep` (guard, durable steps, one pass per chunk).

After each day it compares decisions, product states, state history, work orders and outbox
rows, apart from the surrogate ids and the moments that are the wall clock (created_at,
command_sent_at, the envelope's event_id and occurred_at). Outbox rows are compared per
product in the order they were written (the order Kafka keeps per key).

Usage: python bench/sweep_compare.py [--products N] [--chunk C] [--sent-counts]
Needs CREDITCTL_DATABASE_URL (scripts/bench.sh sets it: BENCH=sweep_compare).
Exit status 1 if anything differs.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))

import _scratch
import credit_bench as cb
import legacy_sweep_sql as legacy

from common.app import plumbing
from common.clock import BUSINESS_TZ, SystemClock, business_date
from common.contracts import CreditDecisionMade, CreditStateChanged, ProvisioningCommand
from common.envelope import EventDecoder, to_builtins
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.domain import rules
from credit_control.credit.domain.commands import RunSweep
from credit_control.credit.domain.ladder import NoticePolicy
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.service_layer import sweeps
from credit_control.service_layer.context import CreditContext

DAYS = [datetime(2026, 11, 30, 20, 0, tzinfo=BUSINESS_TZ),
        datetime(2026, 12, 15, 20, 0, tzinfo=BUSINESS_TZ),
        datetime(2026, 12, 15, 21, 0, tzinfo=BUSINESS_TZ)]

# Applied to both databases after the bench's seed: the cases one pass could get wrong.
VARIETY = [
    # deductions need a deposit
    "UPDATE credit.account_positions SET deposit_fen = 2000 + (substr(account_id, 2)::int % 5)"
    " * 1000 WHERE substr(account_id, 2)::int % 3 = 0",
    # red list (and one that ran out) and credit limits that make the debt allowed
    "INSERT INTO credit.exemptions (exemption_id, customer_id, kind, reason, approver, until,"
    " created_by, created_at) SELECT 'E' || k, 'C' || k, 'red_list', 'compare', 'boss',"
    " CASE WHEN k % 100 = 0 THEN '2026-11-01'::timestamptz END, 'compare', now()"
    " FROM generate_series(0, 100000, 50) k",
    "INSERT INTO credit.credit_profiles (customer_id, star_level, credit_limit_fen, updated_by,"
    " updated_at) SELECT 'C' || k, 5, CASE WHEN k % 26 = 0 THEN 1000000 END, 'compare', now()"
    " FROM generate_series(0, 100000, 13) k",
    # suspended long ago (pre-cancellation due), or 102 days ago (only the short retention ran
    # out), some of them still owing (a deduction may come first)
    "UPDATE credit.product_credit SET state = 'suspended', state_changed_at = CASE WHEN"
    " substr(product_id, 2)::int % 80 = 0 THEN '2026-06-01T02:00:00Z'::timestamptz ELSE"
    " '2026-08-20T02:00:00Z'::timestamptz END WHERE substr(product_id, 2)::int % 40 IN (0, 1)",
    # late suspension warnings: a deadline after the month's last day
    "UPDATE credit.product_credit SET suspension_deadline = '2026-12-03' WHERE state ="
    " 'suspension_warned' AND substr(product_id, 2)::int % 7 = 0",
    # ladders without a month (NULL semantics of the notice check)
    "UPDATE credit.product_credit SET ladder_month = NULL WHERE substr(product_id, 2)::int"
    " % 11 = 0",
    # warned already at level 2: only a level-3 warning is due
    "UPDATE credit.product_credit SET warning_level = 2, state = 'warned' WHERE tier = 'high'"
    " AND state = 'normal' AND oldest_due_month IS NOT NULL AND substr(product_id, 2)::int"
    " % 3 = 0",
    # what became of the suspension warnings' SMS (the notice-delivered gate): delivered late
    # (on the last day itself, or with a longer notice period), sent without a receipt,
    # nothing heard, lost and owed again (named for the losses so far), lost for good (no
    # valid contact number, or max_warnings lost in a row: an exception)
    "UPDATE credit.product_credit SET notice_status = v.status, notice_sent_at ="
    " v.sent::timestamptz, notice_delivered_at = v.delivered::timestamptz, notice_days ="
    " COALESCE(v.days, notice_days), notice_failures = v.failures, notice_permanent ="
    " v.permanent, notice_reason = v.reason FROM (VALUES"
    " (1, 'delivered', '2026-11-25T02:00Z', '2026-11-29T18:00Z', NULL, 0, false, NULL),"
    " (2, 'sent', '2026-11-25T02:00Z', NULL, NULL, 0, false, NULL),"
    " (3, 'failed', NULL, NULL, NULL, 1, false, 'SMSC rejected'),"
    " (4, 'cancelled', NULL, NULL, NULL, 3, false, 'expired in quiet hours'),"
    " (5, 'failed', NULL, NULL, NULL, 1, true, 'no valid contact number'),"
    " (6, 'failed', '2026-11-25T02:00Z', NULL, NULL, 2, false, NULL),"
    " (7, NULL, NULL, NULL, NULL, 0, false, NULL),"
    " (8, 'delivered', '2026-11-27T02:00Z', '2026-11-27T20:00Z', 3, 0, false, NULL),"
    " (9, 'cancelled', NULL, NULL, NULL, 5, false, NULL)"
    ") AS v(k, status, sent, delivered, days, failures, permanent, reason)"
    " WHERE state = 'suspension_warned' AND substr(product_id, 2)::int / 4 % 13 = v.k",
    # a lost SMS left from an earlier ladder of a product not suspension-warned now
    "UPDATE credit.product_credit SET notice_status = 'failed', notice_failures = 1,"
    " notice_reason = 'SMSC rejected' WHERE state <> 'suspension_warned'"
    " AND substr(product_id, 2)::int % 34 = 2",
    # a suspension in flight: the sweep leaves it alone (no deduction either)
    "UPDATE credit.product_credit SET state = 'suspend_requested' WHERE"
    " substr(product_id, 2)::int % 97 = 0",
    "ANALYZE",
]


async def old_sweep(url: str, sweep_id: str, as_of: datetime, chunk: int,
                    policy: NoticePolicy) -> float:
    """The old path: each step of the plan, chunk after chunk, in its own transaction (as of
    the moment read back from the run, in UTC, and correlated by the sweep's id, as the
    service did)."""
    as_of = as_of.astimezone(UTC)
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(url))
    start = time.perf_counter()
    try:
        for step in rules.sweep_plan(DEFAULT_RULES, business_date(as_of), policy):
            sql = legacy.statement(step)
            after = ""
            while True:
                values = legacy.params(
                    step, as_of, datetime.now(BUSINESS_TZ), 1, after, chunk, "credit-control",
                    f"sweep:{sweep_id}", as_of + timedelta(hours=24))
                used = {k: v for k, v in values.items() if f":{k} " in sql}
                query, args = _positional(sql, used)
                async with conn.transaction():
                    await conn.execute("SET LOCAL work_mem = '64MB'")
                    row = await conn.fetchrow(query, *args)
                assert row is not None
                if row["candidates"] < chunk or row["last_id"] is None:
                    break
                after = row["last_id"]
    finally:
        await conn.close()
    return time.perf_counter() - start


def _positional(sql: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """:name → $n for asyncpg."""
    names: list[str] = []

    def sub(m: Any) -> str:
        if m[1] not in names:
            names.append(m[1])
        return f"${names.index(m[1]) + 1}"
    return legacy._BIND.sub(sub, sql), [values[n] for n in names]


async def new_sweep(settings: Settings, sweep_id: str, as_of: datetime) -> float:
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = CreditContext(p.engine, p.outbox, p.keys, SystemClock(), settings=settings)
    start = time.perf_counter()
    try:
        # Unvalidated: the days compared may be ahead of the wall clock.
        cmd = RunSweep.model_construct(sweep_id=sweep_id, as_of=as_of)
        stored = await sweeps.run_sweep(ctx, cmd)
        assert stored.body["status"] == "done", stored.body
    finally:
        await p.engine.dispose()
    return time.perf_counter() - start


# json columns (migrations 0029, 0030) compared as jsonb: the old path's are jsonb's text.
TABLES = {
    "decisions": "SELECT decision_id, product_id, account_id, decision, rule_id, reason,"
                 " state_before, state_after, as_of, context::jsonb, inputs::jsonb,"
                 " warning_level, amount_fen, rule_version FROM credit.decisions",
    "product_credit": "SELECT product_id, account_id, family, product::jsonb, state,"
                      " state_changed_at, command_seq, pending_command_id, pending_decision_id,"
                      " customer_id, tier, star_level, balance_fen, amount_due_fen,"
                      " oldest_due_month, product_amount_due_fen, warning_level, cycle,"
                      " command_action, command_at, command_attempt, retry_at,"
                      " pending_work_order_id, ladder_month, suspension_warned_on,"
                      " suspension_deadline, suspension_warning_id, notice_status,"
                      " notice_sent_at, notice_delivered_at, notice_reason, notice_permanent,"
                      " notice_days, notice_failures FROM credit.product_credit",
    "state_history": "SELECT product_id, state_before, state_after, cause, decision_id, at"
                     " FROM credit.state_history",
    "work_orders": "SELECT * FROM credit.work_orders",
}


_EVENTS = EventDecoder(CreditDecisionMade, CreditStateChanged, ProvisioningCommand)


async def snapshot(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(_scratch.asyncpg_dsn(url))
    try:
        out: dict[str, Any] = {}
        for name, sql in TABLES.items():
            out[name] = sorted(tuple(str(v) for v in r.values()) for r in await conn.fetch(sql))
        per_product: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        # By message (a row may hold several, common.outbox; the view gives each its own)
        for r in await conn.fetch("SELECT topic, key, event_type, payload "
                                  "FROM credit.outbox_messages ORDER BY id, position"):
            # Read as the consumers read it (the contract's decoder): the old path wrote
            # PostgreSQL's jsonb text, the new one msgspec's style (issue 20), the same events.
            env = to_builtins(_EVENTS.decode(r["payload"].encode()))
            env.pop("event_id")
            env.pop("occurred_at")
            per_product[env["payload"]["product_id"]].append(
                (r["topic"], r["key"], r["event_type"], json.dumps(env, sort_keys=True)))
        out["outbox"] = per_product
        return out
    finally:
        await conn.close()


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    for name in TABLES:
        a, b = set(old[name]), set(new[name])
        if len(old[name]) != len(new[name]) or a != b:
            problems.append(f"{name}: {len(old[name])} rows old, {len(new[name])} new; "
                            f"only old e.g. {sorted(a - b)[:2]}; only new e.g. "
                            f"{sorted(b - a)[:2]}")
    diff = [p for p in set(old["outbox"]) | set(new["outbox"])
            if old["outbox"].get(p) != new["outbox"].get(p)]
    if diff:
        p = sorted(diff)[0]
        problems.append(f"outbox: {len(diff)} products differ, e.g. {p}: old "
                        f"{old['outbox'].get(p)} new {new['outbox'].get(p)}")
    return problems


def counts(snap: dict[str, Any]) -> str:
    rows = sum(len(v) for v in snap["outbox"].values())
    kinds = Counter(r[3] for r in snap["decisions"])
    # The notice-delivered gate's branches the day's data reached (reason and state_before).
    gate = {"exception": sum("; exception: " in r[5] for r in snap["decisions"]),
            "late notice": sum("reached the customer on" in r[5] for r in snap["decisions"]),
            "warned again": sum(r[3] == "suspension_warning" and r[6] == "suspension_warned"
                                for r in snap["decisions"])}
    return (f"{len(snap['decisions']):,} decisions {dict(sorted(kinds.items()))} "
            f"(notice gate: {gate}), "
            f"{len(snap['state_history']):,} state changes, "
            f"{len(snap['work_orders']):,} work orders, {rows:,} outbox events")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="products per chunk")
    parser.add_argument("--sent-counts", action="store_true",
                        help="notice policy without delivery receipts: a sent SMS counts")
    args = parser.parse_args()
    base = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"],
                    kafka_bootstrap=os.environ.get("CREDITCTL_KAFKA_BOOTSTRAP", "localhost:1"),
                    sweep_chunk=args.chunk, notice_requires_delivery=not args.sent_counts)
    failed = False
    async with cb.scratch_database(base) as old_db, cb.scratch_database(base) as new_db:
        for db in (old_db, new_db):
            await cb.seed(db.database_url, args.products)
            conn = await asyncpg.connect(_scratch.asyncpg_dsn(db.database_url))
            try:
                for sql in VARIETY:
                    await conn.execute(sql)
            finally:
                await conn.close()
        for n, as_of in enumerate(DAYS):
            s_old = await old_sweep(old_db.database_url, f"compare-{n}", as_of, args.chunk,
                                    base.notice_policy)
            s_new = await new_sweep(new_db, f"compare-{n}", as_of)
            old, new = await snapshot(old_db.database_url), await snapshot(new_db.database_url)
            problems = compare(old, new)
            print(f"{as_of.isoformat()}: old {s_old:.1f} s, new {s_new:.1f} s; after it:\n"
                  f"  old {counts(old)}\n  new {counts(new)}")
            print("  identical" if not problems else "  DIFFERENT:\n  " + "\n  ".join(problems))
            failed = failed or bool(problems)
    print(f"RESULT sweep comparison, {args.products:,} products, {len(DAYS)} sweeps: "
          f"{'DIFFERENT' if failed else 'identical rows'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
