"""The soak, short (the CI version of `make soak`): bench/soak.py for ~30 s at a modest rate
against the session's services. Asserts outcomes only (no event lost, one bill notice and one
SMS per bill run, memory not running away); the latency and lag figures are printed, never
asserted (the machine is shared)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.testing.processes import ServiceProcesses

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
RATE = int(os.environ.get("CREDITCTL_SOAK_RATE", "200"))
DURATION = int(os.environ.get("CREDITCTL_SOAK_DURATION", "30"))
# Loose on purpose: a service may settle caches, pools and prepared statements in its
# first seconds; what must not happen is growth with the number of events handled.
RSS_GROWTH_MB = 150


def test_short_soak_loses_nothing_and_memory_stays_bounded(
    services: ServiceProcesses, tmp_path: Path,
) -> None:
    out = tmp_path / "soak.json"
    pids = ",".join(f"{n}={p}" for n, p in services.pids().items())
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--rate", str(RATE),
         "--duration", str(DURATION), "--sample", "3", "--drain-timeout", "180",
         "--pids", pids, "--json", str(out)],
        capture_output=True, text=True, timeout=DURATION + 400, check=False)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "soak-short.json").write_text(out.read_text())

    assert result["events"] > 0
    assert result["lost"] == 0, f"{result['lost']} balance events never applied"
    assert result["decisions"] == result["bill_runs"]  # one bill notice per bill run
    assert result["sms"] == result["decisions"]  # one contact each: one SMS per notice
    # Between 21:00 and 08:00 Asia/Shanghai the bill notices are held for quiet hours, and
    # the settle burst's payments make them stale: cancelled with their reason, never sent.
    assert result["sms_submitted"] + result["sms_held"] + result["sms_cancelled"] == result["sms"]
    assert result["drain_s"] == result["drain_s"], "did not drain (lag or SMS left)"  # not NaN
    for name, start in result["rss_mb_start"].items():
        end = result["rss_mb_end"][name]
        assert start and end, f"{name}: no memory reading"
        assert end - start < RSS_GROWTH_MB, f"{name}: RSS {start:.0f} → {end:.0f} MB"
