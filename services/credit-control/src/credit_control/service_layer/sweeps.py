"""Calendar sweeps: every rule row due today as set-based statements, one per chunk of
products; the mass-suspension guard; the in-process scheduler."""

import asyncio
import contextlib
import logging
from datetime import datetime, time, timedelta
from typing import Any

from common.clock import BUSINESS_TZ, business_date, ensure_aware
from common.contracts.credit_control import DecisionType
from common.errors import Conflict, NotFound
from common.idempotency import StoredResponse
from common.logging import correlation_id

from ..adapters import admin_repository as admin_repo
from ..adapters import sweep_sql
from ..domain import rules
from ..domain.commands import ConfirmSweep, RunSweep
from ..metrics import count_committed
from .handlers import CreditContext

log = logging.getLogger(__name__)


async def run_sweep(ctx: CreditContext, cmd: RunSweep) -> StoredResponse:
    """Replaying a sweep id gives the first answer; re-running a day (another id) is harmless
    because every decision id is deterministic and every step is state-guarded."""
    async with ctx.engine.begin() as conn:
        earlier = await ctx.keys.replay_or_reserve(conn, "sweep", cmd.sweep_id, cmd)
    if earlier is not None and earlier.status_code:
        return earlier
    async with ctx.keys.released_on_refusal(ctx.engine, "sweep", cmd.sweep_id):
        body = await sweep(ctx, cmd.sweep_id, ensure_aware(cmd.as_of))
    async with ctx.engine.begin() as conn:
        await ctx.keys.store(conn, "sweep", cmd.sweep_id, 201, body)
        return await ctx.keys.stored(conn, "sweep", cmd.sweep_id)


async def sweep(ctx: CreditContext, sweep_id: str, as_of: datetime,
                confirmed: bool = False) -> dict[str, Any]:
    today = business_date(as_of)
    async with ctx.engine.connect() as conn:
        table = await ctx.rules.current(conn)
    plan = rules.sweep_plan(table, today)
    suspends = [s for s in plan if s.row.decision is DecisionType.SUSPEND]
    held = None if confirmed else await _guard(ctx, sweep_id, as_of, suspends, table.version)
    counts: dict[str, int] = {}
    for step in plan:
        if held is not None and step.row.decision is DecisionType.SUSPEND:
            continue
        decided = await _run(ctx, step, as_of, table.version)
        if decided:
            counts[step.row.decision.value] = counts.get(step.row.decision.value, 0) + decided
    return {"sweep_id": sweep_id, "as_of": as_of.isoformat(), "business_date": today.isoformat(),
            "rule_version": table.version, "decisions": counts, "held": held}


async def _run(ctx: CreditContext, step: rules.SweepStep, as_of: datetime, version: int) -> int:
    """Chunk after chunk, each its own short transaction (locks held briefly)."""
    sql = sweep_sql.statement(step)
    after, decided = "", 0
    while True:
        values = sweep_sql.params(
            step, as_of, ctx.clock.now(), version, after, ctx.settings.sweep_chunk, ctx.source,
            correlation_id.get(), as_of + timedelta(hours=ctx.settings.work_order_due_hours))
        async with ctx.engine.begin() as conn:
            await sweep_sql.tune(conn)
            candidates, last_id, n = await sweep_sql.run_step(conn, sql, values)
        ctx.outbox.wake.set()
        count_committed(step.row.decision.value, n)
        decided += n
        if candidates < ctx.settings.sweep_chunk or last_id is None:
            return decided
        after = last_id


