"""The simulation clock's one authority (docs/simulation-clock.md): credit-control records
each move and publishes it through its outbox to the compacted clock topic, which every
service started with `<PREFIX>SIMULATION_CLOCK=true` follows (common.simulation)."""

from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import BUSINESS_TZ, SimulatedClock
from common.contracts.clock import CLOCK_KEY, SimulatedClockMoved
from common.errors import Conflict, Unprocessable
from common.idempotency import StoredResponse, run_once
from common.simulation import log_move, offset_text

from ...adapters import tables as t
from ...service_layer.context import CreditContext, publish
from ..domain.clock import AdvanceClock, ClockRefusal, target_offset

OFF = ("the simulation clock is off: start every service with <PREFIX>SIMULATION_CLOCK=true "
       "(CREDIT_SIMULATION_CLOCK, BILLING_…, NOTIFIER_…, GATEWAY_…; `make play` does) to move "
       "business time; without it business time is the wall clock's")


def _simulated(ctx: CreditContext) -> SimulatedClock | None:
    return ctx.clock if isinstance(ctx.clock, SimulatedClock) else None


async def show(ctx: CreditContext) -> dict[str, Any]:
    """The clock as this process runs it, with the latest recorded move."""
    clock = _simulated(ctx)
    async with ctx.engine.connect() as conn:
        last = await _latest(conn)
    now = ctx.clock.now().astimezone(BUSINESS_TZ)
    body: dict[str, Any] = {"simulation_clock": clock is not None, "now": now.isoformat()}
    if clock is None:
        return {**body, "hint": OFF, "last_move": _move(last) if last else None}
    return {**body, "wall_now": clock.base_now().astimezone(BUSINESS_TZ).isoformat(),
            "offset_s": clock.offset.total_seconds(), "offset": offset_text(clock.offset),
            "moves": last.seq if last else 0, "last_move": _move(last) if last else None}


async def advance(ctx: CreditContext, cmd: AdvanceClock) -> StoredResponse:
    """Record the move and publish it, in one transaction; then move this process's clock
    (the others follow the topic). One move at a time: the table is locked."""
    clock = _simulated(ctx)
    if clock is None:
        raise Conflict(OFF)
    async with ctx.engine.begin() as conn:
        await conn.execute(text(f"LOCK TABLE {t.SCHEMA}.clock_moves IN EXCLUSIVE MODE"))

        async def work() -> dict[str, Any]:
            last = await _latest(conn)
            current = max(timedelta(seconds=last.offset_s) if last else timedelta(0),
                          clock.offset)
            wall_now = clock.base_now()
            try:
                offset = target_offset(current, wall_now, cmd.to, cmd.by)
            except ClockRefusal as exc:
                raise Unprocessable(str(exc), field="to" if cmd.to else "days") from None
            seq = (last.seq if last else 0) + 1
            row: dict[str, Any] = {"seq": seq, "move_id": cmd.move_id,
                   "wall_at": wall_now, "previous_offset_s": current.total_seconds(),
                   "offset_s": offset.total_seconds(), "simulated_at": wall_now + offset,
                   "moved_by": cmd.moved_by, "reason": cmd.reason}
            await conn.execute(insert(t.clock_moves).values(**row))
            await publish(ctx, conn, CLOCK_KEY, SimulatedClockMoved(
                move_id=cmd.move_id, seq=seq, offset_s=offset.total_seconds(),
                previous_offset_s=current.total_seconds(), simulated_at=wall_now + offset,
                wall_at=wall_now, moved_by=cmd.moved_by, reason=cmd.reason))
            return _move_of(row)

        stored = await run_once(ctx.keys, conn, "clock_move", cmd.move_id, cmd, work)
    if clock.move_to_offset(max(clock.offset, timedelta(seconds=stored.body["offset_s"]))):
        log_move(clock, ctx.settings.service_name,
                 f"move {stored.body['seq']} by {cmd.moved_by}: {cmd.reason}")
    return stored


async def _latest(conn: AsyncConnection) -> Any:
    c = t.clock_moves.c
    newest = select(func.max(c.seq)).scalar_subquery()
    return (await conn.execute(select(t.clock_moves).where(c.seq == newest))).first()


def _move(row: Any) -> dict[str, Any]:
    return _move_of(row._asdict())


def _move_of(row: dict[str, Any]) -> dict[str, Any]:
    return {"seq": row["seq"], "move_id": row["move_id"],
            "wall_at": row["wall_at"].astimezone(BUSINESS_TZ).isoformat(),
            "previous_offset_s": row["previous_offset_s"], "offset_s": row["offset_s"],
            "simulated_at": row["simulated_at"].astimezone(BUSINESS_TZ).isoformat(),
            "moved_by": row["moved_by"], "reason": row["reason"]}
