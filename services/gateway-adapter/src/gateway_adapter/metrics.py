"""gateway-adapter's own Prometheus metrics (the plumbing's are in common.metrics)."""

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metrics import on_commit

from .domain.chain import StageReport

CHAIN_RESULTS = Counter(
    "creditctl_chain_results_total",
    "ProvisioningResults the chain reported (committed with the outbox row), by stage "
    "(boss, emos, gateway) and outcome.",
    ["stage", "outcome"],
)


def count_results(conn: AsyncConnection, reports: Iterable[tuple[Any, StageReport, Any]]) -> None:
    """The results of these stage reports, counted when the transaction commits."""
    # str() of a StrEnum member is its value as a plain str (C), and a list feeds Counter's
    # C loop: an enum member's own hash is a Python call, twice per report.
    tally = Tally([(str(r.stage), str(r.outcome)) for _, r, _ in reports])
    if tally:
        on_commit(conn, lambda: _add(tally))


def _add(tally: Tally[tuple[str, str]]) -> None:
    for (stage, outcome), n in tally.items():
        CHAIN_RESULTS.labels(stage, outcome).inc(n)
