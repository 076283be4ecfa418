"""The ha stack's faults and probes for tests/chaos_ha: which broker leads the busiest
partitions, kill -9 a broker or a PostgreSQL node (deploy/local/ha.sh), how long until a write
goes through the multi-host URL again, and what the clients saw meanwhile."""

import asyncio
import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from common.kafka import dead_letter_topic

ROOT = Path(__file__).resolve().parents[2]
HA = ROOT / "deploy" / "local" / "ha.sh"


def on_ha_stack() -> bool:
    return os.environ.get("STACK") == "ha"


def ha(*args: str) -> str:
    """A verb of deploy/local/ha.sh (broker-kill 2, pg-kill a, pg-primary, ...)."""
    done = subprocess.run(["bash", str(HA), *args], check=True, capture_output=True,
                          text=True, env=os.environ.copy())
    return done.stdout.strip()


async def busiest_leader(bootstrap: str, topic: str) -> tuple[int, dict[int, int]]:
    """The broker leading the most records of `topic` (its partitions' end offsets summed),
    and records led per broker."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(parts)
        led: dict[int, int] = {}
        for tp in parts:
            leader = consumer._client.cluster.leader_for_partition(tp)
            led[leader] = led.get(leader, 0) + ends[tp]
    finally:
        await consumer.stop()
    return max(led, key=lambda b: led[b]), led


async def dead_letters(bootstrap: str, topics: tuple[str, ...]) -> dict[str, int]:
    """Records in each consumed topic's dead-letter topic (the whole topic: this stack runs
    no poison test, so every dead letter would be an event a fault cost)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, int] = {}
    try:
        await consumer._client.force_metadata_update()
        for topic in topics:
            dlq = dead_letter_topic(topic)
            parts = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or ()]
            found[dlq] = sum((await consumer.end_offsets(parts)).values()) if parts else 0
    finally:
        await consumer.stop()
    return found


async def first_write_after(database_url: str, since: float, timeout: float = 300) -> float:
    """Seconds from `since` until a write commits through the multi-host read-write URL
    (a fresh connection each try, as a service's pool opens after losing its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        engine = create_async_engine(database_url, poolclass=NullPool,
                                     connect_args={"timeout": 3})
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT txid_current()"))  # needs a primary
            return time.monotonic() - since
        except Exception:  # anything: the primary is not there yet
            await asyncio.sleep(0.25)
        finally:
            await engine.dispose()
    raise TimeoutError(f"no primary accepted a write within {timeout}s")


async def wait_pg_settled(timeout: float = 300) -> str:
    """Waits until the monitor shows a primary and a secondary, both settled; the primary."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = await asyncio.to_thread(ha, "pg-state")
        rows = [line.split() for line in states.splitlines() if line.strip()]
        settled = {r[2] for r in rows if len(r) == 4 and r[2] == r[3]}
        if {"primary", "secondary"} <= settled:
            return await asyncio.to_thread(ha, "pg-primary")
        await asyncio.sleep(1)
    raise TimeoutError(f"postgres not back to primary + secondary: {states}")


class Seen:
    """What clients saw: HTTP 5xx answers and transport errors, per service; and /readyz
    answers other than 200 while a fault lasts (how many, and from the first to the last)."""

    def __init__(self) -> None:
        self.errors: dict[str, int] = {}
        self.not_ready: dict[str, int] = {}
        self.unready_span: dict[str, tuple[float, float]] = {}  # first, last non-200

    def take(self) -> dict[str, Any]:
        out = {"client_errors": dict(self.errors), "readyz_not_ready": dict(self.not_ready),
               "readyz_unready_s": {name: round(last - first, 1)
                                    for name, (first, last) in self.unready_span.items()}}
        self.errors.clear()
        self.not_ready.clear()
        self.unready_span.clear()
        return out

    def unready(self, name: str) -> None:
        now = time.monotonic()
        self.not_ready[name] = self.not_ready.get(name, 0) + 1
        first, _ = self.unready_span.get(name, (now, now))
        self.unready_span[name] = (first, now)

    def count(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


class _CountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, seen: Seen, name: str) -> None:
        super().__init__(limits=httpx.Limits(keepalive_expiry=2.0))
        self.seen, self.name = seen, name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            self.seen.count(f"{self.name} {type(exc).__name__}")
            raise
        if response.status_code >= 500:
            self.seen.count(f"{self.name} {response.status_code}")
        return response


def counting_clients(urls: dict[str, str], token: str, seen: Seen) -> dict[str, httpx.AsyncClient]:
    return {name: httpx.AsyncClient(base_url=url, timeout=90,
                                    transport=_CountingTransport(seen, name),
                                    headers={"Authorization": f"Bearer {token}"})
            for name, url in urls.items()}


async def watch_readyz(urls: dict[str, str], seen: Seen, stop: asyncio.Event) -> None:
    """Polls every service's /readyz twice a second until `stop`; counts non-200 answers."""
    async with httpx.AsyncClient(timeout=3) as client:
        while not stop.is_set():
            for name, url in urls.items():
                try:
                    ok = (await client.get(f"{url}/readyz")).status_code == 200
                except httpx.TransportError:
                    ok = False
                if not ok:
                    seen.unready(name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
