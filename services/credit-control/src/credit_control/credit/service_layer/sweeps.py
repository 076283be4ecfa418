"""Calendar sweeps: every rule row due today evaluated at once, one set-based statement per
chunk of products (adapters/sweep_sql.py), with the progress durable per step and chunk (a
restart, a re-post or a re-confirm completes what is left); the wait for the balance feed
before a new sweep (feed_wait.py); the mass-suspension guard; the in-process scheduler that
catches up missed days; the loop that resumes unfinished sweeps."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from functools import partial
from itertools import accumulate
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import BUSINESS_TZ, business_date, clock_moves, ensure_aware
from common.contracts.credit_control import DecisionType
from common.errors import Conflict, NotFound
from common.idempotency import StoredResponse
from common.logging import correlated, correlation_id
from common.poll_loop import PollLoop
from common.simulation import wake_on_move

from ...admin.adapters import admin_repository as admin_repo
from ...collections.service_layer import promises as promise_checks
from ...metrics import SWEEP_CATCH_UPS, SWEEPS_UNFINISHED, count_committed
from ...service_layer.context import CreditContext
from ..adapters import sweep_runs as runs
from ..adapters import sweep_sql
from ..domain import catch_up, rules
from ..domain.commands import ConfirmSweep, RunSweep
from ..domain.ladder import first_sending_day
from . import approvals, feed_wait, freezes

log = logging.getLogger(__name__)


async def run_sweep(ctx: CreditContext, cmd: RunSweep, catch_up: bool = False) -> StoredResponse:
    """Replaying a finished (or held) sweep id gives the first answer; re-posting an
    unfinished one completes what is left (200), or reports its progress (202) while another
    process runs it. Re-running a day under another id is harmless: every decision id is
    deterministic and every step is state-guarded. A new sweep whose feed is not applied in
    time is refused (feed_wait.FeedBehind, 503): nothing written, its id free again."""
    async with ctx.engine.begin() as conn:
        earlier = await ctx.keys.replay_or_reserve(conn, "sweep", cmd.sweep_id, cmd)
        found = await runs.run(conn, cmd.sweep_id)
    if earlier is not None and earlier.status_code and (found is None
                                                        or found.status != "running"):
        return earlier
    async with ctx.keys.released_on_refusal(ctx.engine, "sweep", cmd.sweep_id):
        if found is None:
            # A new run decides only on what was published before it, applied (503 and the
            # key released if that takes too long); a started one finishes on what it began
            # with. Before the lock: the wait holds no connection.
            await feed_wait.wait_until_applied(ctx.feed, ctx.settings.sweep_feed_wait_s,
                                               cmd.sweep_id)
        async with runs.exclusive(ctx.engine, cmd.sweep_id) as mine:
            if not mine:  # another process (or task) is starting or running it
                return StoredResponse(202, await progress(ctx, cmd.sweep_id)
                                      if found is not None
                                      else {"sweep_id": cmd.sweep_id, "status": "running"})
            if found is None:
                await _start(ctx, cmd.sweep_id, ensure_aware(cmd.as_of), catch_up)
            body = await _resume_locked(ctx, cmd.sweep_id)
    if earlier is not None and earlier.status_code:
        return StoredResponse(200, body)
    async with ctx.engine.begin() as conn:
        # Reserved again if gone: a concurrent post of the same new id, refused while this
        # one waited for the feed, released the reservation (the first answer stored wins).
        await ctx.keys.replay_or_reserve(conn, "sweep", cmd.sweep_id, cmd)
        await ctx.keys.store(conn, "sweep", cmd.sweep_id, 201, body)
        return await ctx.keys.stored(conn, "sweep", cmd.sweep_id)


def sending_day(ctx: CreditContext, as_of: datetime, catch_up: bool) -> date:
    """The business day a sweep's customer SMS can first leave (ladder.first_sending_day),
    from which its suspension warnings' notice counts: by the customer sending window at the
    sweep's `as_of` (a sweep after it closed, 21:00 by default: the next day, as the
    notifier's quiet hours hold them), or, for a catch-up, at the moment it really runs (the
    service's clock; the decisions' `caught_up_at`, by which the notifier sends them)."""
    return first_sending_day(as_of, ctx.settings.sending_window,
                             ctx.clock.now() if catch_up else None)


async def _start(ctx: CreditContext, sweep_id: str, as_of: datetime, catch_up: bool) -> None:
    """The run, its steps in plan order and the guard's verdict, in one transaction: from
    here on the sweep's progress is durable. A sweep that needs an approved preview and has
    none covering it is held whole (credit/service_layer/approvals.py)."""
    today = business_date(as_of)
    # Freezes over by now send what they held back through the notice period first.
    await freezes.release_due(ctx, as_of)
    # Promises whose date passed unpaid are broken first: the ladder resumes in this sweep.
    await promise_checks.check(ctx, as_of)
    unapproved, approval_id = None, None
    if (await guard_settings(ctx))["needs_approved_preview"]:
        unapproved, approval_id = await approvals.verdict(ctx, as_of)
    async with ctx.engine.begin() as conn:
        table = await ctx.rules.current(conn)
        plan = rules.sweep_plan(table, today, ctx.settings.notice_policy,
                                sending_day(ctx, as_of, catch_up))
        suspends = [(n, s) for n, s in enumerate(plan) if s.row.decision is DecisionType.SUSPEND]
        held = unapproved or await _guard(conn, ctx, sweep_id, as_of, suspends, table.version)
        now = ctx.clock.now()
        made = await runs.create(conn, {
            "sweep_id": sweep_id, "as_of": as_of, "business_date": today,
            "rule_version": table.version, "status": "running", "catch_up": catch_up,
            "held": held, "approval_id": None if unapproved else approval_id},
            [(s.row.rule_id, s.row.decision.value) for s in plan], now)
        if made and catch_up:
            await admin_repo.audit(conn, now, ctx.source, "sweep", sweep_id, "sweep catch-up",
                                   None, {"as_of": as_of.isoformat(),
                                          "business_date": today.isoformat()})
        if made and held is not None:
            log.warning("sweep %s held by the mass-suspension guard: %s", sweep_id,
                        held["reason"])
            await admin_repo.insert_hold(conn, {
                "sweep_id": sweep_id, "as_of": as_of,
                "would_suspend": held.get("would_suspend", 0), "active": held.get("active", 0),
                "max_share": held.get("max_share", 0.0), "reason": held["reason"],
                "kind": held.get("kind", "guard"), "difference": held.get("difference"),
                "status": "held", "created_at": now})


async def resume(ctx: CreditContext, sweep_id: str, why: str = "") -> dict[str, Any] | None:
    """Runs what is left of a sweep, step after step from each step's recorded cursor;
    None when another process (or task) is running it right now."""
    async with runs.exclusive(ctx.engine, sweep_id) as mine:
        return await _resume_locked(ctx, sweep_id, why) if mine else None


async def _resume_locked(ctx: CreditContext, sweep_id: str, why: str = "") -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        run = await runs.run(conn, sweep_id)
        if run is None:
            raise NotFound(f"no sweep {sweep_id!r}", id=sweep_id)
        if run.status == "running":
            table = await admin_repo.rule_table_version(conn, run.rule_version)
            recorded = await runs.steps(conn, sweep_id)
    if run.status == "running":
        if why:
            log.warning("%s: resuming the unfinished sweep %s", why, sweep_id)
        cid = f"catch-up:{sweep_id}" if run.catch_up else correlation_id.get()
        with correlated(cid or f"sweep:{sweep_id}"):
            await _finish(ctx, run, table, recorded)
    return await progress(ctx, sweep_id)


async def _finish(ctx: CreditContext, run: Any, table: Any, recorded: list[Any]) -> None:
    """Every step left runs in ONE pass over the products (sweep_sql: the steps a product
    matches, in plan order). A held sweep runs all but its suspensions; once confirmed, the
    suspensions run in a pass of their own, after the rest, as they always did.

    Its suspension warnings' notice counts from the day their SMS can first leave (`sent_on`):
    a catch-up decides as of the missed day, but its warnings go out now (the clock as this
    pass starts; a catch-up resumed on a later day counts from that day)."""
    plan = rules.sweep_plan(table, run.business_date, ctx.settings.notice_policy,
                            sending_day(ctx, run.as_of, run.catch_up))
    waiting = run.held is not None and not run.confirmed
    # Held for want of an approved preview: nothing runs; by the guard: its suspensions.
    whole = waiting and run.held.get("kind") == "preview"
    todo: list[tuple[int, rules.SweepStep]] = []
    cursors: list[str] = []
    for n, step in enumerate(plan):
        row = recorded[n] if n < len(recorded) else None
        if row is not None and row.done:
            continue
        if whole or (waiting and step.row.decision is DecisionType.SUSPEND):
            continue  # held until staff confirm
        cursors.append(await _step_cursor(ctx, run.sweep_id, n, step, row))
        todo.append((n, step))
    if todo:
        # The steps of a pass share their cursor; if they differ (a run recorded step after
        # step), the pass starts at the earliest: a step repeats nothing (deterministic
        # decision ids, state-guarded), so going over products again is harmless.
        await _run(ctx, run, todo, min(cursors), table.version)
    if todo or not whole:
        # Even with nothing left to run: a crash between the last chunk's commit and this
        # left the day's holds unrecorded (recording them again records nothing twice).
        await freezes.record_holds(ctx, run.as_of, plan)
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        await runs.set_run(conn, run.sweep_id, status="held" if waiting else "done",
                           updated_at=now, finished_at=None if waiting else now)
    await refresh_gauge(ctx)


async def _step_cursor(ctx: CreditContext, sweep_id: str, n: int, step: rules.SweepStep,
                       row: Any) -> str:
    """Where step `n` resumes. The plan comes from the run's own rule version and day, so it
    matches what was recorded; if it does not (a new release changed the plan), the step
    starts over, which repeats nothing (deterministic decision ids, state-guarded steps)."""
    if row is not None and (row.rule_id, row.decision) == (step.row.rule_id,
                                                           step.row.decision.value):
        return str(row.after)
    log.warning("sweep %s step %d no longer matches its record; it starts over", sweep_id, n)
    async with ctx.engine.begin() as conn:
        if row is None:
            await runs.create_step(conn, sweep_id, n, step.row.rule_id, step.row.decision.value,
                                   ctx.clock.now())
        else:
            await runs.restart_step(conn, sweep_id, n, step.row.rule_id,
                                    step.row.decision.value, ctx.clock.now())
    return ""


async def _run(ctx: CreditContext, run: Any, steps: list[tuple[int, rules.SweepStep]],
               after: str, version: int) -> None:
    """Chunk after chunk, each its own short transaction (locks held briefly) that also
    records how far the pass got, for each of its steps: a crash loses at most the chunk in
    flight, which rolls back whole. A large pass splits into disjoint ranges of product ids
    (`_Ranges`, `range_cuts`) that run in `sweep_lanes` concurrent lanes; a product is in one
    range, so its rows keep their order."""
    settings = ctx.settings
    async with ctx.engine.connect() as conn:
        points = await sweep_sql.split_points(conn, after, range_cuts(settings.sweep_lanes),
                                              settings.sweep_lanes_min_products)
    approved = (await approvals.approved_ids(ctx, run.approval_id)
                if getattr(run, "approval_id", None) else None)
    ranges = _Ranges([after, *points], approved)
    if points:
        log.info("sweep %s: %d ranges from %r in %d lanes, split at %s", run.sweep_id,
                 len(points) + 1, after, settings.sweep_lanes, points)
    # The ranges in order, each to whichever lane is free.
    free = asyncio.Semaphore(settings.sweep_lanes)
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(len(ranges.start)):
                group.create_task(_in_lane(free, partial(
                    _sweep_range, ctx, run, steps, version, ranges, i)))
    except BaseExceptionGroup as failed:
        # A task group raises its lanes' errors as a group, which no handler matches by
        # type: the database gone mid-sweep must still answer 503 with Retry-After (and a
        # refusal stay a refusal), so the first lane's error leaves as itself.
        first, *others = _errors(failed)
        for other in others:
            log.error("sweep %s: another lane failed too", run.sweep_id, exc_info=other)
        raise first from None


def _errors(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """A task group's errors in order, nested groups opened."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _errors(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def range_cuts(lanes: int, levels: int = 4) -> list[float]:
    """Where a pass in `lanes` concurrent lanes splits, as shares of its products: ranges
    that halve in size level by level (half the pass in `lanes` ranges, then a quarter, an
    eighth), the last eighth in twice as many small ones. Products of one share cost the
    lanes unequally (arrears bunch by id: with every owing one of 1,000,000 in the lower
    half, two halves took 9.2–9.8 s, one lane idle most of it, and these ranges 5.4 s;
    docs/benchmarks.md); whichever lane is free takes the next range, and the last ones are
    small, so the lanes finish close together."""
    if lanes < 2:
        return []
    sizes = [2.0 ** -k / lanes for k in range(1, levels) for _ in range(lanes)]
    sizes += [2.0 ** (1 - levels) / (2 * lanes)] * (2 * lanes)
    return list(accumulate(sizes))[:-1]


