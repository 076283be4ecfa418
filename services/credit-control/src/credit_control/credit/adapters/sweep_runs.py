"""SQL for a sweep's durable progress: the run (running / held / done) and its steps, each
with the last product id done, updated in the same transaction as the chunk it records."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...adapters import tables as t

UNFINISHED = ("running", "held")
# pg_advisory_lock's first key: "one process runs a given sweep" (the second is the id's hash).
_LOCK_CLASS = 0x5357_4550  # "SWEP"


async def create(conn: AsyncConnection, values: dict[str, Any],
                 steps: Sequence[tuple[str, str]], at: datetime) -> bool:
    """The run and its steps (rule id, decision) in plan order; False if it existed."""
    made = await conn.execute(pg_insert(t.sweep_runs).values(
        **values, created_at=at, updated_at=at).on_conflict_do_nothing()
        .returning(t.sweep_runs.c.sweep_id))
    if made.first() is None:
        return False
    if steps:
        await conn.execute(pg_insert(t.sweep_steps), [
            {"sweep_id": values["sweep_id"], "step_no": n, "rule_id": rule_id,
             "decision": decision, "updated_at": at}
            for n, (rule_id, decision) in enumerate(steps)])
    return True


async def run(conn: AsyncConnection, sweep_id: str, lock: bool = False) -> Row[Any] | None:
    q = select(t.sweep_runs).where(t.sweep_runs.c.sweep_id == sweep_id)
    return (await conn.execute(q.with_for_update() if lock else q)).first()


async def steps(conn: AsyncConnection, sweep_id: str) -> list[Row[Any]]:
    s = t.sweep_steps
    return list(await conn.execute(
        select(s).where(s.c.sweep_id == sweep_id).order_by(s.c.step_no)))


async def advance(conn: AsyncConnection, sweep_id: str, step_nos: Sequence[int], after: str,
                  decided: dict[int, int], done: bool, at: datetime) -> None:
    """One chunk of a pass done, for each of the pass's steps: in the chunk's own transaction,
    so the cursor never runs ahead of (or behind) what was committed."""
    await conn.execute(text(
        'UPDATE credit.sweep_steps s SET "after" = :after, decided = s.decided + u.n, '
        "chunks = s.chunks + 1, done = :done, updated_at = :at "
        "FROM unnest(CAST(:nos AS integer[]), CAST(:ns AS bigint[])) AS u(step_no, n) "
        "WHERE s.sweep_id = :s AND s.step_no = u.step_no"),
        {"after": after, "done": done, "at": at, "s": sweep_id, "nos": list(step_nos),
         "ns": [decided.get(n, 0) for n in step_nos]})


async def restart_step(conn: AsyncConnection, sweep_id: str, step_no: int, rule_id: str,
                       decision: str, at: datetime) -> None:
    """The plan no longer matches the recorded step: run it from the start (harmless)."""
    s = t.sweep_steps
    await conn.execute(update(s).where(s.c.sweep_id == sweep_id, s.c.step_no == step_no).values(
        rule_id=rule_id, decision=decision, after="", done=False, updated_at=at))


async def set_run(conn: AsyncConnection, sweep_id: str, **values: Any) -> None:
    r = t.sweep_runs
    await conn.execute(update(r).where(r.c.sweep_id == sweep_id).values(**values))


async def unfinished_ids(conn: AsyncConnection, status: str = "running") -> list[str]:
    r = t.sweep_runs
    return list((await conn.execute(select(r.c.sweep_id).where(r.c.status == status)
                                    .order_by(r.c.as_of, r.c.created_at))).scalars())


async def finished_days(conn: AsyncConnection, ids: dict[str, date]) -> set[date]:
    """Of these sweep ids (→ their day), the days whose run is done."""
    r = t.sweep_runs
    done = (await conn.execute(select(r.c.sweep_id).where(
        r.c.sweep_id.in_(list(ids)), r.c.status == "done"))).scalars()
    return {ids[i] for i in done}


async def listing(conn: AsyncConnection, statuses: Sequence[str] | None,
                  limit: int) -> list[dict[str, Any]]:
    """Runs with their progress, newest first."""
    r, s = t.sweep_runs, t.sweep_steps
    q = select(r).order_by(r.c.created_at.desc()).limit(limit)
    if statuses:
        q = q.where(r.c.status.in_(list(statuses)))
    runs = [dict(row._mapping) for row in await conn.execute(q)]
    if not runs:
        return []
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in await conn.execute(select(s).where(
            s.c.sweep_id.in_([x["sweep_id"] for x in runs])).order_by(s.c.sweep_id, s.c.step_no)):
        by_run.setdefault(row.sweep_id, []).append(dict(row._mapping))
    return [{**x, "steps": by_run.get(x["sweep_id"], [])} for x in runs]


@asynccontextmanager
async def exclusive(engine: AsyncEngine, sweep_id: str) -> AsyncIterator[bool]:
    """True while this process alone runs `sweep_id`: a session advisory lock on a connection
    of its own, released when the run ends or, if the process dies, when PostgreSQL sees the
    connection go. False: another process (or task) is running it now."""
    async with engine.connect() as conn:
        got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:c, hashtext(:s))"),
                                     {"c": _LOCK_CLASS, "s": sweep_id}))
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:c, hashtext(:s))"),
                                   {"c": _LOCK_CLASS, "s": sweep_id})
                await conn.commit()


async def create_step(conn: AsyncConnection, sweep_id: str, step_no: int, rule_id: str,
                      decision: str, at: datetime) -> None:
    await conn.execute(pg_insert(t.sweep_steps).values(
        sweep_id=sweep_id, step_no=step_no, rule_id=rule_id, decision=decision,
        updated_at=at).on_conflict_do_nothing())
