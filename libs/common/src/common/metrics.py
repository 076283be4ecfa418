"""Prometheus metrics shared by the plumbing; services add their own next to their code."""

import weakref
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncConnection

EVENTS_CONSUMED = Counter(
    "creditctl_events_consumed_total",
    "Kafka events handled by a consumer, by outcome (applied, duplicate, dead_lettered).",
    ["consumer", "topic", "outcome"],
)
OUTBOX_PUBLISHED = Counter(
    "creditctl_outbox_published_total", "Outbox messages published to Kafka.", ["schema"]
)
OUTBOX_BACKLOG = Gauge(
    "creditctl_outbox_backlog", "Outbox rows not yet published.", ["schema"]
)
# One series per partition: labelled by topic only, the last partition written won and a
# stalled partition's figure froze. Refreshed every few seconds from the broker's end offsets
# (ConsumerRunner.refresh_lag), so a stalled consumer's lag grows as events keep arriving.
CONSUMER_LAG = Gauge(
    "creditctl_consumer_lag",
    "Messages behind the partition end: the broker's end offset minus the committed position.",
    ["consumer", "topic", "partition"],
)
CONSUMER_STALLED = Gauge(
    "creditctl_consumer_stalled_partitions",
    "Partitions a consumer is behind on and has not advanced for CONSUMER_STALL_AFTER_S.",
    ["consumer"],
)
CONSUMER_BATCH_FAILURES = Counter(
    "creditctl_consumer_batch_failures_total",
    "Partition batches rolled back to be tried again, by kind (infrastructure: retried "
    "without limit; other: the failing event is dead-lettered after a few attempts).",
    ["consumer", "topic", "kind"],
)
DEAD_LETTERS_TRUNCATED = Counter(
    "creditctl_dead_letters_truncated_total",
    "Dead letters whose body was cut to fit the broker's message size limit.",
    ["consumer", "topic"],
)
HTTP_REQUESTS = Counter(
    "creditctl_http_requests_total",
    "HTTP requests answered, by route template (never the raw path) and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "creditctl_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
def on_commit(conn: AsyncConnection, count: Callable[[], None]) -> None:
    """Call `count` when `conn`'s transaction commits, never when it rolls back: business
    counters (decisions, SMS, chain results) then move only for work that was kept. The hook
    fires as COMMIT is issued; a COMMIT that itself fails (the connection dies at that very
    moment) would count work that is then redone and counted again.

    The callbacks wait in the connection's `info` and two listeners per engine, added once,
    run or drop them. A listener per transaction (`event.listen(conn, "commit", once=True)`)
    cost ~100 µs of CPU per call (SQLAlchemy builds the connection's own event dispatch),
    more than a small batch's statements, and outlived a rollback on the same connection,
    whose next commit then counted the rolled-back work too."""
    sync = conn.sync_connection
    if sync is None:
        return
    engine = sync.engine
    if engine not in _hooked:
        event.listen(engine, "commit", _run_pending)
        event.listen(engine, "rollback", _drop_pending)
        _hooked.add(engine)
    sync.info.setdefault(_PENDING, []).append(count)


_PENDING = "creditctl_on_commit"
_hooked: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _run_pending(conn: Connection) -> None:
    for count in conn.info.pop(_PENDING, ()):
        count()


def _drop_pending(conn: Connection) -> None:
    # A connection that died under its transaction (a failover, a terminated backend) is
    # rolled back invalidated: asking its `info` then raises PendingRollbackError, which
    # would replace the statement's own error (an infrastructure error, retried without
    # end) with one that is not (counted towards a dead letter). Its `info` is cleared with
    # it when the pool replaces it, pending counts included.
    if not conn.invalidated:
        conn.info.pop(_PENDING, None)
