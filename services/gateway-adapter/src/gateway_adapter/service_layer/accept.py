"""Accepting provisioning commands into the chain, set-wise: a batch (one partition, offset
order) costs two statements whatever its size.

1. one statement inserts the products seen for the first time, locks the batch's products in
   id order (products before attempts, as the stage worker does: the two never deadlock) and
   reads what the chain holds for the batch: the attempts of its commands and those still in
   flight for its products, the commands' records, the in-flight EMOS orders, the fault
   knobs (`adapters.chain_reads`);
2. decide command by command in memory (`domain.intake`), exactly as one by one;
3. run every step already due of the new attempts (with the chain's delays at 0: BOSS, EMOS
   order, gateway, order closed), as the stage worker would right after the commit;
4. one statement writes products, commands, new attempts (as they now stand), superseded
   attempts, EMOS orders and the results (`adapters.chain_writes`). The stage worker moves
   on what is due later; it is woken once this transaction has committed.
"""

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningCommand
from common.envelope import RawEnvelope

from ..adapters import chain_reads, chain_writes
from ..domain.chain import Attempt, StageReport
from ..domain.intake import Intake
from ..metrics import count_results
from . import worker
from .context import GatewayContext
from .results import result_rows, wake_worker


async def accept_commands(
    ctx: GatewayContext, conn: AsyncConnection,
    items: list[tuple[RawEnvelope, ProvisioningCommand]],
) -> None:
    """In the caller's transaction (the consumer's, with the inbox claim): every command
    attempt recorded with its first step scheduled, and run as far as it is due; the same
    attempt twice acts once."""
    if not items:
        return
    intake = await _load(ctx, conn, [cmd for _, cmd in items])
    reports: list[tuple[Attempt, StageReport, str | None]] = []
    correlation: dict[tuple[str, int], str] = {}
    for envelope, cmd in items:
        # Each command's results (those of what it superseded too) carry its own
        # correlation id, as when handled one by one.
        cid = correlation.setdefault((cmd.command_id, cmd.attempt),
                                     envelope.correlation_id or str(envelope.event_id))
        reports += [(a, r, cid) for a, r in intake.accept(cmd)]
    # What is due already (everything, with the chain's delays at 0) runs now, after the
    # whole batch is accepted: what the stage worker would do right after this commit, with
    # the products still locked and without writing and reading the attempts again.
    due = intake.due_now()
    orders, moved = worker.run_due_steps(due, intake.products, {}, intake.faults, intake.now)
    intake.advanced(due)
    reports += [(a, r, correlation.get((a.command_id, a.attempt))) for a, r in moved]
    w = _writes(intake)
    chain_writes.insert_orders(w, orders)
    chain_writes.add_results(w, ctx.outbox, result_rows(ctx, reports))
    count_results(conn, reports)
    await w.run(conn)
    if any(a.outcome is None for a in intake.new_attempts):
        wake_worker(ctx, conn)  # a later step is due later: the worker's


async def _load(
    ctx: GatewayContext, conn: AsyncConnection, cmds: list[ProvisioningCommand]
) -> Intake:
    now = ctx.clock.now()
    held = await chain_reads.lock_and_load(conn, cmds, now, ctx.default_faults)
    in_flight: dict[str, list[Attempt]] = {}
    for a in held.attempts:
        if a.outcome is None and a.product_id in held.products:
            in_flight.setdefault(a.product_id, []).append(a)
    return Intake(products=held.products, commands=held.commands, in_flight=in_flight,
                  orders=held.orders, seen={(a.command_id, a.attempt) for a in held.attempts},
                  faults=held.faults, now=now)


def _writes(intake: Intake) -> chain_writes.Writes:
    w = chain_writes.Writes()
    # Every product the batch wrote anything for is saved, moved or not: its row's version
    # is how a reader that waited for its lock knows it changed (`chain_reads`).
    touched = intake.moved_products | {a.product_id for a in intake.new_attempts}
    chain_writes.save_products(w, [intake.products[p] for p in sorted(touched)])
    chain_writes.save_command_states(
        w, [intake.commands[c] for c in sorted(intake.moved_commands)])
    chain_writes.insert_attempts(w, intake.new_attempts)
    chain_writes.save_attempts(w, intake.stopped)
    chain_writes.save_orders(w, intake.cancelled_orders)
    return w
