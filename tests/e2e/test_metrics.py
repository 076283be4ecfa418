"""Every service's /metrics moves with a real flow: bill run → bill notice → month-end sweep →
suspend through the chain → suspension SMS delivered. Counters are read before and after;
deltas are exact where only this test can move them (its own sweep's suspends, its own HTTP
calls), at least the flow's own share where earlier tests' late events may add to them."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import business_date
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from credit_control.reports.domain.reports import latest_billed_month

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# Bill months: test_year + 4 is this test's alone (see conftest's test_year for the map).
YEAR_OFFSET = 4
Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[s.name].append((s.labels, s.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, [])
               if all(found.get(k) == want for k, want in labels.items()))


async def scrape_all(clients: dict[str, httpx.AsyncClient]) -> dict[str, Samples]:
    return {name: await scrape(c) for name, c in clients.items()}


def delta(before: dict[str, Samples], after: dict[str, Samples], service: str, name: str,
          **labels: str) -> float:
    return total(after[service], name, **labels) - total(before[service], name, **labels)


async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def make_owing_mas_product(billing: httpx.AsyncClient, uid: str, month: str) -> str:
    await ok(await billing.post("/v1/customers", json={
        "customer_id": f"GM{uid}", "name": f"指标科技{uid}", "tier": "low",
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}]}))
    await ok(await billing.post("/v1/accounts", json={
        "account_id": f"AM{uid}", "customer_id": f"GM{uid}"}))
    await ok(await billing.post("/v1/products", json={
        "product_id": f"PM{uid}", "account_id": f"AM{uid}", "cpno": f"CPM{uid}",
        "name": "华为CRM-MAS", "family": "MAS", "vendor": "huawei"}))
    await ok(await billing.post("/v1/charges", json={
        "charge_id": f"CM{uid}", "account_id": f"AM{uid}", "product_id": f"PM{uid}",
        "bill_month": month, "amount_fen": 12345}))
    return f"PM{uid}"


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    return (await notifier.get("/v1/messages", params={"product_id": product_id})).json()


def delivered(ms: Iterable[dict[str, Any]]) -> int:
    return sum(1 for m in ms if m["status"] == "delivered")


async def test_counters_move_with_a_bill_run_a_suspension_and_its_sms(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int, db: AsyncEngine,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier, gateway = clients["notifier"], clients["gateway-adapter"]
    y = test_year + YEAR_OFFSET
    start = await scrape_all(clients)

    product = await make_owing_mas_product(billing, uid, f"{y}-04")
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRm{uid}", "bill_month": f"{y}-04",
        "as_of": f"{y}-05-02T09:00:00+08:00"}))
    await eventually(lambda: messages(notifier, product), lambda ms: len(ms) >= 1,
                     what="the bill notice made")

    # The 25th: the suspension warning (notice before suspension, docs/rules.md).
    await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": f"Sm25{uid}", "as_of": f"{y}-05-25T20:00:00+08:00"}))
    await notices_heard(db)  # suspended only once the warning reached the contact
    before_sweep = await scrape(credit)
    answer = await ok(await credit.post("/v1/sweeps", json={
        "sweep_id": f"Sm{uid}", "as_of": f"{y}-05-31T20:00:00+08:00"}))
    after_sweep = await scrape(credit)
    suspends = answer["decisions"].get("suspend", 0)
    assert suspends >= 1
    # Only this sweep suspends in that window: the counter moved by exactly its answer.
    assert total(after_sweep, "creditctl_decisions_total", decision="suspend") - total(
        before_sweep, "creditctl_decisions_total", decision="suspend") == suspends

    # Customers' SMS wait for 08:00-21:00 Shanghai time (wall clock), the manager's go at
    # any hour: notice B is the one sure to be delivered whenever the test runs.
    sent = await eventually(lambda: messages(notifier, product),
                            lambda ms: len(ms) >= 4 and delivered(ms) >= 1,
                            timeout=60, what="suspension notices A and B, B delivered")
    chain_calls = 2
    for _ in range(chain_calls):
        await ok(await gateway.get(f"/v1/products/{product}/chain"), 200)
    assert (await gateway.get("/v1/products/never-seen/chain")).status_code == 404
    end = await scrape_all(clients)

    def moved(service: str, name: str, **labels: str) -> float:
        return delta(start, end, service, name, **labels)

    # billing: the bill run's HTTP call, its balance events published through the outbox.
    assert moved("billing-events", "creditctl_http_requests_total", method="POST",
                 route="/v1/bill-runs", status="201") == 1
    assert moved("billing-events", "creditctl_outbox_published_total", schema="billing") >= 1
    # credit-control: consumed the balance event, decided a bill notice and the suspension.
    assert moved("credit-control", "creditctl_events_consumed_total",
                 topic="billing.balance.v1", outcome="applied") >= 1
    assert moved("credit-control", "creditctl_decisions_total", decision="bill_notice") >= 1
    assert moved("credit-control", "creditctl_decisions_total", decision="suspend") >= suspends
    assert moved("credit-control", "creditctl_events_consumed_total",
                 topic="provisioning.results.v1", outcome="applied") >= 3
    # notifier: this product's four messages (bill notice, suspension warning, notices A and
    # B) were made (pending, or held for quiet hours), and at least notice B was delivered.
    assert len(sent) == 4
    assert moved("notifier", "creditctl_sms_total", status="pending") + moved(
        "notifier", "creditctl_sms_total", status="held") >= 4
    for status in ("submitted", "delivered"):
        assert moved("notifier", "creditctl_sms_total", status=status) >= delivered(sent), status
    # gateway-adapter: every stage applied the suspension.
    for stage in ("boss", "emos", "gateway"):
        assert moved("gateway-adapter", "creditctl_chain_results_total", stage=stage,
                     outcome="applied") >= 1, stage
    assert moved("gateway-adapter", "creditctl_http_requests_total", method="GET",
                 route="/v1/products/{product_id}/chain", status="200") == chain_calls
    assert moved("gateway-adapter", "creditctl_http_requests_total", method="GET",
                 route="/v1/products/{product_id}/chain", status="404") == 1
    assert moved("gateway-adapter", "creditctl_http_request_duration_seconds_count",
                 method="GET", route="/v1/products/{product_id}/chain") == chain_calls + 1
    # Route templates, never raw paths: a product id never becomes a label value.
    for service, samples in end.items():
        routes = {labels.get("route") for labels, _ in
                  samples.get("creditctl_http_requests_total", [])}
        assert not any(product in (r or "") or "never-seen" in (r or "") for r in routes), \
            (service, routes)
    # The gauges exist and have settled: nothing of this flow is left unpublished.
    for service, schema in (("billing-events", "billing"), ("credit-control", "credit"),
                            ("notifier", "notifier"), ("gateway-adapter", "gateway")):
        await eventually(lambda s=service: scrape(clients[s]),
                         lambda got, sc=schema: any(
                             labels.get("schema") == sc and value == 0
                             for labels, value in got.get("creditctl_outbox_backlog", [])),
                         what=f"{service}'s outbox backlog at 0")
    lag = end["credit-control"].get("creditctl_consumer_lag", [])
    assert {labels["topic"] for labels, _ in lag} >= {"billing.balance.v1"}


def _gauge(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """A gauge's non-zero series by the given labels."""
    return {tuple(labels[k] for k in keys): value
            for labels, value in samples.get(name, []) if value}


