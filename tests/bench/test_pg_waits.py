"""bench/_pg_waits.py: what the database's backends did while a bench ran. A backend that
waits is counted under its wait event, one that runs as CPU; the sampler never counts
itself; the WAL counters are differences over the run."""

import sys
from pathlib import Path

import asyncpg
import pytest

from common.testing.stack import Stack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _pg_waits import Waits, busy_report, report, sampled, wal_delta, wal_stats
from _scratch import asyncpg_dsn


def test_the_report_says_where_the_time_went() -> None:
    waits = Waits(samples=4)
    waits.counts.update(["CPU", "CPU", "CPU", "LWLock:WALWrite"])
    wal = wal_delta({"wal_write": 10, "wal_buffers_full": 2, "wal_fpi": 0},
                    {"wal_write": 110, "wal_buffers_full": 42, "wal_fpi": 5})
    assert wal == {"wal_write": 100, "wal_buffers_full": 40, "wal_fpi": 5}
    assert report(wal, waits) == (
        "WAL writes 100 (40 by a backend finding the WAL buffers full), 5 full-page images; "
        "backends sampled 4 times: CPU 75%, LWLock:WALWrite 25%")
    assert Waits().text() == "no samples"
    waits.busy = 2
    assert busy_report(waits) == (
        "a backend active in 50% of 4 samples, 2.0 at once when any; of the active backends' "
        "samples: CPU 75%, LWLock:WALWrite 25%")


@pytest.mark.integration
async def test_a_waiting_backend_is_counted_under_its_wait_event(stack: Stack) -> None:
    dsn = asyncpg_dsn(stack.database_url)
    sleeper = await asyncpg.connect(dsn)
    try:
        async with sampled(dsn, every_s=0.01) as waits:
            await sleeper.execute("SELECT pg_sleep(0.3)")
        wal = await wal_stats(sleeper)
    finally:
        await sleeper.close()
    assert waits.samples >= 5
    # The sleeping backend, under its wait event in most samples (the sampler never counts
    # itself: it is always active while it samples, and would show as CPU in every one).
    assert waits.counts["Timeout:PgSleep"] >= 5
    assert waits.counts["CPU"] < waits.samples
    assert waits.busy >= waits.counts["Timeout:PgSleep"]
    assert set(wal) == {"wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write",
                        "wal_sync"}
