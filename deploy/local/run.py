"""`make run`: the whole system on this machine, no Docker.

Starts the dev stack (Kafka, PostgreSQL), migrates, starts the four services, loads the demo
data, prints the URLs and waits; Ctrl-C (or `make stop`) stops everything.
CREDITCTL_RUN_DETACH=1 starts everything and returns, leaving the services running.

--check does the same without a person: it loads the demo, checks that the services show what
the demo promises (demo.check_demo), stops the services and the stack, and exits 0 when every
promise holds, 1 otherwise. CREDITCTL_RUN_STACK names another stack than dev (stack.sh then
wants PG_PORT, KAFKA_PORT and KAFKA_CONTROLLER_PORT) and CREDITCTL_RUN_BASE_PORT other ports
for the services: how tests/e2e/test_make_run_demo.py runs the demo beside the test stack.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx

from common.testing.processes import SIMULATION_ENV, ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
# `make run-ha` (--ha): the same services on the production-shaped stack (deploy/local/ha.sh).
# CREDITCTL_RUN_STACK: a stack of its own, for a run that must not touch dev's data (the
# demo's sweeps act on every product in the database it is given).
RUN_STACK = "ha" if "--ha" in sys.argv else os.environ.get("CREDITCTL_RUN_STACK") or "dev"
STATE = ROOT / ".local" / RUN_STACK
PIDS = STATE / "services.json"
TOKEN = os.environ.get("CREDITCTL_API_TOKEN", "dev-token")
STAFF_TOKENS_FILE = STATE / "staff-tokens.json"
# One demo staff member per role (subject, role); their tokens are made on the first run.
DEMO_STAFF = [("li.na", "ops-viewer"), ("wang.fang", "operator"), ("zhang.wei", "credit-admin"),
              ("boss.billing", "billing")]
# The services listen on BASE_PORT+1..+4 (8101-8104). Another base keeps a second run off a
# `make run`'s ports; its CMPP listener then takes base+5 instead of the standard's 7890.
BASE_PORT = int(os.environ.get("CREDITCTL_RUN_BASE_PORT") or 8100)
CMPP_PORT = 7890 if BASE_PORT == 8100 else BASE_PORT + 5
SPECS = [
    ServiceSpec("billing-events", "billing_events", "BILLING_", BASE_PORT + 1),
    ServiceSpec("credit-control", "credit_control", "CREDIT_", BASE_PORT + 2, extra_env=(
        ("CREDIT_SCHEDULER_ENABLED", "true"),  # the daily sweep at CREDIT_SCHEDULER_TIME
        # The demo tells a fixed, back-dated story with its own sweeps: catching up the real
        # days before start-up would sweep its data as of those days while it loads.
        ("CREDIT_SCHEDULER_CATCH_UP_DAYS", "0"),
        ("CREDIT_SCHEDULER_MONTH_END_CATCH_UP_DAYS", "0"),
        # reports and the dashboard gather figures owned by the other services
        ("CREDIT_BILLING_URL", f"http://127.0.0.1:{BASE_PORT + 1}"),
        ("CREDIT_NOTIFIER_URL", f"http://127.0.0.1:{BASE_PORT + 3}"),
        ("CREDIT_GATEWAY_URL", f"http://127.0.0.1:{BASE_PORT + 4}"),
        ("CREDIT_PEER_TOKEN", TOKEN),
    )),
    ServiceSpec("notifier", "notifier", "NOTIFIER_", BASE_PORT + 3),
    ServiceSpec("gateway-adapter", "gateway_adapter", "GATEWAY_", BASE_PORT + 4, extra_env=(
        ("GATEWAY_CREDIT_CONTROL_URL", f"http://127.0.0.1:{BASE_PORT + 2}"),
        ("GATEWAY_CREDIT_CONTROL_TOKEN", TOKEN),
        ("GATEWAY_RECONCILIATION_INTERVAL_S", "300"),
        ("GATEWAY_CMPP_PORT", str(CMPP_PORT)),  # CMPP 2.0 for MAS servers (creditctl mas-send)
    )),
]


def stack_env() -> Stack:
    script = str(ROOT / "deploy" / "local" / "stack.sh")
    env = {**os.environ, "STACK": RUN_STACK}
    subprocess.run(["bash", script, "start"], env=env, check=True)
    out = subprocess.run(["bash", script, "env"], env=env, check=True, capture_output=True,
                         text=True).stdout
    pairs = (line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line)
    # The ha stack's multi-host URL is quoted for the shell (it holds `&`).
    values = {name: value.strip("'") for name, value in pairs}
    # The ha stack's topics have three copies (common.kafka.topic_replication_factor).
    for name in ("CREDITCTL_TOPIC_REPLICATION_FACTOR",):
        if name in values:
            os.environ[name] = values[name]
    return Stack(values["DATABASE_URL"], values["KAFKA_BOOTSTRAP"])


def staff_tokens() -> dict[str, tuple[str, str]]:
    """token -> (subject, role): CREDITCTL_API_TOKENS (JSON, as the services read it) if set,
    else demo tokens made once at random and kept in .local/<stack> (never in code)."""
    given = os.environ.get("CREDITCTL_API_TOKENS")
    if given:
        return {t: (g["subject"], g["role"]) for t, g in json.loads(given).items()}
    if not STAFF_TOKENS_FILE.exists():
        STAFF_TOKENS_FILE.parent.mkdir(parents=True, exist_ok=True)
        made = {f"{role}-{secrets.token_urlsafe(18)}": {"subject": subject, "role": role}
                for subject, role in DEMO_STAFF}
        STAFF_TOKENS_FILE.write_text(json.dumps(made, indent=2))
        STAFF_TOKENS_FILE.chmod(0o600)
    stored = json.loads(STAFF_TOKENS_FILE.read_text())
    return {t: (g["subject"], g["role"]) for t, g in stored.items()}


def stop_services() -> None:
    if not PIDS.exists():
        return
    # The services and, for a foreground `make run`, the launcher (which then stops the stack).
    for name, pid in json.loads(PIDS.read_text()).items():
        try:
            os.kill(pid, signal.SIGTERM)
            print(f"stopped {name} (pid {pid})")
        except ProcessLookupError:
            pass
    PIDS.unlink(missing_ok=True)


class _StopRequested(Exception):
    pass


def _stop_requested(signum: int, _frame: object) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def dashboard_lines(credit_url: str, staff: dict[str, tuple[str, str]]) -> list[str]:
    """The sign-in form's address and the per-role tokens, never a link carrying a token:
    the service token may do everything, and an address ends up in histories and logs."""
    return [f"  dashboard        {credit_url}/dashboard/signin   (sign in with a staff token)",
            f"  events (AsyncAPI) {credit_url}/asyncapi",
            "Demo staff tokens (dashboard sign-in, or Authorization: Bearer <token>; roles in "
            "docs/security.md):",
            *(f"  {role:13} {subject:13} {token}" for token, (subject, role) in staff.items())]


def _simulation_mode() -> bool | None:
    """The demo replays November and December 2026 whatever today is: simulation mode
    (business time ahead of the clock), unless CREDITCTL_SIMULATION_MODE says otherwise."""
    return None if SIMULATION_ENV in os.environ else True


def _stop_stack() -> None:
    subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), "stop"],
                   env={**os.environ, "STACK": RUN_STACK}, check=False)


def check() -> int:
    """--check: start, load the demo, check what it promises, stop everything; the exit status.

    Whatever happens (a failed start, a demo that stops half-way, a broken promise, SIGTERM
    from a test's timeout) the services and the stack are stopped before it returns; the
    stack's data stays, as after `make run`."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_requested)
    sys.path.insert(0, str(Path(__file__).parent))
    from demo import check_demo, load_demo

    stop_services()  # a previous run's leftovers would hold the ports
    began = time.monotonic()

    def step(what: str) -> None:
        print(f"check: {what} at {time.monotonic() - began:.0f} s", flush=True)

    procs: ServiceProcesses | None = None
    try:
        staff = staff_tokens()
        stack = stack_env()
        step(f"stack {RUN_STACK} up")
        procs = ServiceProcesses(SPECS, stack, STATE / "logs" / "services", TOKEN,
                                 staff_tokens=staff, simulation_mode=_simulation_mode())
        for spec in SPECS:
            procs.migrate(spec.name)
        procs.start_all()
        # `run.py --stop` (with the same CREDITCTL_RUN_STACK) ends a check like a `make run`.
        PIDS.write_text(json.dumps({**procs.pids(), "launcher": os.getpid()}))
        step("migrated, services ready")
        urls = {s.name: s.url for s in SPECS}
        load_demo(urls, TOKEN)
        step("demo loaded")
        problems = check_demo(urls, TOKEN, staff)
        step("promises checked")
    except _StopRequested as stop:
        print(f"check: stopped by {stop}", file=sys.stderr)
        return 1
    except Exception as exc:  # any failure is the check's answer; the stop below must run
        traceback.print_exc()
        if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
            print(exc.stderr.decode(errors="replace"), file=sys.stderr)  # a migration's
        print(f"check: FAILED, logs in {STATE / 'logs'}", file=sys.stderr)
        return 1
    finally:
        # A second signal must not cut the stop short (the caller kills it if it hangs).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if procs is not None:
            procs.stop_all()
        PIDS.unlink(missing_ok=True)
        _stop_stack()
    for problem in problems:
        print(f"check: BROKEN PROMISE: {problem}", file=sys.stderr)
    print(f"check: {'FAILED' if problems else 'OK'}: the demo's promises "
          f"{'broken: ' + str(len(problems)) if problems else 'hold'} "
          f"({time.monotonic() - began:.0f} s)", flush=True)
    return 1 if problems else 0


def main() -> None:
    if "--stop" in sys.argv:
        stop_services()
        return
    if "--check" in sys.argv:
        sys.exit(check())
    stop_services()  # a previous run's leftovers would hold the ports
    detach = os.environ.get("CREDITCTL_RUN_DETACH") == "1"
    staff = staff_tokens()
    procs = ServiceProcesses(SPECS, stack_env(), STATE / "logs" / "services", TOKEN, detach,
                             staff_tokens=staff, simulation_mode=_simulation_mode())
    for spec in SPECS:
        procs.migrate(spec.name)
    procs.start_all()
    PIDS.write_text(json.dumps(procs.pids()))
    sys.path.insert(0, str(Path(__file__).parent))
    from demo import load_demo

    load_demo({s.name: s.url for s in SPECS}, TOKEN)
    print(f"\nThe credit-control platform is running (API token: {TOKEN}):")
    for spec in SPECS:
        ok = httpx.get(f"{spec.url}/readyz").status_code == 200
        print(f"  {spec.name:16} {spec.url}/docs   ({'ready' if ok else 'NOT READY'})")
    print(f"  logs: {STATE / 'logs'}")
    credit_url = next(s.url for s in SPECS if s.name == "credit-control")
    print("\n".join(dashboard_lines(credit_url, staff)))
    if detach:
        print("Detached: `make stop` stops everything.")
        return
    print("Ctrl-C stops everything.")
    # Installed explicitly: a launcher started from a script may inherit SIGINT as ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_requested)
    PIDS.write_text(json.dumps({**procs.pids(), "launcher": os.getpid()}))
    try:
        while True:
            time.sleep(3600)
    except _StopRequested:
        print("\nstopping ...")
    finally:
        procs.stop_all()
        PIDS.unlink(missing_ok=True)
        _stop_stack()


if __name__ == "__main__":
    main()
