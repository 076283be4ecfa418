"""The month-end sweep's server work in instructions: one chunk's statement, counted by
valgrind's callgrind in the PostgreSQL backend that runs it (`make bench-instructions
WHAT=sweep`; scripts/instructions.sh starts the server under callgrind for it).

Why: the sweep is CPU in PostgreSQL (docs/benchmarks.md), and on this VM the same chunk's
time varies by ±15 % or more from one minute to the next, so a change worth a few per cent
cannot be told apart by timing. The instructions a backend executes for the same statement
on the same rows vary by well under 1 %.

How: `--prepare` (server running normally) makes a template database once: migrated, the
credit bench's products seeded (bench/credit_bench.py `seed`). Then, with the server under
callgrind (every process counted, each writing `<dumps>/cg.<pid>` when it exits), each run
copies the template afresh, opens a connection, runs the sweep's first chunk for 30 November
(`sweep_sql.run_chunk` with the sweep's settings), rolls it back and disconnects;
the backend's dump is its total. A backend that only connects and does the same transaction
around nothing is counted too and subtracted, so the figure is the statement's: planning and
execution.

Usage: python bench/sweep_instructions.py --prepare | --dumps DIR [--products N]
       [--chunk C] [--runs R] [--keep]
Needs CREDITCTL_DATABASE_URL (scripts/instructions.sh sets it).
"""

import argparse
import asyncio
import contextlib
import inspect
import os
import re
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _scratch
import asyncpg
import credit_bench as cb
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common.clock import BUSINESS_TZ
from common.db import SERVER_SETTINGS
from common.migrations import upgrade
from credit_control.config import Settings
from credit_control.credit.adapters import sweep_sql
from credit_control.credit.domain import rules
from credit_control.credit.domain.rule_table import DEFAULT_RULES

_TOTALS = re.compile(rb"^totals: (\d+)$", re.MULTILINE)


def _template(products: int) -> str:
    """Named for the migrations' head and the seed's code too: a template of an older schema
    (a fillfactor, an index) or of older data (the snapshots' text) would count their work."""
    head = ScriptDirectory(str(cb.MIGRATIONS)).get_current_head()
    seed = "".join(inspect.getsource(f) for f in (cb.seed, cb._account_rows, cb._product_rows))
    return f"sweep_cg_{products}_r{head}_s{zlib.crc32(seed.encode()):08x}"


async def prepare(settings: Settings, products: int) -> None:
    """The template database, unless it exists: migrated and seeded, natively. Templates of
    other schemas are dropped."""
    name = _template(products)
    admin = await asyncpg.connect(_scratch.asyncpg_dsn(settings.database_url))
    try:
        there = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        for (old,) in await admin.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'sweep\\_cg\\_%' "
                "AND datname <> $1", name):
            await admin.execute(f'DROP DATABASE "{old}"')
    finally:
        await admin.close()
    if there:
        print(f"sweep instructions: template {name} is there")
        return
    url = await _scratch.create_database(settings.database_url, name)
    await asyncio.to_thread(upgrade, cb.MIGRATIONS, url, settings.db_schema)
    seconds = await cb.seed(url, products)
    print(f"sweep instructions: template {name} seeded with {products:,} products in "
          f"{seconds:.1f} s")


async def _backend(url: str, values: dict[str, Any] | None, dumps: Path,
                   keep: bool) -> tuple[int, int]:
    """A fresh backend runs the sweep's chunk with `values` (None: nothing) in a transaction
    rolled back, as `sweeps._run` does; its instructions from its dump once it has exited,
    and the chunk's decisions."""
    engine = create_async_engine(url, poolclass=NullPool,
                                 connect_args={"server_settings": SERVER_SETTINGS})
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            pid = await raw.fetchval("SELECT pg_backend_pid()")
            async with conn.begin() as tx:
                await sweep_sql.tune_chunk(conn)
                decided = (await sweep_sql.run_chunk(conn, values))[2] if values else {}
                await tx.rollback()
    finally:
        await engine.dispose()
    return _total(dumps / f"cg.{pid}", keep), sum(decided.values())


def _total(dump: Path, keep: bool) -> int:
    """The dump's total, once callgrind has written it (the backend exits after the client)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _TOTALS.search(dump.read_bytes()) if dump.exists() else None
        if found:
            if keep:
                print(f"  callgrind_annotate {dump}")
            else:
                dump.unlink()
            return int(found.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump {dump}: is the server running under callgrind "
                       "(scripts/instructions.sh WHAT=sweep)?")


async def measure(settings: Settings, args: argparse.Namespace) -> None:
    dumps = Path(args.dumps)
    today = cb.SWEEP_AS_OF.astimezone(BUSINESS_TZ).date()
    steps = list(enumerate(rules.sweep_plan(DEFAULT_RULES, today, settings.notice_policy)))
    values = sweep_sql.params(steps, cb.SWEEP_AS_OF, datetime.now(UTC), DEFAULT_RULES.version,
                              "", args.chunk, "credit-control", None, cb.SWEEP_AS_OF, today)
    counts, decided = [], 0
    for _ in range(args.runs):
        # Each run on a fresh copy: a rolled-back chunk leaves dead index entries behind that
        # the next run's inserts would step over (+4 % in a second run on the same copy).
        async with _copy(settings, args.products) as url:
            idle, _ = await _backend(url, None, dumps, args.keep)
            total, decided = await _backend(url, values, dumps, args.keep)
        counts.append(total - idle)
        print(f"  chunk of {args.chunk:,} products: {decided:,} decisions, "
              f"{(total - idle) / 1e6:,.1f} million instructions in the backend", flush=True)
    per = sorted(counts)[len(counts) // 2] / max(decided, 1)
    print(f"RESULT sweep chunk, server instructions per decision: {per:,.0f} (chunk of "
          f"{args.chunk:,} of {args.products:,} products, planning included; runs "
          f"{', '.join(f'{c / 1e6:,.1f}M' for c in counts)}; counted by callgrind in the "
          "backend, a connection's own cost subtracted)")


@contextlib.asynccontextmanager
async def _copy(settings: Settings, products: int) -> AsyncIterator[str]:
    """A fresh copy of the template database, dropped afterwards; yields its URL."""
    name = f"sweep_cg_run_{os.getpid()}"
    admin = await asyncpg.connect(_scratch.asyncpg_dsn(settings.database_url))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {_template(products)}")
    finally:
        await admin.close()
    try:
        yield f"{settings.database_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await _scratch.drop_database(settings.database_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", action="store_true",
                        help="make the template database (server running normally)")
    parser.add_argument("--dumps", help="the server's callgrind dump folder (PG_CALLGRIND_DIR)")
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true",
                        help="keep the measured backends' dumps for callgrind_annotate")
    args, _ = parser.parse_known_args()  # `make bench` passes every script the same ARGS
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"])
    if args.prepare:
        asyncio.run(prepare(settings, args.products))
    elif args.dumps:
        asyncio.run(measure(settings, args))
    else:  # `make bench` runs every script: this one needs a server under callgrind
        print("sweep instructions: run by `make bench-instructions WHAT=sweep`; skipped")


if __name__ == "__main__":
    main()
