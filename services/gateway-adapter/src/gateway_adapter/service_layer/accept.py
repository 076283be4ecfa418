"""Accepting provisioning commands into the chain, set-wise: a batch (one partition, offset
order) costs a fixed handful of statements whatever its size.

1. insert the products seen for the first time, then lock the batch's products in id order
   (products before attempts, as the stage worker does: the two never deadlock);
2. read what the chain holds for the batch: the attempts of its commands and those still in
   flight for its products, the commands' records, the in-flight EMOS orders, the fault knobs;
3. decide command by command in memory (`domain.intake`), exactly as one by one;
4. run every step already due of the new attempts (with the chain's delays at 0: BOSS, EMOS
   order, gateway, order closed), as the stage worker would right after the commit;
5. write products, commands, new attempts (as they now stand), superseded attempts, EMOS
   orders and the results with one statement each. The stage worker moves on what is due
   later.
"""

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningCommand
from common.envelope import RawEnvelope
from common.logging import correlated

from ..adapters import chain_writes
from ..adapters import repository as repo
from ..domain.chain import Attempt
from ..domain.intake import Intake
from ..metrics import count_results
from . import worker
from .context import GatewayContext
from .results import result_event, wake_worker


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
    events = []
    correlation: dict[tuple[str, int], str] = {}
    for envelope, cmd in items:
        cid = correlation.setdefault((cmd.command_id, cmd.attempt),
                                     envelope.correlation_id or str(envelope.event_id))
        # Each command's results carry its own correlation id, as when handled one by one.
        with correlated(cid):
            events += [result_event(ctx, a, r) for a, r in intake.accept(cmd)]
    # What is due already (everything, with the chain's delays at 0) runs now, after the
    # whole batch is accepted: what the stage worker would do right after this commit, with
    # the products still locked and without writing and reading the attempts again.
    due = intake.due_now()
    orders, reports = worker.run_due_steps(due, intake.products, {}, intake.faults, intake.now)
    intake.advanced(due)
    for a, r in reports:
        with correlated(correlation.get((a.command_id, a.attempt))):
            events.append(result_event(ctx, a, r))
    w = _writes(intake)
    chain_writes.insert_orders(w, orders)
    chain_writes.add_results(w, ctx.outbox, events)
    count_results(conn, events)
    await w.run(conn)
    if any(a.outcome is None for a in intake.new_attempts):
        wake_worker(ctx)  # a later step is due later: the worker's


async def _load(
    ctx: GatewayContext, conn: AsyncConnection, cmds: list[ProvisioningCommand]
) -> Intake:
    now = ctx.clock.now()
    await chain_writes.ensure_products(conn, cmds, now)
    products = await repo.lock_products(conn, sorted({c.product_id for c in cmds}))
    command_ids = {c.command_id for c in cmds}
    recorded = await repo.recorded_attempts(conn, sorted(command_ids), sorted(products))
    in_flight: dict[str, list[Attempt]] = {}
    for a in recorded:
        if a.outcome is None and a.product_id in products:
            in_flight.setdefault(a.product_id, []).append(a)
    flying = [a for group in in_flight.values() for a in group]
    commands = await repo.command_states(
        conn, sorted(command_ids | {a.command_id for a in flying}))
    orders = await repo.orders_of(conn, [a.emos_order_id for a in flying if a.emos_order_id])
    return Intake(products=products, commands=commands, in_flight=in_flight, orders=orders,
                  seen={(a.command_id, a.attempt) for a in recorded},
                  faults=await repo.load_faults(conn, ctx.default_faults), now=now)


def _writes(intake: Intake) -> chain_writes.Writes:
    w = chain_writes.Writes()
    chain_writes.save_products(w, [intake.products[p] for p in sorted(intake.moved_products)])
    chain_writes.save_command_states(
        w, [intake.commands[c] for c in sorted(intake.moved_commands)])
    chain_writes.insert_attempts(w, intake.new_attempts)
    chain_writes.save_attempts(w, intake.stopped)
    chain_writes.save_orders(w, intake.cancelled_orders)
    return w
