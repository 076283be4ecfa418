"""Hostile HTTP input, property-based: schemathesis generates requests from every service's own
OpenAPI document, valid ones (positive) and deliberately invalid ones (negative).

Properties, for every operation of every service:
- no 5xx, ever;
- every 4xx carries the common error body: JSON with a string `error` (machine-readable code)
  and a string `message`;
- every status answered is one the operation documents (schemathesis' status_code_conformance);
- invalid data is refused (negative_data_rejection: a negative case answered 2xx is a finding);
- a 2xx body matches the response schema the service publishes;
- a request that was rejected (negative pass, answered 4xx) changed nothing: a fingerprint of
  every table of the four schemas is the same before and after each operation's negative pass
  (idempotency keys included: they are rows of those schemas).

The services run with simulation mode off, as in production: business time ahead of the clock
is refused, and the explicit tests at the end prove it for every service's writes.

The services run here as their own instances on a database of their own (created fresh for
the run) and without Kafka: generated requests create bill runs, sweeps, rules and faults at
random, which must not reach the shared test database, the other tests' consumers, or the
session's services. Without Kafka the relays and consumers never start, so nothing but the
requests writes to that database.
"""

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from common.clock import BUSINESS_TZ
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the service role: every route is reachable
BASE_PORT = int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100")) + 40
# Per operation and per mode; CREDITCTL_HTTP_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("CREDITCTL_HTTP_EXAMPLES", "12"))
SCHEMAS = ("billing", "credit", "notifier", "gateway")
NO_KAFKA = "127.0.0.1:9"  # discard port: refused at once, the workers keep retrying quietly


def _specs() -> list[ServiceSpec]:
    url = {n: f"http://127.0.0.1:{BASE_PORT + i}" for i, n in enumerate(
        ("billing-events", "credit-control", "notifier", "gateway-adapter"), start=1)}
    return [
        ServiceSpec("billing-events", "billing_events", "BILLING_", BASE_PORT + 1),
        ServiceSpec("credit-control", "credit_control", "CREDIT_", BASE_PORT + 2, extra_env=(
            ("CREDIT_BILLING_URL", url["billing-events"]),
            ("CREDIT_NOTIFIER_URL", url["notifier"]),
            ("CREDIT_GATEWAY_URL", url["gateway-adapter"]),
            ("CREDIT_PEER_TOKEN", TOKEN),
            # No Kafka here: a new sweep's wait for the balance feed would refuse every sweep
            # (503, never a sweep decided blind); off, so the HTTP surface's sweeps run.
            ("CREDIT_SWEEP_FEED_WAIT_S", "0"),
        )),
        ServiceSpec("notifier", "notifier", "NOTIFIER_", BASE_PORT + 3),
        ServiceSpec("gateway-adapter", "gateway_adapter", "GATEWAY_", BASE_PORT + 4, extra_env=(
            ("GATEWAY_CREDIT_CONTROL_URL", url["credit-control"]),
            ("GATEWAY_CREDIT_CONTROL_TOKEN", TOKEN),
            ("GATEWAY_RECONCILIATION_INTERVAL_S", "0"),
        )),
    ]


