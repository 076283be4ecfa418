"""notifier's tables, in schema `notifier`."""

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, Table, Text, func, text

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "notifier"
metadata = MetaData(schema=SCHEMA)
# The sender's queue: due pending rows and stale 'sending' claims. Queries repeat it as literal
# SQL so the planner can match the partial index even with a generic (bound-parameter) plan.
IN_SEND_QUEUE = "status IN ('pending', 'sending')"

messages = Table(
    "messages", metadata,
    Column("message_id", Text, primary_key=True),
    Column("source_id", Text, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("recipient_name", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("segments", Integer, nullable=False),
    # pending → sending → submitted; back to pending to retry, failed after the last attempt;
    # undeliverable (never tried) for a malformed number.
    Column("status", Text, nullable=False),
    Column("status_reason", Text),
    Column("provider_message_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),  # pending: not before (backoff)
    Column("claimed_at", DateTime(timezone=True)),  # sending: reclaimable once stale
    Column("last_error", Text),
    Index("ix_messages_product", "product_id"),
    Index("ix_messages_recipient", "recipient"),
    Index("ix_messages_pending", "created_at", postgresql_where=text(IN_SEND_QUEUE)),
)

# What the simulated SMSC received: it stands for the operator's SMS centre.
smsc_received = Table(
    "smsc_received", metadata,
    Column("smsc_message_id", Text, primary_key=True),
    Column("client_ref", Text, nullable=False, unique=True),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
