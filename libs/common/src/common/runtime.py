"""What runs inside one service process besides the HTTP API: the outbox relay and the Kafka
consumers, supervised so a broken dependency is retried, never silently abandoned."""

import asyncio
import bisect
import contextlib
import gc
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import HistogramMetricFamily
from sqlalchemy.ext.asyncio import AsyncEngine

from common import metrics, poll_loop
from common.db import ping
from common.inbox import Inbox
from common.kafka import ConsumerRunner, Publisher, ensure_topics
from common.kafka_startup import wait_until_settled
from common.outbox import OutboxRelay
from common.settings import ServiceSettings

log = logging.getLogger(__name__)
# A worker that failed this recently is reported not ready, even between its restarts, so
# /readyz cannot flap to "ok" while it keeps failing.
FAILURE_MEMORY_S = 30.0


# The young generation's collection threshold (CPython's default is 700 allocations). A
# consumer batch of 5,000 events allocates hundreds of thousands of short-lived objects, and
# with the default every ~7 events paid a collection, and every tenth of those a walk of the
# older generation: 10–14 µs of the ~70 µs an event cost credit-control (bench/credit_bench.py
# --cpu-only). Cyclic garbage is still collected, just in larger, rarer sweeps.
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Once the process is built: what is alive now (modules, settings, compiled statements)
    lives as long as the process, so the collector stops walking it (`gc.freeze`); young
    objects are collected every `GC_GEN0_THRESHOLD` allocations instead of 700. Every
    collection's pause is measured (`creditctl_gc_pause_seconds`)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
    if GC_PAUSES.callback not in gc.callbacks:
        gc.callbacks.append(GC_PAUSES.callback)


# A collection that stops the process this long is logged too, with what it found.
GC_PAUSE_LOGGED_S = 0.05
GC_PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class _GcPauses:
    """Every collection's pause, by generation, as a histogram.

    The callback runs inside the collection, which can start at any allocation: also while
    a metric's (non re-entrant) lock is held by a scrape on the same thread, or a write to
    stdout is half done. So it only adds to plain lists; the histogram is built at scrape
    time (`collect`), and a long pause is logged from the event loop afterwards."""

    def __init__(self) -> None:
        self.buckets = [[0] * (len(GC_PAUSE_BUCKETS) + 1) for _ in range(3)]
        self.sums = [0.0] * 3
        self.started = 0.0
        self.long: deque[tuple[int, float, int, int]] = deque(maxlen=100)

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        pause = time.perf_counter() - self.started
        g = info["generation"]
        self.buckets[g][bisect.bisect_left(GC_PAUSE_BUCKETS, pause)] += 1
        self.sums[g] += pause
        if pause >= GC_PAUSE_LOGGED_S:
            self.long.append((g, pause, info["collected"], info["uncollectable"]))
            with contextlib.suppress(RuntimeError):  # no loop in this thread: logged later
                asyncio.get_running_loop().call_soon(self.log_long)

    def log_long(self) -> None:
        while self.long:
            g, pause, collected, uncollectable = self.long.popleft()
            log.warning("garbage collection of generation %d stopped the process for %.0f ms "
                        "(%d collected, %d uncollectable)", g, pause * 1000, collected,
                        uncollectable)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "creditctl_gc_pause_seconds",
            "Cyclic garbage collections of this process and how long each stopped it, by "
            "generation (every task of the process waits while one runs).",
            labels=["generation"])
        for g in range(3):
            counts = list(itertools.accumulate(self.buckets[g]))
            family.add_metric([str(g)], [*zip(map(str, GC_PAUSE_BUCKETS), counts[:-1],
                                               strict=True), ("+Inf", counts[-1])],
                              self.sums[g])
        yield family


GC_PAUSES = _GcPauses()
REGISTRY.register(GC_PAUSES)