async def _in_lane(free: asyncio.Semaphore, work: Callable[[], Awaitable[None]]) -> None:
    async with free:  # the range's coroutine made only now: one never started is never made
        await work()


class _Ranges:
    """The ranges of a pass: range i takes the products after start[i] up to start[i + 1].
    The recorded cursor is where the first unfinished range's committed chunks end (the
    ranges after it may be further on, or not started: a resume repeats their chunks, which
    decides nothing), and the pass is done when every range is; a range's chunk records it
    under `lock`, in its own transaction, so it never runs ahead of what was committed."""

    def __init__(self, start: list[str], approved: list[str] | None = None) -> None:
        self.start = start
        self.approved = approved  # the decisions the run may take (None: any)
        self.at = list(start)
        self.finished = [False] * len(start)
        self.lock = asyncio.Lock()

    def upto(self, i: int) -> str | None:
        return self.start[i + 1] if i + 1 < len(self.start) else None

    def cursor(self, i: int, at: str, finished: bool) -> tuple[str, bool]:
        """The pass's cursor and done flag once lane i's chunk ending at `at` commits."""
        ats, done = [*self.at], [*self.finished]
        ats[i], done[i] = at, finished
        first = next((j for j, d in enumerate(done) if not d), None)
        return (ats[-1] if first is None else ats[first]), first is None


