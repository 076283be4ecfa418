"""The stage worker: claims the attempts whose next step is due and moves them along the chain,
publishing each stage's result through the outbox in the same transaction."""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from common.ids import new_hex
from common.poll_loop import PollLoop

from ..adapters import chain_reads, chain_writes
from ..adapters.vendors import adapter_for
from ..domain.chain import Attempt, EmosOrder, ProductChain, StageReport, advance
from ..domain.faults import Faults
from ..metrics import count_results
from .context import GatewayContext
from .results import result_rows


def new_order_id() -> str:
    return f"emos-{new_hex(16)}"


@dataclass(frozen=True)
class Round:
    """What one round of the stage worker did: attempts moved, products left for the next
    round (changed under its snapshot), when the next step not yet due is."""

    claimed: int
    skipped: int = 0
    next_due: datetime | None = None


async def advance_due(ctx: GatewayContext, as_of: datetime | None = None) -> Round:
    """One round: every due step of the claimed attempts, as of `as_of` (default: now), in
    one transaction of two statements (claim and read; every write)."""
    now = as_of or ctx.clock.now()
    async with ctx.engine.begin() as conn:
        c = await chain_reads.claim_due(conn, now, ctx.worker_batch, ctx.default_faults)
        if c.attempts:
            created, reports = run_due_steps(c.attempts, c.products, c.orders, c.faults, now)
            w = chain_writes.Writes()
            chain_writes.save_products(w, c.products.values())
            chain_writes.save_attempts(w, c.attempts)
            chain_writes.insert_orders(w, created)
            chain_writes.save_orders(w, c.orders.values())
            chain_writes.note_finished(w, [a for a in c.attempts if a.outcome is not None])
            results = [(a, r, None) for a, r in reports]
            chain_writes.add_results(w, ctx.outbox, result_rows(ctx, results))
            count_results(conn, results)
            await w.run(conn)
    return Round(len(c.attempts), c.skipped, c.next_due)


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
    while (r := await advance_due(ctx, as_of)).claimed > 0 or r.skipped > 0:
        total += r.claimed
    return total


async def run(ctx: GatewayContext, stop: asyncio.Event, idle_poll_s: float) -> None:
    """Rounds while there is due work; otherwise asleep until the next step falls due, the
    consumer of this process wakes it (it scheduled a step, after its commit), or
    `idle_poll_s` passed (work another process scheduled cannot wake it)."""
    idle = idle_poll_s

    async def step() -> bool:
        nonlocal idle
        r = await advance_due(ctx)
        if r.claimed >= ctx.worker_batch or r.skipped:
            return True  # more is due at once
        idle = idle_poll_s
        if r.next_due is not None:
            idle = min(idle, max((r.next_due - ctx.clock.now()).total_seconds(), 0.0))
        return False

    await PollLoop("stage worker", step, idle_s=idle_poll_s, wake=ctx.worker_wake,
                   idle_for=lambda: idle).run(stop)
