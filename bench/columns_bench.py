"""Whole columns as binary arrays (asyncpg's array encoding) against the same columns as JSON
documents (`common.db.json_column`, what the hot statements send), per type and for a row of
the balance path's shape: this process's CPU and the wall time (PostgreSQL's share included)
per element, the best of 5 rounds of 40 statements of 833 rows (a consumer batch's share of
one partition).

Usage: python bench/columns_bench.py [--rows N]
Needs CREDITCTL_DATABASE_URL (scripts/bench.sh sets it).
"""

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import uuid4

import asyncpg

from common.db import DriverStatement, json_column

ROUNDS, STATEMENTS = 5, 40


def _columns(n: int) -> dict[str, tuple[str, list[Any]]]:
    now = datetime.now(UTC)
    return {
        "id text": ("text", [f"acct-{i:014d}" for i in range(n)]),
        "bigint": ("bigint", list(range(n))),
        "integer, all NULL": ("integer", [None] * n),
        "timestamptz": ("timestamptz", [now] * n),
        "date": ("date", [date(2026, 10, 1)] * n),
        "uuid": ("uuid", [uuid4() for _ in range(n)]),
    }


async def _best(conn: asyncpg.Connection, sql: str, args: Callable[[], list[Any]],
                n: int) -> tuple[float, float]:
    """(CPU ns, wall ns) per row, best round."""
    await conn.fetchval(sql, *args())
    cpu = wall = float("inf")
    for _ in range(ROUNDS):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(STATEMENTS):
            await conn.fetchval(sql, *args())
        cpu = min(cpu, (time.process_time() - c0) / STATEMENTS / n * 1e9)
        wall = min(wall, (time.perf_counter() - w0) / STATEMENTS / n * 1e9)
    return cpu, wall


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=833)
    args, _ = parser.parse_known_args()  # make bench passes every script the same ARGS
    n = args.rows
    url = os.environ["CREDITCTL_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        print(f"{'column':22s} {'binary array':>24s} {'JSON document':>24s}")
        print(f"{'':22s} {'CPU ns':>11s} {'wall ns':>12s} {'CPU ns':>11s} {'wall ns':>12s}")
        for name, (sql_type, values) in _columns(n).items():
            binary = await _best(conn, f"SELECT cardinality($1::{sql_type}[])",
                                 lambda v=values: [v], n)
            statement = DriverStatement(f"SELECT cardinality({json_column('c', sql_type)})")
            as_json = await _best(conn, statement.sql,
                                  lambda s=statement, v=values: s._args({"c": v}), n)
            print(f"{name:22s} {binary[0]:11.0f} {binary[1]:12.0f} "
                  f"{as_json[0]:11.0f} {as_json[1]:12.0f}")
        cols = _columns(n)
        types = [t for t, _ in cols.values()]
        binary_sql = ("SELECT count(*) FROM unnest("
                      + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types)) + ")")
        together = DriverStatement("SELECT count(*) FROM unnest(" + ", ".join(
            json_column(f"c{i}", t) for i, t in enumerate(types)) + ")")
        binary = await _best(conn, binary_sql, lambda: [v for _, v in cols.values()], n)
        as_json = await _best(conn, together.sql, lambda: together._args(
            {f"c{i}": v for i, (_, v) in enumerate(cols.values())}), n)
        print(f"RESULT a row of all six columns, per row: binary arrays CPU {binary[0]:.0f} ns "
              f"wall {binary[1]:.0f} ns; JSON documents CPU {as_json[0]:.0f} ns wall "
              f"{as_json[1]:.0f} ns")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
