"""gateway-adapter's tables, in schema `gateway`: the simulated chain's state."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)


def _ts(name: str, nullable: bool = True) -> Column:  # type: ignore[type-arg]
    return Column(name, DateTime(timezone=True), nullable=nullable)


# One row per product: BOSS status and the industry gateway's block, each with the sequence
# that set it; `last_sequence` is the newest command accepted.
chain_products = Table(
    "chain_products", metadata,
    Column("product_id", Text, primary_key=True),
    Column("cpno", Text, nullable=False),
    Column("family", Text, nullable=False),
    Column("vendor", Text),
    Column("last_sequence", BigInteger, nullable=False),
    Column("boss_status", Text, nullable=False),
    _ts("boss_updated_at", nullable=False),
    Column("gateway_blocked", Boolean, nullable=False),
    _ts("gateway_updated_at", nullable=False),
    Column("customer_id", Text),
    Column("boss_sequence", BigInteger, nullable=False, server_default="0"),
    Column("gateway_sequence", BigInteger, nullable=False, server_default="0"),
)

# EMOS provisioning work orders: one per command attempt that got past BOSS.
emos_orders = Table(
    "emos_orders", metadata,
    Column("order_id", Text, primary_key=True),
    Column("command_id", Text, nullable=False),
    Column("product_id", Text, nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False),  # received, sent_to_gateway, closed, failed, cancelled
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _ts("closed_at"),
    Column("attempt", Integer, nullable=False, server_default="1"),
    _ts("due_at"),
    _ts("sent_at"),
    UniqueConstraint("command_id", "attempt", name="emos_orders_command_attempt_key"),
    Index("ix_emos_orders_created_at", "created_at"),
    Index("ix_emos_orders_open", "created_at",
          postgresql_where=text("status IN ('received', 'sent_to_gateway')")),
)

# What the chain remembers per command across attempts.
commands = Table(
    "commands", metadata,
    Column("command_id", Text, primary_key=True),
    Column("product_id", Text, nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("outcome", Text, nullable=False),  # the latest attempt's; "pending" while it runs
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("latest_attempt", Integer, nullable=False, server_default="1"),
    Column("applied_attempt", Integer),
    Column("emos_order_id", Text),
)

# One row per (command, attempt): where it is in the chain, when the next step is due.
attempts = Table(
    "attempts", metadata,
    Column("command_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("customer_id", Text),
    Column("cpno", Text, nullable=False),
    Column("family", Text, nullable=False),
    Column("vendor", Text),
    Column("action", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("step", Text, nullable=False),
    Column("fate", Text, nullable=False),
    _ts("due_at"),
    Column("outcome", Text),  # NULL while in flight
    Column("detail", Text, nullable=False, server_default=""),
    Column("emos_order_id", Text),
    Column("vendor_command", Text),
    _ts("received_at", nullable=False),
    _ts("boss_at"),
    _ts("emos_at"),
    _ts("gateway_ack_at"),
    _ts("gateway_at"),
    _ts("finished_at"),
    PrimaryKeyConstraint("command_id", "attempt"),
    Index("ix_attempts_product", "product_id"),
    Index("ix_attempts_due", "due_at", postgresql_where=text("outcome IS NULL")),
)

# The fault knobs set through `PUT /v1/faults` (one row; absent = the settings' defaults).
faults = Table(
    "faults", metadata,
    Column("id", Integer, primary_key=True),
    Column("body", JSONB, nullable=False),
    _ts("updated_at", nullable=False),
)

reconciliation_runs = Table(
    "reconciliation_runs", metadata,
    Column("run_id", BigInteger, primary_key=True, autoincrement=True),
    _ts("as_of", nullable=False),
    Column("missed_suspensions", Integer, nullable=False),
    Column("wrong_suspensions", Integer, nullable=False),
    Column("stuck_emos_orders", Integer, nullable=False),
    Column("report", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

# CMPP 2.0 logins (`PUT /v1/cmpp/accounts/{source_addr}`): the secret is kept as given, the
# protocol's authenticators need it in the clear on both sides.
cmpp_accounts = Table(
    "cmpp_accounts", metadata,
    Column("source_addr", Text, primary_key=True),
    Column("shared_secret", Text, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("max_connections", Integer, nullable=False),
    Column("max_rate_per_s", Float, nullable=False),
    _ts("updated_at", nullable=False),
)

# Every submit the gateway judged, over HTTP or CMPP, accepted or refused.
submits = Table(
    "submits", metadata,
    Column("submit_id", BigInteger, primary_key=True, autoincrement=True),
    Column("message_id", Text, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("channel", Text, nullable=False),  # http, cmpp
    Column("source_addr", Text),
    Column("recipients", Integer, nullable=False),
    Column("accepted", Boolean, nullable=False),
    _ts("submitted_at", nullable=False),
    Index("ix_submits_product", "product_id", "submitted_at"),
)
