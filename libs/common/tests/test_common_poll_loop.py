"""common.poll_loop.PollLoop: woken at once, idles up to its interval, stops promptly, backs off
with jitter after failures (never dies of one), remembers its last success."""

import asyncio
import random
import time

import pytest

from common.poll_loop import PollLoop


class Steps:
    """A step that records when it ran and fails the first `failing` times."""

    def __init__(self, failing: int = 0, busy: int = 0,
                 error: Exception | None = None) -> None:
        self.at: list[float] = []
        self.failing, self.busy = failing, busy
        self.error = error or ConnectionResetError("database away")

    async def __call__(self) -> bool:
        self.at.append(time.monotonic())
        if self.failing:
            self.failing -= 1
            raise self.error
        if self.busy:
            self.busy -= 1
            return True
        return False


async def until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not reached"
        await asyncio.sleep(0.005)


async def test_a_wake_runs_the_step_at_once_and_the_interval_bounds_the_idle() -> None:
    step, wake, stop = Steps(), asyncio.Event(), asyncio.Event()
    loop = PollLoop("t", step, idle_s=30.0, wake=wake)
    task = asyncio.create_task(loop.run(stop))
    await until(lambda: len(step.at) == 1)
    await asyncio.sleep(0.05)
    assert len(step.at) == 1  # idle: nothing to do, not woken
    woken = time.monotonic()
    wake.set()
    await until(lambda: len(step.at) == 2)
    assert step.at[1] - woken < 1.0
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)

    step2 = Steps()
    loop2 = PollLoop("t", step2, idle_s=0.05)
    task = asyncio.create_task(loop2.run(stop := asyncio.Event()))
    await until(lambda: len(step2.at) >= 3)  # no wake-up: every interval
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


async def test_a_wake_during_the_step_is_not_lost() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    calls: list[float] = []

    async def step() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:
            wake.set()  # new work committed while this step ran
        return False

    task = asyncio.create_task(PollLoop("t", step, idle_s=30.0, wake=wake).run(stop))
    await until(lambda: len(calls) == 2, timeout=2.0)
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


async def test_busy_steps_run_back_to_back_and_stop_ends_an_idle_at_once() -> None:
    step, stop = Steps(busy=5), asyncio.Event()
    loop = PollLoop("t", step, idle_s=30.0)
    task = asyncio.create_task(loop.run(stop))
    await until(lambda: len(step.at) == 6)
    stopped = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)
    assert time.monotonic() - stopped < 0.5


async def test_failures_back_off_with_jitter_and_a_success_resets_it() -> None:
    step, stop = Steps(failing=4), asyncio.Event()
    loop = PollLoop("t", step, idle_s=30.0, backoff_min_s=0.02, backoff_max_s=0.08,
                    wake=asyncio.Event())
    task = asyncio.create_task(loop.run(stop))
    await until(lambda: len(step.at) == 5)  # four failures, then a success
    assert loop.failures == 0 and loop.last_success is not None
    gaps = [b - a for a, b in zip(step.at, step.at[1:], strict=False)]
    assert all(g >= 0.019 for g in gaps)  # never retried before the backoff's floor
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


def test_the_backoff_doubles_within_its_bounds_with_full_jitter() -> None:
    loop = PollLoop("t", Steps(), idle_s=1.0, backoff_min_s=0.1, backoff_max_s=5.0,
                    _rng=random.Random(7))
    for failures, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (30, 5.0)]:
        loop.failures = failures
        drawn = [loop.backoff_s() for _ in range(200)]
        assert all(0.1 <= d <= ceiling for d in drawn)
        if ceiling > 0.1:
            assert max(drawn) - min(drawn) > ceiling / 4  # spread: instances do not sync


async def test_a_wake_does_not_cut_a_backoff_short() -> None:
    step, wake, stop = Steps(failing=1), asyncio.Event(), asyncio.Event()
    loop = PollLoop("t", step, idle_s=30.0, wake=wake, backoff_min_s=0.3, backoff_max_s=0.3)
    task = asyncio.create_task(loop.run(stop))
    await until(lambda: len(step.at) == 1)
    wake.set()
    await until(lambda: len(step.at) == 2)
    assert step.at[1] - step.at[0] >= 0.29
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


@pytest.mark.parametrize("error", [ConnectionResetError("away"), ValueError("a bug")])
async def test_the_loop_never_dies_of_a_failed_step_and_reports_it(error: Exception) -> None:
    step, stop = Steps(failing=3, error=error), asyncio.Event()
    loop = PollLoop("t", step, idle_s=30.0, backoff_min_s=0.01, backoff_max_s=0.01)
    assert loop.healthy(within_s=60)
    task = asyncio.create_task(loop.run(stop))
    await until(lambda: loop.failures >= 2)
    assert not loop.healthy(within_s=60)  # failing and never succeeded
    await until(lambda: len(step.at) == 4)
    assert loop.healthy(within_s=60)
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


async def test_wait_first_idles_before_the_first_step() -> None:
    step, stop = Steps(), asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(PollLoop("t", step, idle_s=0.2, wait_first=True).run(stop))
    await until(lambda: len(step.at) == 1)
    assert step.at[0] - started >= 0.19
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)
