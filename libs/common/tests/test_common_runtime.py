"""Readiness tells the truth about supervised workers, without Kafka or PostgreSQL."""

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from common.runtime import ServiceRuntime
from common.settings import ServiceSettings


def runtime() -> ServiceRuntime:
    # Nothing listens on port 1: the database check fails fast, the worker checks don't care.
    engine = create_async_engine("postgresql+asyncpg://x:x@127.0.0.1:1/x")
    unused: Any = None  # publisher and relay are not touched by these checks
    return ServiceRuntime(settings=ServiceSettings(), engine=engine, publisher=unused,
                          relay=unused, consumers=[], topics=[])


async def test_a_worker_that_keeps_failing_is_not_ready_between_restarts() -> None:
    rt = runtime()
    calls = {"n": 0}

    async def flaky(stop: asyncio.Event) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("broker gone")
        await stop.wait()  # second start: runs fine until stopped

    task = asyncio.create_task(rt._supervise("flaky", flaky), name="flaky")
    rt._tasks = [task]
    for _ in range(100):
        if calls["n"] >= 2:
            break
        await asyncio.sleep(0.05)
    assert calls["n"] == 2  # restarted after its backoff
    checks = await rt.readiness()
    assert checks["workers"] == "not running: ['flaky']"  # it failed moments ago
    assert checks["database"].startswith("error")
    rt._stop.set()
    await task
    await rt.engine.dispose()


async def test_healthy_workers_are_ready() -> None:
    rt = runtime()

    async def steady(stop: asyncio.Event) -> None:
        await stop.wait()

    rt._tasks = [asyncio.create_task(rt._supervise("steady", steady), name="steady")]
    await asyncio.sleep(0.05)
    assert (await rt.readiness())["workers"] == "ok"
    rt._stop.set()
    await rt._tasks[0]
    await rt.engine.dispose()


async def test_a_poll_loop_that_keeps_failing_is_not_ready_while_it_runs() -> None:
    from common.poll_loop import PollLoop

    rt = runtime()
    failing = {"on": True}

    async def step() -> bool:
        if failing["on"]:
            raise ConnectionResetError("database away")
        return False

    loop = PollLoop("sms sender", step, idle_s=0.01, backoff_min_s=0.01, backoff_max_s=0.01)
    rt._tasks = [asyncio.create_task(rt._supervise("sender", loop.run), name="sender")]
    for _ in range(100):
        if loop.failures >= 2:
            break
        await asyncio.sleep(0.01)
    assert (await rt.readiness())["workers"] == "not running: ['sms sender']"
    failing["on"] = False
    for _ in range(100):
        if loop.failures == 0:
            break
        await asyncio.sleep(0.01)
    assert (await rt.readiness())["workers"] == "ok"
    rt._stop.set()
    await rt._tasks[0]
    await rt.engine.dispose()