async def _guard(ctx: CreditContext, sweep_id: str, as_of: datetime,
                 suspends: list[rules.SweepStep], version: int) -> dict[str, Any] | None:
    """If this sweep would suspend more than the allowed share of active products, it
    suspends nothing and waits for POST /v1/sweeps/{id}/confirm."""
    async with ctx.engine.begin() as conn:
        await sweep_sql.tune(conn)
        settings = await guard_settings(ctx)
        if not settings["enabled"] or not suspends:
            return None
        would = 0
        for step in suspends:
            would += await sweep_sql.count_candidates(conn, step, sweep_sql.params(
                step, as_of, as_of, version, "", 0, ctx.source, None, as_of))
        active = await sweep_sql.active_products(conn)
        if active < settings["min_active"] or would <= settings["max_share"] * active:
            return None
        reason = (f"would suspend {would} of {active} active products "
                  f"({would / active:.1%} > {settings['max_share']:.1%})")
        log.warning("sweep %s held by the mass-suspension guard: %s", sweep_id, reason)
        await admin_repo.insert_hold(conn, {
            "sweep_id": sweep_id, "as_of": as_of, "would_suspend": would, "active": active,
            "max_share": settings["max_share"], "reason": reason, "status": "held",
            "created_at": ctx.clock.now()})
        return {"would_suspend": would, "active": active, "max_share": settings["max_share"],
                "reason": reason, "confirm": f"/v1/sweeps/{sweep_id}/confirm"}


async def confirm_sweep(ctx: CreditContext, sweep_id: str, cmd: ConfirmSweep) -> dict[str, Any]:
    async with ctx.engine.begin() as conn:
        hold = await admin_repo.hold(conn, sweep_id)
        if hold is None:
            raise NotFound(f"no held sweep {sweep_id!r}", id=sweep_id)
        if hold.status != "held":
            raise Conflict(f"sweep {sweep_id} is already {hold.status}", id=sweep_id)
        now = ctx.clock.now()
        await admin_repo.set_hold(conn, sweep_id, status="confirmed",
                                  confirmed_by=cmd.confirmed_by, confirmed_at=now)
        await admin_repo.audit(conn, now, cmd.confirmed_by, "sweep_hold", sweep_id, "confirm",
                               {"status": "held"}, {"status": "confirmed", "note": cmd.note})
        as_of = hold.as_of
    return await sweep(ctx, sweep_id, as_of, confirmed=True)


async def guard_settings(ctx: CreditContext) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await admin_repo.guard(conn)
    if row is None:
        s = ctx.settings
        return {"enabled": True, "max_share": s.guard_max_share, "min_active": s.guard_min_active,
                "updated_by": None, "updated_at": None}
    return {"enabled": row.enabled, "max_share": row.max_share, "min_active": row.min_active,
            "updated_by": row.updated_by, "updated_at": row.updated_at}


# --- the in-process scheduler ----------------------------------------------------------------

def scheduler(ctx: CreditContext) -> Any:
    """Runs the daily sweep at the configured Asia/Shanghai time, then refreshes the
    collections worklists; the sweep id is the day, so two processes (or a restart) run it
    once, and a second refresh changes nothing."""

    async def daily_sweep(stop: asyncio.Event) -> None:
        hour, minute = map(int, ctx.settings.scheduler_time.split(":"))
        while not stop.is_set():
            now = ctx.clock.now().astimezone(BUSINESS_TZ)
            at = datetime.combine(now.date(), time(hour, minute), BUSINESS_TZ)
            if at <= now:
                at += timedelta(days=1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=(at - now).total_seconds())
            if stop.is_set():
                return
            await run_sweep(ctx, RunSweep(sweep_id=f"auto-{at.date().isoformat()}", as_of=at))
            await _refresh_worklists(ctx, at)

    return daily_sweep


async def _refresh_worklists(ctx: CreditContext, at: datetime) -> None:
    """After the day's sweep, the collections worklists as of the same moment. A failure is
    logged, not raised: tomorrow's sweep must still run (and its refresh catches up)."""
    from .collections import refresh

    try:
        await refresh(ctx, at)
    except Exception:
        log.exception("worklist refresh as of %s failed", at.isoformat())


def loop_ticker(ctx: CreditContext) -> Any:
    """The closed loop's clock: resend attempts whose backoff ran out, time out silent ones."""
    from .work_orders import run_loop

    async def provisioning_retries(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await run_loop(ctx, ctx.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=ctx.settings.loop_tick_s)

    return provisioning_retries
