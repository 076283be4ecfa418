"""notifier's own Prometheus metrics (the plumbing's are in common.metrics)."""

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection

from common.metrics import on_commit

SMS = Counter(
    "creditctl_sms_total",
    "SMS moved into a status, counted once committed: pending / held / undeliverable (made), "
    "submitted, delivered / failed / … (receipts), dead_lettered, cancelled (re-checked: its "
    "reason had gone, never sent); `retry` = a failed submit "
    "put back to pending.",
    ["status"],
)


def count_sms(conn: AsyncConnection, statuses: Iterable[str]) -> None:
    """One tally per statement, added when its transaction commits."""
    tally = Tally(statuses)
    if tally:
        on_commit(conn, lambda: _add(tally))


def _add(tally: Tally[str]) -> None:
    for status, n in tally.items():
        SMS.labels(status).inc(n)
