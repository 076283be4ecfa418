"""Prometheus metrics shared by the plumbing; services add their own next to their code."""

from prometheus_client import Counter, Gauge

EVENTS_CONSUMED = Counter(
    "creditctl_events_consumed_total",
    "Kafka events handled by a consumer, by outcome (applied, duplicate, dead_lettered).",
    ["consumer", "topic", "outcome"],
)
OUTBOX_PUBLISHED = Counter(
    "creditctl_outbox_published_total", "Outbox rows published to Kafka.", ["schema"]
)
OUTBOX_BACKLOG = Gauge(
    "creditctl_outbox_backlog", "Outbox rows not yet published.", ["schema"]
)
CONSUMER_LAG = Gauge(
    "creditctl_consumer_lag", "Messages behind the partition end.", ["consumer", "topic"]
)
