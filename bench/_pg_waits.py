"""What PostgreSQL's backends did while a bench ran: their wait events, sampled, and the
cluster's WAL counters (pg_stat_wal) before and after.

A bench on this 2-core machine asks whether its statements wait (on a lock, on WAL, on I/O)
or run: if they run ("CPU" below: active, no wait event), only less work makes them faster;
if they wait, a setting or a second lane may. Sampled every `every_s` (the benches: 50 ms)
through a connection of its own, so it costs the bench one small query per sample.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# pg_stat_wal's counters (PostgreSQL 14+); the cluster's, so the bench must run alone.
_WAL = ("SELECT wal_records, wal_fpi, wal_bytes::bigint AS wal_bytes, wal_buffers_full, "
        "wal_write, wal_sync FROM pg_stat_wal")
# The database's active client backends but the sampler's own; NULL wait event: running.
_WAITS = ("SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity "
          "WHERE datname = current_database() AND state = 'active' "
          "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")


async def wal_stats(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(_WAL)
    return {k: int(v) for k, v in dict(row).items()} if row is not None else {}


def wal_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


@dataclass
class Waits:
    """Samples of what each active backend was doing: `CPU` or `type:event`; `busy`: the
    samples in which at least one backend was active (the rest, the database idle)."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    busy: int = 0

    def shares(self, top: int = 6) -> list[tuple[str, float]]:
        total = sum(self.counts.values())
        return [(k, v / total) for k, v in self.counts.most_common(top)] if total else []

    def text(self, top: int = 6) -> str:
        return ", ".join(f"{k} {share:.0%}" for k, share in self.shares(top)) or "no samples"


@contextlib.asynccontextmanager
async def sampled(dsn: str, every_s: float = 0.02) -> AsyncIterator[Waits]:
    """Samples the database's backends' wait events while the block runs."""
    waits = Waits()
    conn = await asyncpg.connect(dsn)
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            rows = await conn.fetch(_WAITS)
            for (event,) in rows:
                waits.counts[event] += 1
            waits.samples += 1
            waits.busy += bool(rows)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    task = asyncio.create_task(sample())
    try:
        yield waits
    finally:
        stop.set()
        await task
        await conn.close()


def report(wal: dict[str, Any], waits: Waits) -> str:
    """One line: the WAL writes backends made because the WAL buffers were full, and where
    the backends' time went."""
    writes = wal.get("wal_write", 0)
    full = wal.get("wal_buffers_full", 0)
    return (f"WAL writes {writes:,} ({full:,} by a backend finding the WAL buffers full), "
            f"{wal.get('wal_fpi', 0):,} full-page images; backends sampled {waits.samples:,} "
            f"times: {waits.text()}")


def busy_report(waits: Waits) -> str:
    """How often any backend was active, and doing what."""
    share = waits.busy / waits.samples if waits.samples else 0.0
    at_once = sum(waits.counts.values()) / waits.busy if waits.busy else 0.0
    return (f"a backend active in {share:.0%} of {waits.samples:,} samples, {at_once:.1f} at "
            f"once when any; of the active backends' samples: {waits.text()}")