async def _sweep_range(ctx: CreditContext, run: Any, steps: list[tuple[int, rules.SweepStep]],
                       version: int, ranges: _Ranges, i: int) -> None:
    as_of, chunk = run.as_of, ctx.settings.sweep_chunk
    numbers = [n for n, _ in steps]
    decisions = {n: s.row.decision.value for n, s in steps}
    after, upto = ranges.start[i], ranges.upto(i)
    while True:
        values = sweep_sql.params(
            steps, as_of, ctx.clock.now(), version, after, chunk, ctx.source,
            correlation_id.get(), as_of + timedelta(hours=ctx.settings.work_order_due_hours),
            run.business_date, run.sweep_id if run.catch_up else None, ranges.approved)
        values["upto"] = upto
        async with ctx.engine.connect() as conn, conn.begin() as tx:
            await sweep_sql.tune_chunk(conn)
            candidates, last_id, decided = await sweep_sql.run_chunk(conn, values)
            finished = candidates < chunk or last_id is None
            at = last_id or after
            # Ranges record their progress one at a time, each seeing the others' committed
            # cursors (and taking the step rows' locks in turn).
            async with ranges.lock:
                cursor, done = ranges.cursor(i, at, finished)
                await runs.advance(conn, run.sweep_id, numbers, cursor, decided, done,
                                   ctx.clock.now())
                await tx.commit()
                ranges.at[i], ranges.finished[i] = at, finished
        ctx.outbox.wake.set()
        for n, k in decided.items():
            count_committed(decisions[n], k)
        if finished:
            return
        after = at


