"""credit-control's tables, in schema `credit`."""

from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "credit"
metadata = MetaData(schema=SCHEMA)

# The newest balance billing told us about, per account (a read model of billing).
account_positions = Table(
    "account_positions", metadata,
    Column("account_id", Text, primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("balance_fen", BigInteger, nullable=False),
    Column("amount_due_fen", BigInteger, nullable=False),
    Column("dues", JSONB, nullable=False),
    Column("customer", JSONB, nullable=False),
    Column("cause", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

product_credit = Table(
    "product_credit", metadata,
    Column("product_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False, index=True),
    Column("family", Text, nullable=False),
    Column("product", JSONB, nullable=False),
    Column("state", Text, nullable=False),
    Column("state_changed_at", DateTime(timezone=True), nullable=False),
    Column("command_seq", BigInteger, nullable=False, server_default="0"),
    Column("pending_command_id", Text),
    Column("pending_decision_id", Text),
)

decisions = Table(
    "decisions", metadata,
    Column("decision_id", Text, primary_key=True),
    Column("product_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("state_before", Text, nullable=False),
    Column("state_after", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("context", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_decisions_product", "product_id", "created_at"),
)

# Every state change with its cause, so "why is product X suspended?" has an answer.
state_history = Table(
    "state_history", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("product_id", Text, nullable=False, index=True),
    Column("state_before", Text, nullable=False),
    Column("state_after", Text, nullable=False),
    Column("cause", Text, nullable=False),
    Column("decision_id", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
