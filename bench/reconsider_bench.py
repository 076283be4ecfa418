"""A rating run's follow-up at scale: the products of customers whose tier changed,
reconsidered in the change's transaction (credit/service_layer/reconsider.py,
docs/rating.md).

Seeds --customers customers with --products products each (one account a product, each
billed: a bill notice, so every product is off normal), through the balance path itself, in
a database of its own; then gives every customer a credit limit over its debt and
reconsiders every customer's products in one transaction, as a rating run that changed every
customer's profile would (each product cleared: a decision, a state change, an event), and
reports the time and the products per second, --runs times on fresh databases (medians).
What it is next to: the same products' balance events through the balance path (the
seeding), per product.

    BENCH=reconsider_bench bash scripts/bench.sh [--customers N] [--products P] [--runs R]

Needs CREDITCTL_DATABASE_URL (scripts/bench.sh sets it).
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from common.app import plumbing
from common.clock import FixedClock
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import wrap
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.service_layer.balance_events import apply_balance_events
from credit_control.credit.service_layer.balance_store import SqlBalanceStore
from credit_control.credit.service_layer.reconsider import reconsider_customers
from credit_control.service_layer.context import CreditContext

sys.path.insert(0, os.path.dirname(__file__))
from credit_bench import scratch_database

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
BATCH = 1_000  # balance events a seeding transaction


def _bill_runs(customers: int, products: int) -> list[tuple[object, BalanceChanged]]:
    out = []
    for c in range(customers):
        customer = CustomerSnapshot(
            customer_id=f"RC{c:06d}", name=f"集团{c}", tier=Tier.LOW,
            account_manager=Person(name="经理", phone="13900000000"),
            contacts=(Person(name="联系人", phone="13800000000"),))
        for p in range(products):
            account = f"RA{c:06d}-{p}"
            due = 5_000 + c % 97 * 10
            e = BalanceChanged(
                account_id=account, sequence=1, cause=BalanceCause.BILL_RUN, as_of=T0,
                balance_fen=-due, amount_due_fen=due,
                dues=(BillMonthDue(bill_month="2026-10", amount_due_fen=due),),
                closed_bill_month="2026-10", customer=customer,
                products=(ProductSnapshot(product_id=f"RP{c:06d}-{p}", cpno=f"CP{c}-{p}",
                                          name="集团V网", family=ProductFamily.ADC),))
            out.append((wrap(e, key=account, source="bench", occurred_at=T0), e))
    return out


async def one_run(settings: Settings, customers: int, products: int) -> tuple[float, float]:
    """(seconds the reconsider took, seconds per product the seeding's balance path took)."""
    async with scratch_database(settings) as scratch:
        p = plumbing(scratch, t.outbox, t.inbox, t.idempotency_keys)
        ctx = CreditContext(p.engine, p.outbox, p.keys, FixedClock(T0 + timedelta(days=1)))
        try:
            events = _bill_runs(customers, products)
            started = time.perf_counter()
            for i in range(0, len(events), BATCH):
                async with p.engine.begin() as conn:
                    await apply_balance_events(SqlBalanceStore(ctx, conn),
                                               events[i:i + BATCH])  # type: ignore[arg-type]
            seeded = (time.perf_counter() - started) / len(events)
            ids = [f"RC{c:06d}" for c in range(customers)]
            at = T0 + timedelta(days=1)
            started = time.perf_counter()
            async with p.engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO credit.credit_profiles (customer_id, star_level, "
                    "credit_limit_fen, updated_by, updated_at) "
                    "SELECT c, 3, 10000, 'bench', :at FROM unnest(CAST(:ids AS text[])) c"),
                    {"ids": ids, "at": at})
                moved = await reconsider_customers(ctx, conn, ids, at, trigger="rating run",
                                                   correlation="bench")
            took = time.perf_counter() - started
            assert moved == customers * products, moved
            async with p.engine.connect() as conn:
                n = await conn.scalar(text("SELECT count(*) FROM credit.product_credit"))
            assert n == customers * products, n
            return took, seeded
        finally:
            await p.engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--products", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    settings = Settings(database_url=os.environ["CREDITCTL_DATABASE_URL"])
    results = [await one_run(settings, args.customers, args.products)
               for _ in range(args.runs)]
    took = statistics.median(r[0] for r in results)
    seeded = statistics.median(r[1] for r in results)
    n = args.customers * args.products
    print(f"RESULT reconsider after a rating run: {args.customers:,} customers, {n:,} products "
          f"in one transaction: {took:.2f} s = {n / took:,.0f} products/s (runs "
          f"{', '.join(f'{r[0]:.2f}' for r in results)}); the same products' bill runs "
          f"through the balance path, batches of {BATCH:,}: {seeded * 1e6:.0f} µs a product")


if __name__ == "__main__":
    asyncio.run(main())
