"""sweeps._run and _sweep_range against an in-memory database (no stack): a pass in ranges and
concurrent lanes, crashed at random points (a chunk's start or end, the cursor's write, the
commit) and resumed from the committed cursor with split points drawn afresh, decides every
product exactly once, and two lanes never hold the same product. The integration test
(test_sweep_resume.py) kills the real service; this one tries hundreds of interleavings.

A lane's failure leaves `_run` as itself, not wrapped in the task group's ExceptionGroup:
common.http answers a database gone mid-sweep 503 by the error's type."""

import asyncio
import random
import types
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from common.sending_hours import DEFAULT_CUSTOMER_WINDOW
from credit_control.credit.adapters import sweep_runs, sweep_sql
from credit_control.credit.service_layer import sweeps

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Crash(Exception):
    """The process dies here: nothing after it runs, the open transactions roll back."""


@dataclass
class Db:
    """What the sweep's statements touch: which products have their decision (committed),
    the step's recorded cursor and done flag, and the row locks of open transactions."""

    ids: list[str]
    rng: random.Random
    decided: dict[str, int] = field(default_factory=dict)
    cursor: str = ""
    done: bool = False
    locked: set[str] = field(default_factory=set)
    crash_at: int | None = None
    ops: int = 0
    overlaps: int = 0

    def tick(self) -> None:
        self.ops += 1
        if self.ops == self.crash_at:
            raise Crash(self.ops)

    async def interleave(self) -> None:
        for _ in range(self.rng.randint(0, 3)):
            await asyncio.sleep(0)


class Tx:
    def __init__(self, db: Db) -> None:
        self.db, self.decisions, self.advanced = db, list[str](), None
        self.locks: set[str] = set()

    async def commit(self) -> None:
        self.db.tick()
        for p in self.decisions:
            self.db.decided[p] = self.db.decided.get(p, 0) + 1
        if self.advanced is not None:
            self.db.cursor, self.db.done = self.advanced
        self.release()

    def release(self) -> None:
        self.db.locked -= self.locks
        self.locks = set()


class Conn:
    def __init__(self, db: Db) -> None:
        self.db, self.tx = db, Tx(db)

    async def __aenter__(self) -> "Conn":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.tx.release()  # rolled back if not committed

    def begin(self) -> "Conn":
        return self  # `async with conn.begin() as tx`: the connection stands for its tx

    async def commit(self) -> None:
        await self.tx.commit()


class Engine:
    def __init__(self, db: Db) -> None:
        self.db = db

    def connect(self) -> Conn:
        return Conn(self.db)


