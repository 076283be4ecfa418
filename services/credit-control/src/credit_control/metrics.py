"""credit-control's own Prometheus metrics (the plumbing's are in common.metrics)."""

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metrics import on_commit

DECISIONS = Counter(
    "creditctl_decisions_total",
    "Credit decisions taken and committed, by type (bill_notice, warning, suspend, …).",
    ["decision"],
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