async def progress(ctx: CreditContext, sweep_id: str) -> dict[str, Any]:
    """A run's answer: the same shape as a sweep's first answer, plus its status and
    progress (steps done of all, per step the cursor)."""
    async with ctx.engine.connect() as conn:
        run = await runs.run(conn, sweep_id)
        if run is None:
            raise NotFound(f"no sweep {sweep_id!r}", id=sweep_id)
        steps = await runs.steps(conn, sweep_id)
    return answer(dict(run._mapping), [dict(s._mapping) for s in steps])


def answer(run: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for s in steps:
        if s["decided"]:
            counts[s["decision"]] = counts.get(s["decision"], 0) + int(s["decided"])
    return {"sweep_id": run["sweep_id"],
            "as_of": run["as_of"].astimezone(BUSINESS_TZ).isoformat(),
            "business_date": run["business_date"].isoformat(),
            "rule_version": run["rule_version"], "decisions": counts, "held": run["held"],
            "status": run["status"], "catch_up": run["catch_up"],
            "progress": {"steps_done": sum(1 for s in steps if s["done"]), "steps": len(steps),
                         "cursor": {s["rule_id"]: s["after"] for s in steps
                                    if s["after"] and not s["done"]}}}


async def _guard(conn: AsyncConnection, ctx: CreditContext, sweep_id: str, as_of: datetime,
                 suspends: list[tuple[int, rules.SweepStep]],
                 version: int) -> dict[str, Any] | None:
    """If this sweep would suspend more than the allowed share of active products, it
    suspends nothing and waits for POST /v1/sweeps/{id}/confirm. A bare scan first bounds the
    number from above; only a bound over the share asks for the exact count (one statement
    over the table)."""
    await sweep_sql.tune(conn)
    settings = await _guard_settings(conn, ctx)
    if not settings["enabled"] or not suspends:
        return None
    active, bound = await sweep_sql.guard_bound(conn, suspends)
    if active < settings["min_active"] or bound <= settings["max_share"] * active:
        return None  # within the share even were every candidate due: no exact count needed
    would, active = await sweep_sql.guard_counts(conn, suspends, sweep_sql.params(
        [], as_of, as_of, version, "", 0, ctx.source, None, as_of, business_date(as_of)))
    if active < settings["min_active"] or would <= settings["max_share"] * active:
        return None
    reason = (f"would suspend {would} of {active} active products "
              f"({would / active:.1%} > {settings['max_share']:.1%})")
    return {"would_suspend": would, "active": active, "max_share": settings["max_share"],
            "reason": reason, "confirm": f"/v1/sweeps/{sweep_id}/confirm"}


async def confirm_sweep(ctx: CreditContext, sweep_id: str,
                        cmd: ConfirmSweep) -> StoredResponse:
    """Confirming a held sweep runs its suspensions (200). Re-posting the confirmation of a
    sweep that is confirmed but not finished (a crash in between) completes what is left
    (200), or reports progress (202) while another process runs it; once done, 409."""
    async with ctx.engine.connect() as conn:
        pending = await admin_repo.hold(conn, sweep_id)
        await conn.rollback()
    approval_id = None
    if pending is not None and pending.kind == "preview" and pending.status == "held":
        # Checked again now: confirmed only if an approval covers what it would decide.
        unapproved, approval_id = await approvals.verdict(ctx, pending.as_of)
        if unapproved is not None:
            raise Conflict(unapproved["reason"], id=sweep_id,
                           difference=unapproved["difference"])
    async with ctx.engine.begin() as conn:
        hold = await admin_repo.hold(conn, sweep_id)
        if hold is None:
            raise NotFound(f"no held sweep {sweep_id!r}", id=sweep_id)
        run = await runs.run(conn, sweep_id, lock=True)
        if hold.status == "held":
            now = ctx.clock.now()
            await admin_repo.set_hold(conn, sweep_id, status="confirmed",
                                      confirmed_by=cmd.confirmed_by, confirmed_at=now)
            await admin_repo.audit(conn, now, cmd.confirmed_by, "sweep_hold", sweep_id,
                                   "confirm", {"status": "held"},
                                   {"status": "confirmed", "note": cmd.note})
            if run is not None:
                await runs.set_run(conn, sweep_id, status="running", confirmed=True,
                                   updated_at=now,
                                   **({"approval_id": approval_id} if approval_id else {}))
        elif run is None or run.status == "done":
            raise Conflict(f"sweep {sweep_id} is already {hold.status}", id=sweep_id)
    body = await resume(ctx, sweep_id, "confirmation")
    if body is None:
        return StoredResponse(202, await progress(ctx, sweep_id))
    return StoredResponse(200, body)


async def sweeps_list(ctx: CreditContext, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Runs with their progress; `unfinished` is running or held."""
    statuses = (runs.UNFINISHED if status == "unfinished" else (status,) if status else None)
    async with ctx.engine.connect() as conn:
        found = await runs.listing(conn, statuses, limit)
    return [{**answer(r, r["steps"]), "created_at": r["created_at"].isoformat(),
             "updated_at": r["updated_at"].isoformat(),
             "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None}
            for r in found]


async def refresh_gauge(ctx: CreditContext) -> None:
    async with ctx.engine.connect() as conn:
        for status in runs.UNFINISHED:
            SWEEPS_UNFINISHED.labels(status).set(len(await runs.unfinished_ids(conn, status)))


async def guard_settings(ctx: CreditContext, conn: AsyncConnection | None = None
                         ) -> dict[str, Any]:
    """The guard's settings, on `conn` if given (a writer's transaction), else on its own."""
    if conn is not None:
        return await _guard_settings(conn, ctx)
    async with ctx.engine.connect() as own:
        return await _guard_settings(own, ctx)


async def _guard_settings(conn: AsyncConnection, ctx: CreditContext) -> dict[str, Any]:
    row = await admin_repo.guard(conn)
    if row is None:
        s = ctx.settings
        return {"enabled": True, "max_share": s.guard_max_share, "min_active": s.guard_min_active,
                "needs_approved_preview": False, "updated_by": None, "updated_at": None}
    return {"enabled": row.enabled, "max_share": row.max_share, "min_active": row.min_active,
            "needs_approved_preview": row.needs_approved_preview,
            "updated_by": row.updated_by, "updated_at": row.updated_at}


# --- the in-process scheduler and the resume loop --------------------------------------------

def scheduler(ctx: CreditContext) -> Any:
    """On start-up and on every tick: each scheduled day due and not done, oldest first
    (domain.catch_up), as of its own scheduled moment under its own id `auto-YYYY-MM-DD`,
    then the collections worklists as of the same moment. Two processes (or a restart) run a
    day once: the id is the day, and one process at a time runs a given sweep. A day refused
    for the balance feed (feed_wait.FeedBehind) fails the step: the loop's backoff retries it,
    still as of its own moment and under its own id (a catch-up once past the grace).

    A loop on `ctx.clock` rather than APScheduler's triggers: time is a parameter here (tests
    and drills stand the clock where they need it), and the catch-up of several missed days
    must run each day on its own, which a coalescing trigger would merge into one."""

    async def daily_sweep(stop: asyncio.Event) -> None:
        slot = catch_up.parse_slot(ctx.settings.scheduler_time)
        now, wait, moves = ctx.clock.now(), 0.0, clock_moves(ctx.clock)

        async def step() -> bool:
            nonlocal now, wait, moves
            # The timer ran out, so at least `wait` went by, even on a clock standing still
            # (0 after a failed step: retried as of the clock). Woken by a move of the
            # simulation clock instead, only the clock's own reading counts.
            passed = 0.0 if clock_moves(ctx.clock) != moves else wait
            moves = clock_moves(ctx.clock)
            now, wait = max(ctx.clock.now(), now + timedelta(seconds=passed)), 0.0
            await run_due(ctx, now)
            nxt = catch_up.next_slot(now, slot)
            wait = min((nxt - now).total_seconds(), ctx.settings.scheduler_tick_s)
            return False

        await PollLoop("scheduler", step, idle_s=ctx.settings.scheduler_tick_s,
                       idle_for=lambda: wait, backoff_min_s=1.0, backoff_max_s=30.0,
                       wake=wake_on_move(ctx.clock)).run(stop)

    return daily_sweep


async def run_due(ctx: CreditContext, now: datetime) -> list[str]:
    """Runs the scheduled days due as of `now` that have no finished run; their ids."""
    s = ctx.settings
    days = catch_up.candidate_days(now, s.scheduler_catch_up_days,
                                   s.scheduler_month_end_catch_up_days)
    async with ctx.engine.connect() as conn:
        finished = await runs.finished_days(conn, {catch_up.sweep_id_for(d): d for d in days})
    due = catch_up.due_runs(
        now, catch_up.parse_slot(s.scheduler_time), finished,
        lookback_days=s.scheduler_catch_up_days,
        month_end_lookback_days=s.scheduler_month_end_catch_up_days,
        grace=timedelta(seconds=s.scheduler_grace_s))
    ran = []
    for run in due:
        if run.catch_up:
            log.warning("catching up the scheduled sweep %s (as of %s), missed at its time",
                        run.sweep_id, run.at.isoformat())
        stored = await run_sweep(ctx, RunSweep(sweep_id=run.sweep_id, as_of=run.at),
                                 catch_up=run.catch_up)
        if stored.body.get("status") == "done":
            if run.catch_up and stored.status_code == 201:
                SWEEP_CATCH_UPS.inc()
            await _refresh_worklists(ctx, run.at)
        ran.append(run.sweep_id)
    return ran


def resumer(ctx: CreditContext) -> Any:
    """On start-up and every `sweep_resume_interval_s`: every sweep left running (its process
    died, or a request's client gave up) is completed from its recorded cursors. One process
    at a time runs a given sweep (a session advisory lock), so any number of instances may
    run this loop. Also keeps the unfinished-sweeps gauge current."""

    async def sweep_resume(stop: asyncio.Event) -> None:
        async def step() -> bool:
            async with ctx.engine.connect() as conn:
                left = await runs.unfinished_ids(conn, "running")
            for sweep_id in left:
                if stop.is_set():
                    return False
                body = await resume(ctx, sweep_id, "resume loop")
                if body is not None:  # the answer the request that started it never stored
                    async with ctx.engine.begin() as conn:
                        await ctx.keys.store(conn, "sweep", sweep_id, 201, body)
            await refresh_gauge(ctx)
            return False

        await PollLoop("sweep resumer", step, idle_s=ctx.settings.sweep_resume_interval_s,
                       backoff_min_s=1.0, backoff_max_s=30.0).run(stop)

    return sweep_resume


async def _refresh_worklists(ctx: CreditContext, at: datetime) -> None:
    """After the day's sweep, the collections worklists as of the same moment, and the
    unheard-warning gauge. A failure is logged, not raised: tomorrow's sweep must still run
    (and its refresh catches up)."""
    from ...collections.service_layer.collections import refresh
    from .notices import refresh_unheard_gauge

    try:
        await refresh(ctx, at)
    except Exception:
        log.exception("worklist refresh as of %s failed", at.isoformat())
    try:
        if ctx.settings.collections_scheduled:
            from ...collections.service_layer.escalation import run as run_collections
            from ...collections.service_layer.red_list_review import lapse

            await run_collections(ctx, at)  # the cases' phases, as of the same moment
            await lapse(ctx, at)  # red-list entries not renewed by their review date
    except Exception:
        log.exception("collections run as of %s failed", at.isoformat())
    try:
        await refresh_unheard_gauge(ctx, at)
    except Exception:
        log.exception("unheard-warning gauge as of %s failed", at.isoformat())


def loop_ticker(ctx: CreditContext) -> Any:
    """The closed loop's clock: resend attempts whose backoff ran out, time out silent ones;
    and announce the exemptions run out since (admin/service_layer/expiries.py), a failure
    of which is logged, not raised: the retries must keep their pace (the next tick tries
    again)."""
    from ...admin.service_layer.expiries import announce_expiries
    from .work_orders import run_loop

    async def provisioning_retries(stop: asyncio.Event) -> None:
        async def step() -> bool:
            now = ctx.clock.now()
            await run_loop(ctx, now)
            try:
                await announce_expiries(ctx, now)
            except Exception:
                log.exception("announcing the exemptions run out by %s failed",
                              now.isoformat())
            return False

        await PollLoop("provisioning retries", step, idle_s=ctx.settings.loop_tick_s,
                       backoff_min_s=1.0, backoff_max_s=30.0,
                       wake=wake_on_move(ctx.clock)).run(stop)

    return provisioning_retries
