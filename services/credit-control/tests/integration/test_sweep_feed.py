"""A new sweep waits for the balance feed (credit/service_layer/feed_wait.py), as the use case
runs it in-process on the real database with the in-memory feed: caught up, it runs; never
caught up, it is refused with nothing written and its id free, and the same request runs once
the feed caught up; a sweep already started finishes without asking; the scheduler retries a
refused day as of its own moment, under its own id."""

import asyncio
import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.snapshots import ProductFamily, Tier
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.polling import eventually
from common.testing.stack import Stack
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.adapters.balance_feed import InMemoryBalanceFeed
from credit_control.credit.domain.commands import RunSweep
from credit_control.credit.service_layer import sweeps
from credit_control.credit.service_layer.feed_wait import FeedBehind
from credit_control.metrics import SWEEPS_DEFERRED
from credit_control.service_layer.context import CreditContext

from .helpers import CreditApi, at, fresh_year, ledger, new_uid

pytestmark = [pytest.mark.integration]

BALANCE = ("billing.balance.v1", 0)


def _ctx(db: AsyncEngine, stack: Stack, feed: InMemoryBalanceFeed, now: datetime,
         **settings: Any) -> CreditContext:
    s = Settings(database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap,
                 **{"sweep_feed_wait_s": 0.5, **settings})
    return CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                         FixedClock(now), settings=s, feed=feed)


def _behind() -> InMemoryBalanceFeed:
    feed = InMemoryBalanceFeed()
    feed.publish(BALANCE, 5)
    feed.apply(BALANCE, 2)
    return feed


async def _written(db: AsyncEngine, sweep_id: str) -> dict[str, int]:
    async with db.connect() as conn:
        return {name: int(await conn.scalar(text(query), {"s": sweep_id}) or 0)
                for name, query in {
                    "runs": "SELECT count(*) FROM credit.sweep_runs WHERE sweep_id = :s",
                    "steps": "SELECT count(*) FROM credit.sweep_steps WHERE sweep_id = :s",
                    "holds": "SELECT count(*) FROM credit.sweep_holds WHERE sweep_id = :s",
                    "keys": "SELECT count(*) FROM credit.idempotency_keys "
                            "WHERE scope = 'sweep' AND key = :s"}.items()}


async def _fresh_year(api: CreditApi, db: AsyncEngine, test_year: int) -> int:
    """A year no decision was taken in yet, then taken: a bill run decided in it, so the
    next call (and the next session) takes another."""
    y = await fresh_year(db, test_year)
    lg = ledger(new_uid(), "feed", ProductFamily.ADC, Tier.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9))))
    return y


