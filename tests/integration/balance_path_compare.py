"""Behaviour unchanged: the same events into an earlier revision of credit-control and into
this tree must give the same rows and the same outbox events in the same order (each
topic's).

    uv run python tests/integration/balance_path_compare.py [--base REV] [--seed N]

The parent builds a deterministic, seeded stream of messages (balance events of all four
families and three tiers: bill runs, redundant bill runs, partial and full payments, charges
past the credit limit, reversals, stale sequences and redeliveries, in batches of varying
size), writes it to a file, extracts `--base` (`git archive`) and runs itself twice with
`--feed`: once with the base's credit_control and common first on the path, once with this
tree's. Each feed creates a database of its own, migrates it with its tree's migrations,
and feeds the messages straight into the tree's batch handler in the consumer's way (inbox
claim, then the handler, one transaction per batch). In the middle it answers every chain
command in the outbox (applied, or failed and retried), so the closed loop is compared too.
It dumps product_credit, decisions, state_history, account_positions, work_orders and the
outbox in a stable order, without generated ids and wall-clock times, and the parent
compares the dumps. Exit status 1 and the first differences when they differ.

Needs CREDITCTL_DATABASE_URL (the stack's; `bash deploy/local/stack.sh env`).
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The revision whose balance path's behaviour this tree must reproduce. It moves only with a
# change of behaviour made on purpose: 665cca5, the last before issue 16 changed the path (the
# redesign matched it up to 35bbdc5), then d5aab20, where a reminded product whose own debt is
# paid leaves the ladder while its account still owes (against 665cca5: one product of the
# stream back to normal, three more arrears_cleared decisions, nothing else), then 5d4ab80,
# where a sibling's bounced payment no longer reminds a product owing nothing of its own
# (against d5aab20: that product never leaves normal, two payment_reversed and two
# arrears_cleared decisions fewer, nothing else), then 615d07c, where a product off normal
# whose own amount changes with no decision publishes credit.product_amount_changed (against
# 5d4ab80: 123 such events more in the outbox and the products' new
# previous_product_amount_due_fen column; without them, the same rows and events), then
# 8b95fd4, where a product new to credit control starts normal as of its earliest event in
# the batch (against 615d07c: state_changed_at of 10 never-moved products earlier, nothing
# else).
# 4fd8b3e, where a reversed payment whose restore is still in flight (restore_requested)
# decides payment_reversed, the state kept (against 8b95fd4: 12 more decisions and
# state-history rows, those products' state_changed_at later, their outbox events; nothing
# else), and a ladder restart of a suspension-warned product publishes credit.state_changed
# (none in this stream).
# bc955f9, where a reversed payment's notice decided after the customer sending window closed
# (21:00 business time) counts its notice period from the next morning, when its SMS can
# first leave (ladder.first_sending_day; against 4fd8b3e: the stream's payment_reversed
# decision of 23:48 names 11-13, not 11-12, in its decision row and its outbox event;
# nothing else).
BASE = "bc955f9"
T0 = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)

FAMILIES = [("ADC", None), ("MAS", "huawei"), ("SMS_DIRECT", None), ("WORK_ORDER", None)]
TIERS = ["low", "mid", "high"]
CAUSES = ["bill_run", "payment", "payment", "charge", "adjustment", "reversal", "payment"]


# --- the messages -------------------------------------------------------------------------------

def _envelope(event_type: str, key: str, payload: dict[str, Any], rng: random.Random,
              at: datetime) -> str:
    return json.dumps({
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "type": event_type,
        "source": "compare", "occurred_at": at.isoformat(), "correlation_id": None,
        "schema_version": 1, "key": key, "payload": payload})


def _account(a: int, rng: random.Random) -> dict[str, Any]:
    family, vendor = FAMILIES[a % len(FAMILIES)]
    products = [{"product_id": f"cmp-{a:03d}-{k}", "cpno": f"CP{a:03d}{k}",
                 "name": f"产品{a}-{k}", "family": family if k == 0 else "ADC",
                 "vendor": vendor if k == 0 else None, "channel": None}
                for k in range(1 + (a % 3 == 0))]
    customer = {"customer_id": f"cmp-c{a // 2}", "name": f"集团{a // 2}",
                "tier": TIERS[a % len(TIERS)], "star_level": (a % 6) if a % 5 else None,
                "account_manager": {"name": "经理", "phone": "13900000000"},
                "contacts": [{"name": "联系人", "phone": f"138{a:08d}"}]}
    return {"id": f"cmp-a{a:03d}", "products": products, "customer": customer, "seq": 0,
            "due": 0, "months": [], "rng": rng}


def _balance(acct: dict[str, Any], cause: str, at: datetime, rng: random.Random,
             sequence: int | None = None) -> str:
    if sequence is None:
        acct["seq"] += 1
        if cause == "bill_run":
            month = date(2026, 8 + len(acct["months"]) % 4, 1)
            amount = rng.choice([3_000, 8_000, 20_000])
            acct["months"].append([f"{month:%Y-%m}", amount])
        elif cause == "payment" and acct["months"]:
            paid = rng.choice([acct["months"][0][1], sum(m[1] for m in acct["months"]), 1_000])
            while paid and acct["months"]:
                take = min(paid, acct["months"][0][1])
                acct["months"][0][1] -= take
                paid -= take
                if acct["months"][0][1] == 0:
                    acct["months"].pop(0)
        elif cause == "charge":
            if not acct["months"]:
                acct["months"].append(["2026-10", 0])
            acct["months"][-1][1] += rng.choice([500, 50_000, 500_000])
        elif cause == "reversal":
            acct["months"].insert(0, ["2026-07", 6_000])
        elif cause == "adjustment" and acct["months"]:
            acct["months"][-1][1] = max(0, acct["months"][-1][1] - 2_000)
            if acct["months"][-1][1] == 0:
                acct["months"].pop()
    due = sum(m[1] for m in acct["months"])
    products = acct["products"]
    # Billing's allocation (product_dues): the first product owes it all, a second nothing
    # (its suspension is not allowed); some accounts send none (the account's figures).
    dues = [{"bill_month": m, "amount_due_fen": v} for m, v in acct["months"] if v]
    own = [] if len(products) == 1 and acct["id"].endswith(("0", "2", "4")) else [
        {"product_id": p["product_id"], "amount_due_fen": due if k == 0 else 0,
         "dues": dues if k == 0 else []} for k, p in enumerate(products)]
    payload = {
        "account_id": acct["id"], "sequence": sequence or acct["seq"], "cause": cause,
        "as_of": at.isoformat(), "balance_fen": -due, "amount_due_fen": due,
        "dues": dues,
        "closed_bill_month": acct["months"][-1][0] if cause == "bill_run" and acct["months"]
        else None,
        "customer": acct["customer"], "products": products, "deposit_fen": 1_000,
        "product_dues": own}
    return _envelope("billing.balance_changed", acct["id"], payload, rng, at)


def messages(seed: int, accounts: int, rounds: int) -> list[list[str]]:
    """Batches of messages, as one partition hands them out: offset order, varying sizes."""
    rng = random.Random(seed)
    accts = [_account(a, rng) for a in range(accounts)]
    stream: list[str] = []
    at = T0
    for r in range(rounds):
        for acct in rng.sample(accts, len(accts)):
            at += timedelta(minutes=rng.randint(1, 90))
            cause = "bill_run" if r == 0 else rng.choice(CAUSES)
            stream.append(_balance(acct, cause, at, rng))
            if rng.random() < 0.1:  # a stale sequence: an older event arriving late
                stream.append(_balance(acct, "payment", at, rng,
                                       sequence=max(1, acct["seq"] - 1)))
            if rng.random() < 0.05:  # a redundant bill run (same month, a new sequence)
                stream.append(_balance(acct, "bill_run", at, rng, sequence=acct["seq"] + 1))
                acct["seq"] += 1
    batches: list[list[str]] = []
    i = 0
    while i < len(stream):
        n = rng.choice([1, 3, 7, 20, 60])
        batches.append(stream[i:i + n])
        if rng.random() < 0.1:  # a redelivery: the same messages again
            batches.append(stream[i:i + n])
        i += n
    return batches


# --- one tree's run (`--feed`) ----------------------------------------------------------------

def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _database(url: str) -> tuple[str, str]:
    import asyncpg
    name = f"cmp_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"{url.rpartition('/')[0]}/{name}"


async def _drop(url: str, name: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(_dsn(url))
    try:
        for _ in range(10):
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(1)
    finally:
        await conn.close()


def _context(url: str) -> Any:
    """The tree's CreditContext, wherever the tree keeps it, on a fixed clock."""
    import credit_control.service_layer as sl
    from common.app import plumbing
    from common.clock import FixedClock
    from credit_control.adapters import tables as t
    from credit_control.config import Settings
    try:
        from credit_control.service_layer.context import CreditContext
    except ImportError:
        CreditContext = sl.handlers.CreditContext
    settings = Settings(database_url=url, kafka_bootstrap="127.0.0.1:1")
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    return p, CreditContext(p.engine, p.outbox, p.keys, FixedClock(T0), settings=settings)


