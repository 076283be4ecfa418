"""Fixtures shared by every test folder: the local stack and the four services as processes.

`make test` starts the local stack (real Kafka, real PostgreSQL) and exports where it is;
tests needing it are marked `integration` or `e2e` and use these fixtures.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.clock import BusinessTimeBounds, configure_business_time
from common.testing.processes import SIMULATION_ENV, ServiceProcesses, ServiceSpec
from common.testing.stack import Stack, stack_from_env, stack_required

ROOT = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "test-token"
# One staff token per role (token -> subject, role); `role_clients` calls the services as them.
STAFF_TOKENS = {
    "viewer-token": ("li.na", "ops-viewer"),
    "operator-token": ("wang.fang", "operator"),
    "admin-token": ("zhang.wei", "credit-admin"),
    "billing-token": ("boss.billing", "billing"),
}
# Simulation mode: the suite's bill months are in year 2200 and later (`test_year`), far ahead
# of the clock, which production refuses (docs/operations.md "Business time"). Every service
# the suite starts runs in simulation mode, and so do the commands tests build in-process.
# tests/e2e/test_http_properties.py starts its services with it off and proves the refusal.
os.environ.setdefault(SIMULATION_ENV, "true")
configure_business_time(BusinessTimeBounds(simulation=True))
BASE_PORT = int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100"))
SPECS = [
    ServiceSpec("billing-events", "billing_events", "BILLING_", BASE_PORT + 1),
    ServiceSpec("credit-control", "credit_control", "CREDIT_", BASE_PORT + 2, extra_env=(
        ("CREDIT_BILLING_URL", f"http://127.0.0.1:{BASE_PORT + 1}"),
        ("CREDIT_NOTIFIER_URL", f"http://127.0.0.1:{BASE_PORT + 3}"),
        ("CREDIT_GATEWAY_URL", f"http://127.0.0.1:{BASE_PORT + 4}"),
        ("CREDIT_PEER_TOKEN", TOKEN),
        # tests/e2e/test_metrics.py reads the business gauges after its own flow (it waits up
        # to 60 s). Not shorter: each refresh asks the three peers for the month's KPIs over
        # the suite's whole database, and every 2 s that churned ~50 MB of credit-control's
        # and the gateway's memory, which the short soak's RSS check rightly refused.
        ("CREDIT_BUSINESS_METRICS_INTERVAL_S", "20"),
    )),
    ServiceSpec("notifier", "notifier", "NOTIFIER_", BASE_PORT + 3),
    ServiceSpec("gateway-adapter", "gateway_adapter", "GATEWAY_", BASE_PORT + 4, extra_env=(
        ("GATEWAY_CREDIT_CONTROL_URL", f"http://127.0.0.1:{BASE_PORT + 2}"),
        ("GATEWAY_CREDIT_CONTROL_TOKEN", TOKEN),
        ("GATEWAY_CMPP_PORT", str(BASE_PORT + 5)),  # CMPP 2.0 (tests/e2e/test_cmpp_e2e.py)
    )),
]


@pytest.fixture(scope="session")
def stack() -> Stack:
    found = stack_from_env()
    if found is None:
        message = ("local stack not configured (CREDITCTL_DATABASE_URL, "
                   "CREDITCTL_KAFKA_BOOTSTRAP): run `make test`")
        if stack_required():
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def processes(stack: Stack) -> ServiceProcesses:
    # One log folder per port range, so parallel test runs on other stacks don't mix logs.
    logs = ARTIFACTS / "logs" if BASE_PORT == 18100 else ARTIFACTS / f"logs-{BASE_PORT}"
    return ServiceProcesses(SPECS, stack, logs, TOKEN, staff_tokens=STAFF_TOKENS)


@pytest.fixture(scope="session")
def migrated(processes: ServiceProcesses) -> None:
    for spec in SPECS:
        processes.migrate(spec.name)


@pytest.fixture(scope="session")
def services(processes: ServiceProcesses, migrated: None) -> Iterator[ServiceProcesses]:
    processes.start_all()
    yield processes
    processes.stop_all()


@pytest.fixture(scope="session")
async def db(stack: Stack, migrated: None) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def test_year(db: AsyncEngine) -> int:
    """A bill-month year no earlier run used: bill runs close a month for every account, so
    each run of the suite takes a fresh year (tests use different months within it).

    Years after it are shared out, one owner each: +0..+2 billing's tests, +3 worklists
    (03-04) and creditctl (10-11), +4 metrics, +5 invariant checker, +6 fault suite,
    +7/+8 reports, +9 dashboard, +10 scale-out and soak, +11 personal data (05, 07),
    +12 per-product amounts (billing 01-04, e2e 05-08) and the sweep faults (11), +13 the
    product timeline's messages (03-04), +14 billing's bill-run golden scenario (01-02),
    +15 the CMPP client suspended and restored (10-12), +16 the notifier over SMPP (10-11),
    collections escalation (03-05), red-list review (06) and late fees (07-08), +20 the
    notifier's SMPP integration, +21 QA pass 30's arrears ladder (credit-control's
    test_qa_pass30_ladder.py: balance events on Kafka, no bill run, so it moves no later
    session's year; capped at 2999), +25 and later the rating model's runs."""
    async with db.connect() as conn:
        newest = await conn.scalar(text(
            "SELECT max(extract(year FROM bill_month))::int FROM billing.bill_runs"))
    return max(int(newest or 0) + 1, 2200)


@pytest.fixture
def uid() -> str:
    """A short unique suffix so tests never collide with earlier runs' data."""
    return uuid.uuid4().hex[:10]


# A pooled connection is dropped 2 s after its last use: uvicorn closes idle ones after 5 s,
# and a request sent on one just as it closes fails with "Server disconnected" (httpx's own
# expiry is 5 s too: the same instant). Failed a CI run.
KEEPALIVE = httpx.Limits(keepalive_expiry=2.0)


@pytest.fixture(scope="session")
async def clients(services: ServiceProcesses) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made = {
        name: httpx.AsyncClient(base_url=spec.url, timeout=90, limits=KEEPALIVE,
                                headers={"Authorization": f"Bearer {TOKEN}"})
        for name, spec in services.specs.items()
    }
    yield made
    for client in made.values():
        await client.aclose()


@pytest.fixture(scope="session")
async def role_clients(
    services: ServiceProcesses,
) -> AsyncIterator[dict[str, dict[str, httpx.AsyncClient]]]:
    """role -> service name -> a client calling as that role's staff token."""
    made = {
        role: {name: httpx.AsyncClient(base_url=spec.url, timeout=90, limits=KEEPALIVE,
                                       headers={"Authorization": f"Bearer {token}"})
               for name, spec in services.specs.items()}
        for token, (_, role) in STAFF_TOKENS.items()
    }
    yield made
    for by_service in made.values():
        for client in by_service.values():
            await client.aclose()


# --- where the suite's time goes -------------------------------------------------------------
# `make test` must stay under 30 minutes (README). Each run ends with its slowest modules
# (setup, call and teardown of their tests, module fixtures included), so a module that grows
# shows in the CI log where it grew, not only as a longer total.
_MODULE_SECONDS: dict[str, float] = {}
SLOWEST_MODULES = 15


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _MODULE_SECONDS:
        return
    total = sum(_MODULE_SECONDS.values())
    slowest = sorted(_MODULE_SECONDS.items(), key=lambda kv: -kv[1])[:SLOWEST_MODULES]
    terminalreporter.section(f"slowest modules (of {len(_MODULE_SECONDS)}, {total:.0f} s in "
                             "tests)")
    for module, seconds in slowest:
        terminalreporter.write_line(f"{seconds:8.1f} s  {100 * seconds / total:4.1f} %  "
                                    f"{module}")