async def test_a_caught_up_feed_lets_a_new_sweep_run(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    y = await _fresh_year(api, db, test_year)
    feed = InMemoryBalanceFeed()
    feed.publish(BALANCE, 3)
    feed.apply_all()
    sweep_id = f"feed-ok-{new_uid()}"
    ctx = _ctx(db, stack, feed, at(date(y, 10, 26)))
    stored = await sweeps.run_sweep(ctx, RunSweep(sweep_id=sweep_id, as_of=at(date(y, 10, 25))))
    assert (stored.status_code, stored.body["status"]) == (201, "done")
    assert feed.asked == 1


async def test_never_caught_up_refuses_writes_nothing_and_the_same_id_runs_after(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    y = await _fresh_year(api, db, test_year)
    feed = _behind()
    ctx = _ctx(db, stack, feed, at(date(y, 10, 26)))
    cmd = RunSweep(sweep_id=f"feed-behind-{new_uid()}", as_of=at(date(y, 10, 25)))
    deferred = SWEEPS_DEFERRED._value.get()
    started = time.monotonic()
    with pytest.raises(FeedBehind) as refused:
        await sweeps.run_sweep(ctx, cmd)
    assert 0.5 <= time.monotonic() - started < 5
    assert refused.value.body()["lag"] == [
        {"topic": BALANCE[0], "partition": 0, "end": 5, "applied": 2, "behind": 3}]
    assert SWEEPS_DEFERRED._value.get() == deferred + 1
    # No run, no step, no hold; the id's reservation released.
    assert await _written(db, cmd.sweep_id) == {"runs": 0, "steps": 0, "holds": 0, "keys": 0}

    feed.apply_all()  # the consumer caught up: the same request is sent again
    stored = await sweeps.run_sweep(ctx, cmd)
    assert (stored.status_code, stored.body["status"]) == (201, "done")
    assert (await _written(db, cmd.sweep_id))["runs"] == 1
    # Its answer is stored: a replay asks nothing of the feed.
    feed.publish(BALANCE, 10)
    asked = feed.asked
    assert await sweeps.run_sweep(ctx, cmd) == stored
    assert feed.asked == asked


async def test_a_sweep_already_started_finishes_without_waiting_for_the_feed(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    """A run recorded (its process died before it decided anything) resumes on what it
    started with: re-posting it does not wait, even for a feed that never catches up."""
    y = await _fresh_year(api, db, test_year)
    feed = _behind()
    ctx = _ctx(db, stack, feed, at(date(y, 10, 26)), sweep_feed_wait_s=60)
    cmd = RunSweep(sweep_id=f"feed-resume-{new_uid()}", as_of=at(date(y, 10, 25)))
    await sweeps._start(ctx, cmd.sweep_id, cmd.as_of, False)
    started = time.monotonic()
    stored = await sweeps.run_sweep(ctx, cmd)
    assert time.monotonic() - started < 30
    assert stored.body["status"] == "done"
    assert feed.asked == 0


async def test_a_refused_scheduled_day_runs_later_as_of_its_own_moment_under_its_id(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    y = await _fresh_year(api, db, test_year)
    due = datetime(y, 10, 25, 9, 30, tzinfo=BUSINESS_TZ)
    schedule = {"scheduler_enabled": True, "scheduler_time": "09:30",
                "scheduler_catch_up_days": 0, "scheduler_month_end_catch_up_days": 0}
    feed = _behind()
    with pytest.raises(FeedBehind):
        await sweeps.run_due(_ctx(db, stack, feed, due, **schedule), due + timedelta(seconds=1))
    sweep_id = f"auto-{y}-10-25"
    assert await _written(db, sweep_id) == {"runs": 0, "steps": 0, "holds": 0, "keys": 0}

    # Caught up ten minutes later, past the grace: the day runs as of 09:30, a catch-up.
    feed.apply_all()
    later = due + timedelta(minutes=10)
    assert await sweeps.run_due(_ctx(db, stack, feed, later, **schedule), later) == [sweep_id]
    async with db.connect() as conn:
        run = (await conn.execute(text(
            "SELECT as_of, catch_up, status FROM credit.sweep_runs WHERE sweep_id = :s"),
            {"s": sweep_id})).one()
    assert (run.as_of, run.catch_up, run.status) == (due, True, "done")


async def test_the_scheduler_loop_retries_a_day_refused_for_the_feed(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    """The scheduler as credit-control runs it: the refused step fails, its loop backs off
    and tries the day again; once the feed caught up, the day runs as of its own moment."""
    y = await _fresh_year(api, db, test_year)
    due = datetime(y, 10, 25, 9, 30, tzinfo=BUSINESS_TZ)
    feed = _behind()
    ctx = _ctx(db, stack, feed, due + timedelta(seconds=1), scheduler_enabled=True,
               scheduler_time="09:30", scheduler_catch_up_days=0,
               scheduler_month_end_catch_up_days=0)
    deferred = SWEEPS_DEFERRED._value.get()
    stop = asyncio.Event()
    task = asyncio.create_task(sweeps.scheduler(ctx)(stop))
    sweep_id = f"auto-{y}-10-25"
    try:
        await eventually(lambda: _deferred(), lambda n: n >= deferred + 2,
                         what="the day refused twice (the loop retried it)", timeout=30)
        assert (await _written(db, sweep_id))["runs"] == 0
        feed.apply_all()
        await eventually(lambda: _written(db, sweep_id), lambda w: w["runs"] == 1,
                         what="the day ran once the feed caught up", timeout=30)
    finally:
        stop.set()
        await task
    async with db.connect() as conn:
        run = (await conn.execute(text(
            "SELECT as_of, catch_up FROM credit.sweep_runs WHERE sweep_id = :s"),
            {"s": sweep_id})).one()
    assert (run.as_of, run.catch_up) == (due, False)


async def _deferred() -> float:
    return SWEEPS_DEFERRED._value.get()


class _ReleasedWhileWaiting(InMemoryBalanceFeed):
    """Caught up, but while this post waits, a concurrent post of the same new id was
    refused for the feed and released the id's reservation (what `released_on_refusal`
    does for it)."""

    def __init__(self, db: AsyncEngine, sweep_id: str) -> None:
        super().__init__()
        self.db, self.sweep_id = db, sweep_id

    async def applied(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        async with self.db.begin() as conn:
            await IdempotencyKeys(t.idempotency_keys).release(conn, "sweep", self.sweep_id)
        return await super().applied(partitions)


async def test_a_reservation_released_by_a_refused_twin_is_taken_again_not_a_500(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    y = await _fresh_year(api, db, test_year)
    cmd = RunSweep(sweep_id=f"feed-twin-{new_uid()}", as_of=at(date(y, 10, 25)))
    feed = _ReleasedWhileWaiting(db, cmd.sweep_id)
    ctx = _ctx(db, stack, feed, at(date(y, 10, 26)))
    stored = await sweeps.run_sweep(ctx, cmd)
    assert (stored.status_code, stored.body["status"]) == (201, "done")
    # The answer is stored under the id: a replay gives it back without running again.
    written = await _written(db, cmd.sweep_id)
    assert (written["runs"], written["keys"]) == (1, 1)
    assert await sweeps.run_sweep(_ctx(db, stack, InMemoryBalanceFeed(), at(date(y, 10, 26))),
                                  cmd) == stored