async def _feed_batch(p: Any, handler: Any, values: list[str]) -> None:
    from common.envelope import parse
    try:
        from credit_control.credit.entrypoints import consumer
    except ImportError:  # an earlier revision's layout
        from credit_control.entrypoints import consumer
    parsed = [parse(v.encode(), consumer.CONTRACTS) for v in values]
    async with p.engine.begin() as conn:
        fresh = await p.inbox.claim_many(conn, "compare", [(e.event_id, "t") for e, _ in parsed])
        if fresh is None or isinstance(fresh, list):
            # The positions of the new events, None when all are (common.inbox since the
            # fourth session of 2026-12-04).
            todo = parsed if fresh is None else [parsed[n] for n in fresh]
        else:  # an earlier revision's answer: the set of the new events' ids
            todo = []
            for e, x in parsed:
                if e.event_id in fresh:
                    fresh.discard(e.event_id)
                    todo.append((e, x))
        if todo:
            await handler(conn, todo)


async def _rules(p: Any, rows: list[dict[str, Any]]) -> None:
    """The rule table with the threshold suspensions on: balance events then suspend, and
    payments restore (the default table leaves suspensions to the sweeps)."""
    from sqlalchemy import text
    async with p.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO credit.rule_tables (version, rows, changed_by, reason, changed_at) "
            "VALUES (2, CAST(:rows AS jsonb), 'compare', 'thresholds on', :at)"),
            {"rows": json.dumps(rows), "at": T0})


