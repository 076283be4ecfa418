"""What printing the sweep's events in msgspec's style costs in PostgreSQL (issue 20: one
serialisation style for every event), per decision, against the text it replaced.

The month-end sweep writes each decision's payload in SQL; its largest part is the stored
context (customer with contacts, product, amounts). Before: the jsonb's own text
(`to_jsonb(d.context)::text`, jsonb key order, `", "` separators). Now:
`event_text.jsonb_struct_text` (NoticeContext's field order, compact). Both are timed over the
same synthetic table of contexts, interleaved, in one session with JIT off as the sweep has
it; the figure is µs per context above a bare scan of the table (the same-run ceiling).

    uv run python bench/event_text_bench.py --rows 60000 --runs 5   # needs CREDITCTL_DATABASE_URL
"""

import argparse
import asyncio
import os
import statistics
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from common.contracts.credit_control import NoticeContext
from credit_control.credit.adapters.event_text import jsonb_struct_text

TABLE = "bench_event_text"
FILL = """CREATE TEMP TABLE bench_event_text AS SELECT g AS id, jsonb_build_object(
  'customer', jsonb_build_object('customer_id', 'G' || g, 'name', '东莞某某科技有限公司' || g,
     'tier', 'low', 'star_level', 3,
     'account_manager', jsonb_build_object('name', '王经理', 'phone', '13900139000'),
     'contacts', jsonb_build_array(jsonb_build_object('name', '李联系人', 'phone', '13800138000'))),
  'product', jsonb_build_object('product_id', 'P' || g, 'cpno', 'CP' || g, 'name', '华为CRM-MAS',
     'family', 'MAS', 'vendor', 'huawei', 'channel', NULL),
  'amount_due_fen', 12345, 'account_amount_due_fen', 12345, 'as_of_date', '2026-11-30',
  'deadline', NULL, 'suspension_exempt', false, 'bill_month', '2026-10') AS context
FROM generate_series(1, {rows}) g"""
VARIANTS = {
    "scan (ceiling)": "d.id::text",
    "before: jsonb text": "to_jsonb(d.context)::text",
    "now: msgspec style": jsonb_struct_text("d.context", NoticeContext),
}


async def _time(conn: AsyncConnection, expr: str) -> float:
    start = time.perf_counter()
    await conn.execute(text(f"SELECT sum(length({expr})) FROM {TABLE} d"))
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = create_async_engine(os.environ["CREDITCTL_DATABASE_URL"])
    async with engine.connect() as conn:
        await conn.execute(text("SET jit = off"))
        await conn.execute(text(FILL.format(rows=int(args.rows))))
        taken: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.runs):  # interleaved: each run times every variant once
            for name, expr in VARIANTS.items():
                taken[name].append(await _time(conn, expr))
    await engine.dispose()
    scan = statistics.median(taken["scan (ceiling)"])
    for name, times in taken.items():
        per = (statistics.median(times) - scan) / args.rows * 1e6
        print(f"RESULT event text {name}: median {statistics.median(times):.3f} s for "
              f"{args.rows:,} contexts, {per:.1f} µs per context above the scan "
              f"(same-run ceiling: scan {scan:.3f} s)")


if __name__ == "__main__":
    asyncio.run(main())