async def _db_states(db: AsyncEngine) -> dict[tuple[str, ...], float]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT family, state, count(*) FROM credit.product_credit GROUP BY 1, 2"))
        return {(r[0], r[1]): float(r[2]) for r in rows}


async def _db_overdue(db: AsyncEngine) -> dict[tuple[str, ...], float]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT action, count(*) FROM credit.work_orders WHERE status IN "
            "('created', 'assigned') AND due_at < now() GROUP BY 1"))
        return {(r[0],): float(r[1]) for r in rows}


async def test_business_gauges_show_what_the_database_and_the_kpi_report_say(
    clients: dict[str, httpx.AsyncClient], uid: str, test_year: int, db: AsyncEngine,
) -> None:
    """Issue 20: Grafana's business panels (products per state, overdue work orders, the
    arrears rate against its 0.5 % target) read gauges that agree with the database and with
    /v1/reports/kpis, refreshed on a timer (every 20 s under the tests)."""
    credit = clients["credit-control"]
    product = await make_owing_mas_product(clients["billing-events"], uid,
                                           f"{test_year + YEAR_OFFSET}-06")

    async def readings() -> tuple[Samples, dict[tuple[str, ...], float],
                                  dict[tuple[str, ...], float]]:
        return await scrape(credit), await _db_states(db), await _db_overdue(db)

    def agree(got: tuple[Samples, dict[tuple[str, ...], float],
                         dict[tuple[str, ...], float]]) -> bool:
        samples, states, overdue = got
        return (_gauge(samples, "creditctl_products", "family", "state") == states
                and _gauge(samples, "creditctl_work_orders_overdue", "action") == overdue)

    async with db.connect() as conn:
        await eventually(lambda: conn.scalar(text(
            "SELECT count(*) FROM credit.product_credit WHERE product_id = :p"), {"p": product}),
            lambda n: n == 1, timeout=60, what="the new product known to credit-control")
    samples, states, _ = await eventually(readings, agree, timeout=60,
                                          what="gauges matching the database")
    assert states and sum(states.values()) >= 1
    targets = _gauge(samples, "creditctl_kpi_target", "kpi")
    assert targets[("arrears_rate",)] == 0.005 and targets[("reminder_timeliness",)] == 0.95

    month = latest_billed_month(business_date(datetime.now(UTC))).strftime("%Y-%m")
    report = await ok(await credit.get("/v1/reports/kpis", params={"month": month}), 200)
    arrears = next(k for k in report["kpis"] if k["name"] == "arrears_rate")
    got = {labels["kpi"]: value for labels, value in samples.get("creditctl_kpi", [])}
    if arrears["value"] is None:
        assert "arrears_rate" not in got
    else:
        assert got["arrears_rate"] == pytest.approx(float(arrears["value"]))