def rule_rows() -> list[dict[str, Any]]:
    try:
        from credit_control.credit.domain.rule_table import DEFAULT_RULES, Trigger
    except ImportError:  # an earlier revision's layout
        from credit_control.domain.rule_table import DEFAULT_RULES, Trigger
    return [{**r.model_dump(mode="json"), "enabled": r.enabled or r.trigger is Trigger.THRESHOLD}
            for r in DEFAULT_RULES.rows]


async def _results(p: Any, rng: random.Random) -> list[str]:
    """A final result for every chain command in the outbox: applied, or failed."""
    from sqlalchemy import text
    async with p.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payload FROM credit.outbox_messages "
            "WHERE event_type = 'provisioning.command' ORDER BY id, position"))).scalars().all()
    out = []
    for raw in rows:
        cmd = (json.loads(raw) if isinstance(raw, str) else raw)["payload"]
        applied = rng.random() < 0.7
        out.append(_envelope("provisioning.result", cmd["product_id"], {
            "command_id": cmd["command_id"], "product_id": cmd["product_id"],
            "action": cmd["action"], "attempt": cmd["attempt"],
            "outcome": "applied" if applied else "failed", "final": True,
            "stage": "gateway", "detail": "compare", "at": (T0 + timedelta(days=30)).isoformat(),
            "sequence": cmd["sequence"]},
            rng, T0))
    return out


DUMPS = {
    "product_credit": "SELECT * FROM credit.product_credit ORDER BY product_id",
    "decisions": "SELECT * FROM credit.decisions ORDER BY product_id, decision_id",
    "state_history": "SELECT * FROM credit.state_history ORDER BY id",
    "account_positions": "SELECT * FROM credit.account_positions ORDER BY account_id",
    "work_orders": "SELECT * FROM credit.work_orders ORDER BY work_order_id",
    # By message (a row may hold 16 of a topic: common.outbox.packed), each topic's in the
    # order written: what Kafka keeps (a partition's order, never two topics').
    "outbox": "SELECT topic, key, event_type, payload FROM credit.outbox_messages "
              "ORDER BY topic, id, position",
}
# Generated ids and wall-clock moments: not behaviour.
WALL = {"id", "created_at", "updated_at", "command_sent_at", "event_id", "occurred_at",
        "applied_at", "published_at", "correlation_id"}


# Optional event fields added since 665cca5 (the first BASE): absent there, null here when
# they do not apply (a balance event is never a catch-up sweep), so not a change of behaviour.
# reminder_level: a notice context's warning text level when the ladder skipped one (null:
# the warning's own level, and every decision not a warning).
ADDED_SINCE_BASE = {"caught_up_at", "region", "reminder_level"}  # region: the customer's
# Added since 665cca5 for the rating model (issue 18), set whatever the behaviour: the
# customer's open date (wall clock of its creation), value class, and a bill run's billed
# amount.
ADDED_FOR_RATING = {"opened_on", "value_class", "billed_fen"}
# Columns added since 665cca5 that only say how a row is kept: a position's previous sequence
# and debt, which its move returns to the batch (migration 0032).
STORAGE_SINCE_BASE = {"previous_sequence", "previous_amount_due_fen"}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in sorted(value.items()) if k not in WALL
                and k not in ADDED_FOR_RATING and k not in STORAGE_SINCE_BASE
                and not (k in ADDED_SINCE_BASE and v is None)}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _clean(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | uuid.UUID):
        return str(value)
    return value