async def _fresh_database(stack: Stack, name: str) -> str:
    admin = create_async_engine(stack.database_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(stack.database_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def isolated(stack: Stack) -> Iterator[tuple[ServiceProcesses, str]]:
    name = f"{make_url(stack.database_url).database}_http_{BASE_PORT}"
    url = asyncio.run(_fresh_database(stack, name))
    logs = ROOT / "test-artifacts" / f"logs-http-{BASE_PORT}"
    # Simulation off (the suite's default is on): production's bounds on business time.
    procs = ServiceProcesses(_specs(), Stack(url, NO_KAFKA), logs, TOKEN, simulation_mode=False)
    for spec in procs.specs.values():
        procs.migrate(spec.name)
    try:
        for spec in procs.specs.values():
            procs.start(spec.name)
        for spec in procs.specs.values():
            _wait_serving(procs, spec)
        yield procs, url
    finally:
        procs.stop_all()


def _wait_serving(procs: ServiceProcesses, spec: ServiceSpec, timeout: float = 300) -> None:
    """/healthz, not /readyz: without Kafka these instances never report ready, on purpose."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.running(spec.name):
            raise RuntimeError(f"{spec.name} exited; see its log")
        try:
            if httpx.get(f"{spec.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{spec.name} not serving after {timeout}s")


# --- properties ---------------------------------------------------------------------------

@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    accepted_negative: int = 0
    nothing_to_negate: list[str] = field(default_factory=list)
    rejected_valid: dict[str, str] = field(default_factory=dict)  # first 4xx per operation

    def count(self, status: int) -> None:
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def add(self, label: str, case: Any, problem: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(f"{label}: {problem}\n    request: {_describe(case)}")


def _describe(case: Any) -> str:
    parts = {"path": case.path_parameters, "query": case.query, "body": case.body}
    return json.dumps({k: v for k, v in parts.items() if v}, ensure_ascii=False,
                      default=repr)[:600]


def error_body_problem(response: requests.Response) -> str | None:
    """The common 4xx shape (common.http / common.errors): {"error": code, "message": text}."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict):
        return f"{response.status_code} body is not an object: {body!r:.200}"
    missing = [k for k in ("error", "message") if not isinstance(body.get(k), str)]
    if missing:
        return f"{response.status_code} body lacks string {missing}: {body!r:.300}"
    return None


def failure(case: Any, response: requests.Response, check: Any) -> str | None:
    """What one schemathesis check found, or None. Its FailureGroup is a BaseExceptionGroup,
    not an Exception: caught here so one finding never stops the run."""
    try:
        case.validate_response(response, checks=[check])
    except (Exception, BaseExceptionGroup) as exc:
        return f"{exc!s:.400}"
    return None


def check_response(findings: Findings, label: str, case: Any,
                   response: requests.Response) -> None:
    findings.count(response.status_code)
    status = response.status_code
    if status >= 500:
        findings.add(label, case, f"{status} {response.text[:300]!r}")
    elif status >= 400:
        problem = error_body_problem(response)
        if problem:
            findings.add(label, case, problem)
    elif found := failure(case, response, response_schema_conformance):
        findings.add(label, case, f"{status} body does not match the schema: {found}")
    if found := failure(case, response, status_code_conformance):
        findings.add(label, case, f"{status} is not documented: {found}")


def check_data_acceptance(findings: Findings, label: str, case: Any, mode: GenerationMode,
                          response: requests.Response) -> None:
    """Invalid data accepted is a finding. Valid data refused is only reported: business
    rules (an unknown account, a month not yet billed, a time before the floor) refuse what
    a schema cannot say."""
    if mode is GenerationMode.NEGATIVE:
        if found := failure(case, response, negative_data_rejection):
            findings.add(label, case, f"invalid data accepted: {found}")
    elif failure(case, response, positive_data_acceptance):
        findings.rejected_valid.setdefault(label, f"{response.status_code} {response.text:.150}")


def exercise(operation: Any, mode: GenerationMode, session: requests.Session, base_url: str,
             findings: Findings) -> None:
    """EXAMPLES generated requests for one operation; every one is checked, none stops the
    run (no shrinking: the report lists what failed, as sent)."""
    label = f"{mode.value} {operation.method.upper()} {operation.path}"

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=AUTH))
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, session=session, headers=AUTH, timeout=30)
        except requests.RequestException as exc:
            findings.add(label, case, f"no response: {exc!r:.300}")
            return
        check_response(findings, label, case, response)
        check_data_acceptance(findings, label, case, mode, response)
        if mode is GenerationMode.NEGATIVE and response.status_code < 400:
            findings.accepted_negative += 1

    try:
        run()
    except Unsatisfiable:
        findings.nothing_to_negate.append(label)  # e.g. no parameters at all: nothing to break


