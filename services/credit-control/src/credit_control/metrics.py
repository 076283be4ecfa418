"""credit-control's own Prometheus metrics (the plumbing's are in common.metrics)."""

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metrics import on_commit

DECISIONS = Counter(
    "creditctl_decisions_total",
    "Credit decisions taken and committed, by type (bill_notice, warning, suspend, …).",
    ["decision"],
)

# Read from credit.sweep_runs by every credit-control process's sweep-resume loop (so any
# instance reports the same figure); the alert rules are in deploy/prometheus/rules/sweeps.yml.
SWEEPS_UNFINISHED = Gauge(
    "creditctl_sweeps_unfinished",
    "Sweeps started and not finished, by status (running: resumed by credit-control itself; "
    "held: waits for staff to confirm).",
    ["status"],
)
# Refreshed after each scheduled daily sweep, as of its business day (credit/service_layer/
# notices.py `refresh_unheard_gauge`): suspensions held by a suspension warning not heard of.
SUSPENSION_WARNINGS_UNHEARD = Gauge(
    "creditctl_suspension_warnings_unheard",
    "Suspension-warned products past their warning's deadline whose SMS neither reached the "
    "customer nor was lost, as of the last scheduled sweep's day (waiting: within "
    "CREDIT_NOTICE_UNHEARD_AFTER_DAYS; lost: past it, the next sweep warns again or makes "
    "the suspension an exception; non-zero after a sweep means the sweep missed them).",
    ["when"],
)
SWEEP_CATCH_UPS = Counter(
    "creditctl_sweep_catch_ups_total",
    "Scheduled daily sweeps run late (past the grace): credit-control was down at their time, "
    "or the sweep was deferred that long waiting for the balance feed.",
)
# Set by every check a new sweep makes before it starts (credit/service_layer/feed_wait.py):
# a sweep decides only once the events published before it are applied.
SWEEPS_DEFERRED = Counter(
    "creditctl_sweeps_deferred_total",
    "New sweeps not started because credit-control's consumer had not applied the events "
    "published before them within CREDIT_SWEEP_FEED_WAIT_S, or Kafka did not answer "
    "(refused with 503; the scheduler retries the day).",
)
SWEEP_FEED_LAG = Gauge(
    "creditctl_sweep_feed_lag",
    "Events published before the latest new sweep's start that its check last saw not yet "
    "applied by credit-control's consumer, summed over partitions (0: caught up; -1: Kafka "
    "did not answer).",
)


def count_decisions(conn: AsyncConnection, decisions: Iterable[str]) -> None:
    """Counted per batch, once the batch's transaction commits."""
    tally = Tally(decisions)
    if tally:
        on_commit(conn, lambda: _add(tally))


def count_committed(decision: str, n: int) -> None:
    """For a caller that committed already (a sweep's chunk)."""
    if n:
        DECISIONS.labels(decision).inc(n)


def _add(tally: Tally[str]) -> None:
    for decision, n in tally.items():
        DECISIONS.labels(decision).inc(n)


# Business figures for Grafana and alerts (deploy/grafana, deploy/prometheus/rules): read
# every BUSINESS_METRICS_INTERVAL_S by reports.service_layer.business_metrics from the same
# queries the reports and the dashboard use, so a panel and the dashboard agree. Every
# credit-control process reports the same figures: query them with `max`, never `sum`.
KPI = Gauge(
    "creditctl_kpi",
    "The seed's KPIs for the latest billed month, as the dashboard shows them (ratios as a "
    "fraction: arrears_rate 0.004 is 0.4 %; counts for missed_suspensions and "
    "overdue_work_orders). No series while the peer a KPI needs does not answer.",
    ["kpi"],
)
KPI_TARGET = Gauge(
    "creditctl_kpi_target", "Each KPI's target (the seed's limit).", ["kpi"],
)
PRODUCTS = Gauge(
    "creditctl_products", "Products per credit state now, by family.", ["family", "state"],
)
WORK_ORDERS_OPEN = Gauge(
    "creditctl_work_orders_open", "Manual work orders open now, by action.", ["action"],
)
WORK_ORDERS_OVERDUE = Gauge(
    "creditctl_work_orders_overdue", "Open work orders past their due time, by action.",
    ["action"],
)