async def _dump(p: Any) -> dict[str, Any]:
    from sqlalchemy import text
    out = {}
    async with p.engine.connect() as conn:
        for name, query in DUMPS.items():
            rows = (await conn.execute(text(query))).mappings().all()
            out[name] = [_clean(dict(r)) for r in rows]
    return out


async def feed(stack_url: str, batches: dict[str, Any]) -> dict[str, Any]:
    import credit_control
    from common.migrations import upgrade
    try:
        from credit_control.credit.entrypoints import consumer
    except ImportError:  # an earlier revision's layout
        from credit_control.entrypoints import consumer
    name, url = await _database(stack_url)
    try:
        migrations = Path(credit_control.__file__).parent / "adapters" / "migrations"
        await asyncio.to_thread(upgrade, migrations, url, "credit")
        p, ctx = _context(url)
        handler = consumer.batch_dispatcher(ctx)
        try:
            await _rules(p, batches["rules"])
            half = len(batches["first"])
            for values in batches["first"]:
                await _feed_batch(p, handler, values)
            rng = random.Random(half)
            for values in [await _results(p, rng)]:
                for i in range(0, len(values), 5):
                    await _feed_batch(p, handler, values[i:i + 5])
            for values in batches["second"]:
                await _feed_batch(p, handler, values)
            return await _dump(p)
        finally:
            await p.engine.dispose()
    finally:
        await _drop(stack_url, name)


# --- the comparison ---------------------------------------------------------------------------

def _run_tree(src: Path | None, batches: Path, out: Path) -> None:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(src / "services/credit-control/src"), str(src / "libs/common/src")])
    subprocess.run([sys.executable, __file__, "--feed", str(batches), str(out)], env=env,
                   check=True, cwd=ROOT)


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 10) -> list[str]:
    found = []
    for table in DUMPS:
        a, b = old[table], new[table]
        if len(a) != len(b):
            found.append(f"{table}: {len(a)} rows before, {len(b)} after")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            # Columns this tree added (issue 15's notice outcomes) are new behaviour, not the
            # balance path's; a column the base had and this tree lost is a difference.
            keys = sorted(k for k in x if x.get(k) != y.get(k))
            if keys:
                found.append(f"{table}[{i}] differs in {keys}: "
                             f"{ {k: x.get(k) for k in keys} } → { {k: y.get(k) for k in keys} }")
            if len(found) >= limit:
                return found
    return found


def has_revision(rev: str) -> bool:
    """Whether this checkout holds `rev` (a shallow clone may not)."""
    found = subprocess.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=ROOT,
                           capture_output=True)
    return found.returncode == 0


def compare(base: str, seed: int, accounts: int, rounds: int) -> tuple[dict[str, int], list[str]]:
    """Rows per table (the new tree's) and the differences (none: behaviour unchanged)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        first = messages(seed, accounts, rounds)
        second = messages(seed + 1, accounts, max(2, rounds // 2))
        batches = work / "batches.json"
        batches.write_text(json.dumps({"first": first, "second": second, "rules": rule_rows()}))
        old_tree = work / "old"
        old_tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", base, "services/credit-control/src", "libs/common/src"],
            cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        _run_tree(old_tree, batches, work / "old.json")
        _run_tree(None, batches, work / "new.json")
        old = json.loads((work / "old.json").read_text())
        new = json.loads((work / "new.json").read_text())
    counts = {t: len(rows) for t, rows in new.items()}
    counts.update(Counter(f"decision {d['decision']}" for d in new["decisions"]))
    return counts, differences(old, new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE, help="the revision to compare with")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--feed", nargs=2, metavar=("BATCHES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ["CREDITCTL_DATABASE_URL"]
    if args.feed:
        dump = asyncio.run(feed(url, json.loads(Path(args.feed[0]).read_text())))
        Path(args.feed[1]).write_text(json.dumps(dump, ensure_ascii=False, indent=1))
        return
    counts, diffs = compare(args.base, args.seed, args.accounts, args.rounds)
    print(f"rows compared: {counts}")
    for d in diffs:
        print(d)
    print("same rows and outbox events" if not diffs else "DIFFERENT")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