async def _fingerprint(database_url: str) -> dict[str, str]:
    """Every table of the services' schemas, as an md5 of its rows: catches inserts, updates
    and deletes alike (the tables here hold only what this run created)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = (await conn.execute(text(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema = ANY(:s) AND table_type = 'BASE TABLE' "
                "AND table_name <> 'alembic_version'"), {"s": list(SCHEMAS)})).scalars().all()
            return {t: str(await conn.scalar(text(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, ',' "
                f"ORDER BY x::text)), '') FROM {t} x"))) for t in tables}
    finally:
        await engine.dispose()


def _operations(base_url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(
        f"{base_url}/openapi.json", headers=AUTH, timeout=30)
    ops = [result.ok() for result in schema.get_all_operations()]
    assert ops, f"{base_url} publishes no operations"
    return ops


@pytest.mark.parametrize("service", ["billing-events", "credit-control", "notifier",
                                     "gateway-adapter"])
def test_generated_requests_get_no_5xx_and_clear_4xx_and_rejections_write_nothing(
    isolated: tuple[ServiceProcesses, str], service: str,
) -> None:
    procs, database_url = isolated
    base_url = procs.specs[service].url
    findings = Findings()
    operations = _operations(base_url)
    with requests.Session() as session:
        # Valid requests first: they create rows the invalid ones then aim at.
        for op in operations:
            exercise(op, GenerationMode.POSITIVE, session, base_url, findings)
        for op in operations:
            before = asyncio.run(_fingerprint(database_url))
            accepted = findings.accepted_negative
            exercise(op, GenerationMode.NEGATIVE, session, base_url, findings)
            if findings.accepted_negative == accepted:  # all rejected: nothing may change
                after = asyncio.run(_fingerprint(database_url))
                changed = sorted(t for t in after if after[t] != before.get(t))
                if changed:
                    findings.problems.append(
                        f"negative {op.method.upper()} {op.path}: rejected requests changed "
                        f"{changed}")
    print(f"\n{service}: {len(operations)} operations, responses {findings.statuses}, "
          f"negative cases accepted {findings.accepted_negative}, "
          f"nothing to negate in {len(findings.nothing_to_negate)}")
    for label, sample in findings.rejected_valid.items():  # business rules the schema can't say
        print(f"  {label}: e.g. {sample}")
    assert not findings.problems, "\n".join(findings.problems)


# --- the edges issue 14 found, one by one (simulation mode off) ------------------------------

FUTURE = "6963-06-09T06:02:29-14:56"
YEAR_ONE = "0001-01-01T00:00:00Z"


def _call(procs: ServiceProcesses, service: str, method: str, path: str,
          **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", AUTH)
    return httpx.request(method, procs.specs[service].url + path, headers=headers, timeout=60,
                         **kwargs)


def _refused(response: httpx.Response, status: int, field_name: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str), body
    if field_name is not None:
        named = [p["field"] for p in body.get("problems", [])] + [body.get("field", "")]
        assert any(n.split(".")[-1] == field_name for n in named), body


def _now() -> str:
    return datetime.now(BUSINESS_TZ).isoformat()


@pytest.mark.parametrize(("service", "path", "body", "field_name"), [
    ("credit-control", "/v1/sweeps", {"sweep_id": "future-1", "as_of": FUTURE}, "as_of"),
    ("credit-control", "/v1/provisioning/retries", {"as_of": FUTURE}, "as_of"),
    ("credit-control", "/v1/worklists/refresh", {"as_of": FUTURE}, "as_of"),
    ("billing-events", "/v1/bill-runs", {"bill_run_id": "future-br", "bill_month": "6963-06"},
     "bill_month"),
    ("billing-events", "/v1/payments", {"payment_id": "future-pay", "account_id": "A1",
                                        "amount_fen": 100, "paid_at": FUTURE}, "paid_at"),
    ("gateway-adapter", "/v1/chain/advance", {"as_of": FUTURE}, "as_of"),
    ("notifier", "/v1/receipts", [{"provider_message_id": "m1", "status": "delivered",
                                   "at": FUTURE}], "at"),
])
def test_business_time_ahead_of_the_clock_is_refused_naming_the_field(
    isolated: tuple[ServiceProcesses, str], service: str, path: str, body: Any,
    field_name: str,
) -> None:
    procs, database_url = isolated
    before = asyncio.run(_fingerprint(database_url))
    _refused(_call(procs, service, "POST", path, json=body), 422, field_name)
    assert asyncio.run(_fingerprint(database_url)) == before


def test_a_refused_sweep_leaves_its_id_free_for_the_corrected_request(
    isolated: tuple[ServiceProcesses, str],
) -> None:
    procs, _ = isolated
    sweep_id = f"BADSW-{time.time_ns()}"
    for wrong in (FUTURE, YEAR_ONE, "0.5"):
        _refused(_call(procs, "credit-control", "POST", "/v1/sweeps",
                       json={"sweep_id": sweep_id, "as_of": wrong}), 422, "as_of")
    corrected = {"sweep_id": sweep_id, "as_of": _now()}
    first = _call(procs, "credit-control", "POST", "/v1/sweeps", json=corrected)
    assert first.status_code == 201, first.text
    again = _call(procs, "credit-control", "POST", "/v1/sweeps", json=corrected)
    assert (again.status_code, again.json()) == (201, first.json())  # replayed, not re-run


def test_back_dated_business_time_stays_possible(isolated: tuple[ServiceProcesses, str]) -> None:
    procs, _ = isolated
    r = _call(procs, "credit-control", "POST", "/v1/sweeps",
              json={"sweep_id": f"BACK-{time.time_ns()}", "as_of": "2011-11-30"})
    assert r.status_code == 201, r.text
    # a date alone is 00:00 Asia/Shanghai of that day (docs/operations.md "Business time")
    assert r.json()["as_of"] == "2011-11-30T00:00:00+08:00"


@pytest.mark.parametrize(("service", "method", "path", "kwargs", "status"), [
    ("credit-control", "PUT", "/v1/guard", {"json": {
        "max_share": 0.5, "min_active": 100000000000000000000, "enabled": True}}, 422),
    *[("credit-control", "GET", f"/v1/reports/{kind}", {"params": {"month": month}}, 422)
      for kind in ("recovery", "aging", "arrears", "kpis", "states")
      for month in ("9999-12", "0001-01", "0000-00", "2026-13")],
    ("credit-control", "GET", "/dashboard", {"params": {"month": "9999-12"}}, 422),
    ("gateway-adapter", "GET", "/v1/kpis/emos-cross-month", {"params": {"month": "9999-12"}},
     422),
    ("gateway-adapter", "GET", "/v1/kpis/emos-cross-month", {"params": {"month": "0001-01"}},
     422),
    ("credit-control", "GET", "/v1/products/P-none/credit", {"params": {"as_of": "0.5"}}, 422),
    ("notifier", "GET", "/v1/messages", {"params": {"status": "bogus"}}, 422),
    ("credit-control", "POST", "/v1/exemptions", {"json": {
        "exemption_id": "EX-nobody", "customer_id": "G-nobody-has-heard-of", "kind": "red_list",
        "reason": "r", "approver": "分管副总"}}, 404),
])
def test_extreme_but_well_formed_input_is_a_clear_4xx(
    isolated: tuple[ServiceProcesses, str], service: str, method: str, path: str,
    kwargs: dict[str, Any], status: int,
) -> None:
    procs, database_url = isolated
    before = asyncio.run(_fingerprint(database_url))
    _refused(_call(procs, service, method, path, **kwargs), status)
    assert asyncio.run(_fingerprint(database_url)) == before


@pytest.mark.parametrize("service", ["billing-events", "credit-control", "notifier",
                                     "gateway-adapter"])
def test_no_token_and_malformed_json_is_401(isolated: tuple[ServiceProcesses, str],
                                            service: str) -> None:
    procs, _ = isolated
    path = {"billing-events": "/v1/payments", "credit-control": "/v1/sweeps",
            "notifier": "/v1/receipts", "gateway-adapter": "/v1/chain/advance"}[service]
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        r = _call(procs, service, "POST", path, content=b'{"as_of": ',
                  headers={**headers, "content-type": "application/json"})
        _refused(r, 401)