def _fake_sql(monkeypatch: pytest.MonkeyPatch, db: Db) -> None:
    async def split_points(conn: Conn, after: str, cuts: list[float],
                           min_products: int) -> list[str]:
        # A fresh random sample each time, as TABLESAMPLE's: a resume splits elsewhere.
        rest = [p for p in db.ids if p > after]
        sample = sorted(db.rng.sample(rest, len(rest) // 2))
        if len(sample) < 2 * (len(cuts) + 1):
            return []
        return sorted({sample[int(len(sample) * c)] for c in cuts})

    async def tune_chunk(conn: Conn) -> None:
        return None

    def params(steps: Any, as_of: Any, now: Any, version: int, after: str, chunk: int,
               *rest: Any) -> dict[str, Any]:
        return {"after": after, "chunk": chunk}

    async def run_chunk(conn: Conn, values: dict[str, Any]) -> tuple[int, str | None,
                                                                      dict[int, int]]:
        db.tick()
        after, upto, chunk = values["after"], values["upto"], values["chunk"]
        found = [p for p in db.ids if p > after and (upto is None or p <= upto)][:chunk]
        db.overlaps += len(db.locked & set(found))
        conn.tx.locks |= set(found)
        db.locked |= set(found)
        # A product's decision is taken once (deterministic id, ON CONFLICT DO NOTHING).
        conn.tx.decisions = [p for p in found if p not in db.decided]
        await db.interleave()
        db.tick()
        return len(found), found[-1] if found else None, {0: len(conn.tx.decisions)}

    async def advance(conn: Conn, sweep_id: str, numbers: list[int], after: str,
                      decided: dict[int, int], done: bool, at: datetime) -> None:
        db.tick()
        conn.tx.advanced = (after, done)

    monkeypatch.setattr(sweep_sql, "split_points", split_points)
    monkeypatch.setattr(sweep_sql, "tune_chunk", tune_chunk)
    monkeypatch.setattr(sweep_sql, "params", params)
    monkeypatch.setattr(sweep_sql, "run_chunk", run_chunk)
    monkeypatch.setattr(sweep_runs, "advance", advance)
    monkeypatch.setattr(sweeps, "count_committed", lambda decision, n: None)


def _ctx(db: Db, lanes: int, chunk: int) -> Any:
    return types.SimpleNamespace(
        engine=Engine(db), clock=types.SimpleNamespace(now=lambda: NOW), source="test",
        settings=types.SimpleNamespace(sweep_lanes=lanes, sweep_lanes_min_products=0,
                                       sweep_chunk=chunk, work_order_due_hours=24),
        outbox=types.SimpleNamespace(wake=asyncio.Event()))


RUN = types.SimpleNamespace(as_of=NOW, business_date=date(2026, 11, 30), sweep_id="S1",
                            catch_up=False, approval_id=None)
STEP = types.SimpleNamespace(row=types.SimpleNamespace(
    decision=types.SimpleNamespace(value="suspend")))


async def _sweep_with_crashes(db: Db, lanes: int, chunk: int, crashes: int) -> int:
    """Runs the pass, crashing it up to `crashes` times, until the step is done; how many
    crashes happened."""
    crashed = 0
    while not db.done:
        db.ops, db.locked = 0, set()
        db.crash_at = db.rng.randint(1, 60) if crashed < crashes else None
        try:
            await sweeps._run(_ctx(db, lanes, chunk), RUN, [(0, STEP)], db.cursor, 1)
        except Crash:
            crashed += 1
    return crashed


@pytest.mark.parametrize("seed", range(120))
async def test_a_pass_crashed_anywhere_and_resumed_decides_each_product_once(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 400)
    db = Db(sorted(f"P{x:06d}" for x in rng.sample(range(1, 10 * n), n)), rng)
    _fake_sql(monkeypatch, db)
    crashed = await _sweep_with_crashes(db, lanes=rng.randint(1, 4), chunk=rng.randint(1, 30),
                                        crashes=rng.randint(0, 5))
    assert [p for p in db.ids if p not in db.decided] == [], f"skipped ({crashed} crashes)"
    assert {p: k for p, k in db.decided.items() if k > 1} == {}, "decided twice"
    assert db.overlaps == 0, "two lanes held the same products"


async def test_without_crashes_the_pass_runs_in_ranges_in_every_lane(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The property above holds because the pass really splits: a plain pass in one lane
    would pass it too."""
    db = Db([f"P{x:06d}" for x in range(1, 1001)], random.Random(7))
    _fake_sql(monkeypatch, db)
    busy, most = 0, 0
    chunk = sweep_sql.run_chunk

    async def counted(conn: Conn, values: dict[str, Any]) -> Any:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        try:
            return await chunk(conn, values)
        finally:
            busy -= 1

    monkeypatch.setattr(sweep_sql, "run_chunk", counted)
    db.rng.seed(7)
    assert await _sweep_with_crashes(db, lanes=2, chunk=20, crashes=0) == 0
    assert most == 2 and sorted(db.decided) == db.ids


class DatabaseGone(ConnectionError):
    pass


async def test_a_lane_failing_leaves_the_pass_as_its_own_error(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Db([f"P{x:06d}" for x in range(1, 201)], random.Random(3))
    _fake_sql(monkeypatch, db)
    chunk = sweep_sql.run_chunk

    async def failing(conn: Conn, values: dict[str, Any]) -> Any:
        if values["after"]:  # the first range's second chunk, or another range's first
            raise DatabaseGone(f"lost the connection after {values['after']}")
        return await chunk(conn, values)

    monkeypatch.setattr(sweep_sql, "run_chunk", failing)
    with pytest.raises(DatabaseGone):
        await sweeps._run(_ctx(db, 2, 10), RUN, [(0, STEP)], "", 1)


async def test_lanes_failing_together_leave_the_first_error_and_log_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = Db([f"P{x:06d}" for x in range(1, 201)], random.Random(3))
    _fake_sql(monkeypatch, db)

    async def failing(conn: Conn, values: dict[str, Any]) -> Any:
        if values["after"]:
            raise DatabaseGone("the second range's connection is gone")
        try:  # the first range, mid-statement when the group cancels it
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            raise DatabaseGone("its cancelled statement's connection was gone too") from None
        raise AssertionError("not cancelled")

    monkeypatch.setattr(sweep_sql, "run_chunk", failing)
    with pytest.raises(DatabaseGone, match="second range"):
        await sweeps._run(_ctx(db, 2, 10), RUN, [(0, STEP)], "", 1)
    assert "another lane failed too" in caplog.text
    assert "cancelled statement's connection was gone too" in caplog.text


@dataclass
class Finished:
    """What `_finish` did, with everything around it faked: the holds it recorded (the plan
    passed each time) and the statuses it set."""

    holds: list[Any] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)


class _Begin:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def _finish(monkeypatch: pytest.MonkeyPatch, decision: Any, held: dict[str, str] | None,
                  recorded: list[Any]) -> tuple[list[Any], Finished]:
    plan = [types.SimpleNamespace(row=types.SimpleNamespace(rule_id="r1", decision=decision))]
    seen = Finished()

    async def record_holds(ctx: Any, as_of: datetime, steps: Any) -> None:
        seen.holds.append(steps)

    async def set_run(conn: Any, sweep_id: str, **values: Any) -> None:
        seen.statuses.append(values["status"])

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(sweeps.rules, "sweep_plan", lambda *args: plan)
    monkeypatch.setattr(sweeps.freezes, "record_holds", record_holds)
    monkeypatch.setattr(sweeps.runs, "set_run", set_run)
    monkeypatch.setattr(sweeps, "refresh_gauge", nothing)
    monkeypatch.setattr(sweeps, "_run", nothing)
    ctx = types.SimpleNamespace(clock=types.SimpleNamespace(now=lambda: NOW),
                                settings=types.SimpleNamespace(
                                    notice_policy=None,
                                    sending_window=DEFAULT_CUSTOMER_WINDOW),
                                engine=types.SimpleNamespace(begin=_Begin))
    run = types.SimpleNamespace(as_of=NOW, business_date=date(2026, 11, 30), sweep_id="S1",
                                catch_up=False, held=held, confirmed=False)
    await sweeps._finish(ctx, run, types.SimpleNamespace(version=1), recorded)
    return plan, seen


@pytest.mark.parametrize("held", [None, {"kind": "guard"}])
async def test_a_run_found_with_every_step_done_still_records_its_freezes_holds(
    monkeypatch: pytest.MonkeyPatch, held: dict[str, str] | None
) -> None:
    """A crash between the last chunk's commit and the holds' record left the day's holds
    unrecorded: the resume finds nothing left to run, and records them then (held by the
    guard: the rest ran, its holds are recorded as well)."""
    warning = sweeps.DecisionType.SUSPENSION_WARNING
    done = [types.SimpleNamespace(done=True, rule_id="r1", decision=warning.value)]
    plan, seen = await _finish(monkeypatch, warning, held, done)
    assert seen.holds == [plan]
    assert seen.statuses == ["done" if held is None else "held"]


async def test_a_run_held_for_its_preview_records_no_holds(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of it ran: no product was held back by a freeze that day, by this run."""
    _, seen = await _finish(monkeypatch, sweeps.DecisionType.SUSPEND, {"kind": "preview"}, [])
    assert seen.holds == [] and seen.statuses == ["held"]
