"""The stage worker: claims the attempts whose next step is due and moves them along the chain,
publishing each stage's result through the outbox in the same transaction."""

import asyncio
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from common.poll_loop import PollLoop

from ..adapters import chain_writes
from ..adapters import repository as repo
from ..adapters.vendors import adapter_for
from ..domain.chain import Attempt, EmosOrder, ProductChain, StageReport, advance
from ..domain.faults import Faults
from ..metrics import count_results
from .context import GatewayContext
from .results import result_event

log = logging.getLogger(__name__)


def new_order_id() -> str:
    return f"emos-{uuid.uuid4().hex[:16]}"


async def advance_due(ctx: GatewayContext, as_of: datetime | None = None) -> int:
    """One batch: every due step of the claimed attempts, as of `as_of` (default: now).
    Returns how many attempts were claimed."""
    now = as_of or ctx.clock.now()
    async with ctx.engine.begin() as conn:
        chains, attempts = await repo.claim_due(conn, now, ctx.worker_batch)
        if not attempts:
            return 0
        faults = await repo.load_faults(conn, ctx.default_faults)
        known = await repo.orders_of(conn, [a.emos_order_id for a in attempts if a.emos_order_id])
        created, reports = run_due_steps(attempts, chains, known, faults, now)
        w = chain_writes.Writes()
        chain_writes.save_products(w, chains.values())
        chain_writes.save_attempts(w, attempts)
        chain_writes.insert_orders(w, created)
        chain_writes.save_orders(w, known.values())
        chain_writes.note_finished(w, [a for a in attempts if a.outcome is not None])
        results = [result_event(ctx, a, r) for a, r in reports]
        chain_writes.add_results(w, ctx.outbox, results)
        count_results(conn, results)
        await w.run(conn)
    return len(attempts)


def run_due_steps(
    attempts: Iterable[Attempt], chains: dict[str, ProductChain], orders: dict[str, EmosOrder],
    faults: Faults, now: datetime,
) -> tuple[list[EmosOrder], list[tuple[Attempt, StageReport]]]:
    """Every step of these attempts that is due by `now` (their products locked by the
    caller); returns the EMOS orders opened and the stage reports, in order."""
    created: list[EmosOrder] = []
    reports: list[tuple[Attempt, StageReport]] = []
    for a in attempts:
        moved = advance(a, chains[a.product_id], orders.get(a.emos_order_id or ""), faults,
                        adapter_for(a.family, a.vendor), now, new_order_id())
        if moved.new_order is not None:
            created.append(moved.new_order)
        reports += [(a, r) for r in moved.reports]
    return created, reports


async def advance_all_due(ctx: GatewayContext, as_of: datetime) -> int:
    """Until nothing is due as of `as_of`: what `POST /v1/chain/advance` runs (time is a
    parameter, so a test or demo can let a cross-month order close next month)."""
    total = 0
    while (n := await advance_due(ctx, as_of)) > 0:
        total += n
    return total


async def run(ctx: GatewayContext, stop: asyncio.Event, idle_poll_s: float) -> None:
    async def step() -> bool:
        return await advance_due(ctx) >= ctx.worker_batch  # a full batch: more is due

    await PollLoop("stage worker", step, idle_s=idle_poll_s, wake=ctx.worker_wake).run(stop)
