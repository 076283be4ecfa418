"""The business gauges (credit_control.metrics: KPIs, products per state, work orders),
refreshed on a timer from the queries the reports use, so Grafana's business panels and the
alert rules read the figures the dashboard shows."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from prometheus_client import Gauge

from ... import metrics as m
from ..adapters import report_queries as q
from ..domain import reports as r
from . import reports as svc
from .reports import ReportContext

log = logging.getLogger(__name__)
BUSINESS_METRICS_INTERVAL_S = 60.0


async def refresh(rc: ReportContext) -> None:
    """One reading of every business gauge. A peer that does not answer leaves its KPI
    without a series (an empty panel, not a stale figure)."""
    body = await svc.kpis(rc, r.latest_billed_month(rc.today()), None, work_orders_now=True)
    for kpi in body["kpis"]:
        _set(m.KPI, kpi["name"], kpi.get("value"))
        _set(m.KPI_TARGET, kpi["name"], kpi.get("target"))
    async with rc.credit.engine.connect() as conn:
        states = await q.states_at(conn, None, "")
        orders = await q.work_orders_at(conn, None, rc.credit.clock.now(), "")
    _replace(m.PRODUCTS, {(s["family"], s["state"]): s["products"] for s in states})
    _replace(m.WORK_ORDERS_OPEN, {(o["action"],): o["open"] for o in orders})
    _replace(m.WORK_ORDERS_OVERDUE, {(o["action"],): o["overdue"] for o in orders})


def _set(gauge: Gauge, name: str, value: Any) -> None:
    if value is None:
        with contextlib.suppress(KeyError):
            gauge.remove(name)
    else:
        gauge.labels(name).set(float(Decimal(str(value))))


def _replace(gauge: Gauge, values: dict[tuple[str, ...], int]) -> None:
    """Sets these series and zeroes the others: a state no product is in any more (absent
    from the query) reads 0, not the figure left over from the last reading."""
    for labels in list(_labels(gauge)):
        if labels not in values:
            gauge.labels(*labels).set(0)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


def _labels(gauge: Gauge) -> set[tuple[str, ...]]:
    return {tuple(s.labels[n] for n in gauge._labelnames)
            for family in gauge.collect() for s in family.samples}


def loop(rc: ReportContext,
         interval_s: float = BUSINESS_METRICS_INTERVAL_S) -> Callable[[asyncio.Event],
                                                                       Awaitable[None]]:
    async def business_metrics(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await refresh(rc)
            except Exception as exc:  # the database away: the next round tries again
                log.warning("business metrics not refreshed (%s: %s)", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
    return business_metrics
