"""gateway-adapter's tables, in schema `gateway`: the simulated chain's state."""

from sqlalchemy import BigInteger, Boolean, Column, DateTime, MetaData, Table, Text, func

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)

chain_products = Table(
    "chain_products", metadata,
    Column("product_id", Text, primary_key=True),
    Column("cpno", Text, nullable=False),
    Column("family", Text, nullable=False),
    Column("vendor", Text),
    Column("last_sequence", BigInteger, nullable=False),
    Column("boss_status", Text, nullable=False),
    Column("boss_updated_at", DateTime(timezone=True), nullable=False),
    Column("gateway_blocked", Boolean, nullable=False),
    Column("gateway_updated_at", DateTime(timezone=True), nullable=False),
)

emos_orders = Table(
    "emos_orders", metadata,
    Column("order_id", Text, primary_key=True),
    Column("command_id", Text, nullable=False, unique=True),
    Column("product_id", Text, nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("status", Text, nullable=False),  # received, sent_to_gateway, closed
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
)

commands = Table(
    "commands", metadata,
    Column("command_id", Text, primary_key=True),
    Column("product_id", Text, nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
