"""What runs inside one service process besides the HTTP API: the outbox relay and the Kafka
consumers, supervised so a broken dependency is retried, never silently abandoned."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from common import metrics
from common.db import ping
from common.kafka import ConsumerRunner, Publisher, ensure_topics
from common.outbox import OutboxRelay
from common.settings import ServiceSettings

log = logging.getLogger(__name__)


class ServiceRuntime:
    def __init__(
        self, *, settings: ServiceSettings, engine: AsyncEngine, publisher: Publisher,
        relay: OutboxRelay, consumers: list[ConsumerRunner], topics: list[str],
        extra_tasks: list[Callable[[asyncio.Event], Awaitable[None]]] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.publisher = publisher
        self.relay = relay
        self.consumers = consumers
        self.topics = topics
        self._extra = extra_tasks or []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher_started = False

    async def start(self) -> None:
        await _retry("kafka topics", lambda: ensure_topics(
            self.settings.kafka_bootstrap, self.topics, self.settings.topic_partitions))
        await _retry("kafka producer", self.publisher.start)
        self._publisher_started = True
        loops: list[tuple[str, Callable[[asyncio.Event], Awaitable[None]]]] = [
            ("outbox-relay", self.relay.run), ("outbox-backlog", self._watch_backlog),
            *((c.name, c.run) for c in self.consumers),
            *((getattr(t, "__name__", "task"), t) for t in self._extra),
        ]
        self._tasks = [
            asyncio.create_task(self._supervise(name, run), name=name) for name, run in loops
        ]

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
        dead = [t.get_name() for t in self._tasks if t.done()]
        checks["workers"] = "ok" if self._tasks and not dead else f"not running: {dead}"
        return checks

    async def _supervise(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                await run(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s stopped with an error; restarting in %.1fs", name, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 10.0)

    async def _watch_backlog(self, stop: asyncio.Event) -> None:
        schema = self.relay.schema
        while not stop.is_set():
            with contextlib.suppress(Exception):
                metrics.OUTBOX_BACKLOG.labels(schema).set(await self.relay.backlog())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)


async def _retry(what: str, action: Callable[[], Awaitable[None]], attempts: int = 60) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await action()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("%s not ready (%s); attempt %d", what, type(exc).__name__, attempt)
            await asyncio.sleep(1.0)
