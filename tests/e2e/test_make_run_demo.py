"""`make run`'s demo loads and shows what it promises: `deploy/local/run.py --check` starts a
stack of its own, migrates, starts the four services as `make run` does, loads the demo, checks
what deploy/local/demo.py's list promises (demo.check_demo) and stops everything, exit 0 or 1.

Before it, nothing ran the demo: it was broken for a whole session ("credit-control did not
show the suspensions", f2413a1) and every test passed. It cannot run on the test stack: its
sweeps act on every product in the database, and a second credit-control there would join the
test services' consumer groups on the same topics. So the check gets a fresh stack, named after
its ports, which is reset before (a fresh database, as on a first `make run`) and after.

Ports: the session's CREDITCTL_TEST_BASE_PORT + 90..98 (no other test uses them), so runs on
other base ports never meet: the services +91..+94, CMPP +95, PostgreSQL +96, Kafka +97, its
controller +98. CREDITCTL_DEMO_CHECK_BASE_PORT gives another base."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.testing.stack import stack_from_env, stack_required

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
BASE = int(os.environ.get("CREDITCTL_DEMO_CHECK_BASE_PORT")
           or int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100")) + 90)
STACK = f"demo{BASE}"
# A check takes 30-45 s here (Kafka's start 3-7 s of it); a broken demo fails within about
# two minutes (the loader's and the check's 60 s waits). Far above both: the machine is shared.
TIMEOUT_S = 420
# Grace after SIGTERM: run.py stops the services (20 s each at most) and the stack (Kafka 30 s).
STOP_GRACE_S = 120
# What scripts/test.sh and the root conftest export for the suite: `make run` has none of it
# (it finds its own stack, makes its own tokens, turns simulation mode on by itself).
NOT_MAKE_RUNS = ("STACK", "DATABASE_URL", "KAFKA_BOOTSTRAP", "CREDITCTL_DATABASE_URL",
                 "CREDITCTL_KAFKA_BOOTSTRAP", "CREDITCTL_SIMULATION_MODE", "CREDITCTL_API_TOKEN",
                 "CREDITCTL_API_TOKENS", "CREDITCTL_RUN_DETACH")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_MAKE_RUNS}
    return {**env, "CREDITCTL_RUN_STACK": STACK, "CREDITCTL_RUN_BASE_PORT": str(BASE),
            # test.sh exports the test stack's PG_PORT and KAFKA_PORT: replaced, all three.
            "PG_PORT": str(BASE + 6), "KAFKA_PORT": str(BASE + 7),
            "KAFKA_CONTROLLER_PORT": str(BASE + 8),
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m"}  # seven groups' worth of events


def _tidy(env: dict[str, str]) -> None:
    """Ends a run of this stack that outlived its launcher, then deletes the stack's data."""
    subprocess.run([sys.executable, "deploy/local/run.py", "--stop"], cwd=ROOT, env=env,
                   check=False, capture_output=True, timeout=60)
    subprocess.run(["bash", "deploy/local/stack.sh", "reset"], cwd=ROOT,
                   env={**env, "STACK": STACK}, check=True, capture_output=True, timeout=180)


def _end(check: subprocess.Popen[str]) -> str:
    """SIGTERM: run.py stops what it started; after the grace its whole process group (the
    launcher and the services it started; the stack is reset afterwards) is killed."""
    check.send_signal(signal.SIGTERM)
    try:
        out, _ = check.communicate(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # gone in the meantime
            os.killpg(check.pid, signal.SIGKILL)
        out, _ = check.communicate()
    return out


def test_make_run_loads_the_demo_and_shows_what_it_promises() -> None:
    # Like every integration test, only under `make test` (Java, PostgreSQL, the Kafka jars).
    if stack_from_env() is None and not stack_required():
        pytest.skip("runs under `make test`")
    env = _env()
    _tidy(env)
    began = time.monotonic()
    # Its own session: a timeout ends the launcher and its services, nothing of pytest's.
    check = subprocess.Popen([sys.executable, "deploy/local/run.py", "--check"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    timed_out = False
    try:
        try:
            out, _ = check.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            timed_out = True
            out = _end(check)
        took = time.monotonic() - began
        print(out)
        print(f"run.py --check: exit {check.returncode} in {took:.0f} s")
        logs = ROOT / ".local" / STACK / "logs"
        if check.returncode != 0 and logs.is_dir():
            # The services' and the stack's logs, before the reset below deletes them.
            kept = ROOT / "test-artifacts" / f"logs-{STACK}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(logs, kept)
    finally:
        if check.poll() is None:
            _end(check)
        _tidy(env)
        stacks = Path(os.environ.get("STACK_ROOT") or ROOT / ".local")  # as stack.sh
        (stacks / f".{STACK}.lock").unlink(missing_ok=True)  # reset keeps it
        shutil.rmtree(ROOT / ".local" / STACK, ignore_errors=True)  # run.py's, if reset left it
    assert not timed_out, f"run.py --check did not finish within {TIMEOUT_S} s:\n{out[-6000:]}"
    assert check.returncode == 0, f"make run's demo is broken:\n{out[-6000:]}"
    assert "check: OK" in out, out[-6000:]