class ServiceRuntime:
    def __init__(
        self, *, settings: ServiceSettings, engine: AsyncEngine, publisher: Publisher,
        relay: OutboxRelay, consumers: list[ConsumerRunner], topics: list[str],
        extra_tasks: list[Callable[[asyncio.Event], Awaitable[None]]] | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.publisher = publisher
        self.relay = relay
        self.consumers = consumers
        self.topics = topics
        self._extra = extra_tasks or []
        # Run once Kafka is up, before any loop starts (the simulation clock's catch-up: the
        # scheduler must not start on the wall clock's day).
        self.before_loops: list[Callable[[], Awaitable[None]]] = []
        self._inbox = inbox
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher_started = False
        self._failed_at: dict[str, float] = {}  # worker → when it last failed

    async def start(self) -> None:
        """Returns at once: the HTTP API serves (and /readyz tells) while Kafka comes up."""
        tune_gc()
        self._tasks = [asyncio.create_task(self._start_workers(), name="kafka-setup")]

    async def _start_workers(self) -> None:
        await _retry("kafka topics", self._stop, lambda: ensure_topics(
            self.settings.kafka_bootstrap, self.topics, self.settings.topic_partitions))
        # Consumers subscribe only once the topics have leaders and the groups a coordinator:
        # on a new broker they would otherwise log ERRORs for what Kafka is still making.
        await _retry("kafka topics settled", self._stop, lambda: wait_until_settled(
            self.settings.kafka_bootstrap, self.topics, [c.group_id for c in self.consumers]))
        await _retry("kafka producer", self._stop, self.publisher.start)
        if self._stop.is_set():
            return  # stopping before Kafka ever came up
        self._publisher_started = True
        for prepare in self.before_loops:
            await _retry(getattr(prepare, "__qualname__", "start-up step"), self._stop, prepare)
        if self._stop.is_set():
            return
        loops: list[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]] = [
            ("outbox-relay", self.relay.run), ("outbox-backlog", self._watch_backlog),
            ("housekeeping", self._housekeeping), ("consumer-stalls", self._watch_stalls),
            *((c.name, c.run) for c in self.consumers),
            *((getattr(t, "__name__", "task"), t) for t in self._extra),
        ]
        self._tasks += [
            asyncio.create_task(self._supervise(name, run), name=name) for name, run in loops
        ]

    def add_task(self, task: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """One more supervised loop (before `start`)."""
        self._extra.append(task)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=15)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._publisher_started:
            await self.publisher.stop()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(ping(self.engine), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        checks["kafka_producer"] = "ok" if self._publisher_started else "starting"
        workers = [t for t in self._tasks if t.get_name() != "kafka-setup"]
        recent = time.monotonic() - FAILURE_MEMORY_S
        failing = {name for name, at in self._failed_at.items() if at > recent}
        down = sorted({*(t.get_name() for t in workers if t.done()), *failing,
                       *poll_loop.failing(FAILURE_MEMORY_S)})
        checks["workers"] = ("starting" if not workers
                             else "ok" if not down else f"not running: {down}")
        checks["consumers"] = self._consumer_progress()
        return checks

    def _consumer_progress(self) -> str:
        """"ok", or which partitions are behind and have not advanced for a while."""
        stalled = [f"{c.name} {tp.topic}[{tp.partition}]"
                   for c in self.consumers for tp in c.stalled_partitions()]
        return f"stalled: {stalled}" if stalled else "ok"

    async def _watch_stalls(self, stop: asyncio.Event) -> None:
        """Keeps the stalled-partitions and per-partition lag gauges current between /readyz
        calls (the lag from the broker's end offsets, so a stuck partition's lag grows)."""
        while not stop.is_set():
            for consumer in self.consumers:
                consumer.stalled_partitions()
                try:
                    await consumer.refresh_lag()
                except Exception as exc:  # the broker away: the gauge keeps its last value
                    log.debug("%s: consumer lag not refreshed (%s: %s)", consumer.name,
                              type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)

    async def _supervise(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await run(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if time.monotonic() - started > 60:
                    backoff = 0.5  # it ran fine for a while: this is a new failure
                log.exception("%s stopped with an error; restarting in %.1fs", name, backoff)
                self._failed_at[name] = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 10.0)

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        """Prune what was published long ago and event ids older than Kafka's log."""
        s = self.settings

        async def step() -> bool:
            published = await self.relay.prune(s.outbox_retention_days)
            applied = (await self._inbox.prune(self.engine, s.inbox_retention_days)
                       if self._inbox else 0)
            log.info("housekeeping: pruned %d outbox and %d inbox rows", published, applied)
            return False

        await poll_loop.PollLoop("housekeeping", step, idle_s=s.housekeeping_interval_s,
                                 wait_first=True, backoff_min_s=1.0,
                                 backoff_max_s=60.0).run(stop)

    async def _watch_backlog(self, stop: asyncio.Event) -> None:
        schema = self.relay.schema
        while not stop.is_set():
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(schema).set(await self.relay.backlog())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)


async def _retry(
    what: str, stop: asyncio.Event, action: Callable[[], Awaitable[None]]
) -> None:
    """Until it works or the service stops: a broker that is late is not a reason to die."""
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            await action()
            return
        except Exception as exc:
            log.warning("%s not ready (%s: %s); attempt %d", what, type(exc).__name__, exc,
                        attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(attempt, 5))
