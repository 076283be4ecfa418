"""notifier's tables, in schema `notifier`."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "notifier"
metadata = MetaData(schema=SCHEMA)
# The sender's queue: due pending rows, held rows (quiet hours) and stale 'sending' claims.
# Queries repeat it as literal SQL so the planner can match the partial index even with a
# generic (bound-parameter) plan.
IN_SEND_QUEUE = "status IN ('pending', 'held', 'sending')"
RECEIPT_DUE = "receipt_sent_at IS NULL"

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
    # held (quiet hours) → pending → sending → submitted → delivered | rejected (receipt);
    # back to pending to retry, dead_lettered after the last attempt; undeliverable (never
    # tried) for a missing or malformed number; cancelled (never sent) when its reason no
    # longer held as it was about to leave (status_reason says why).
    Column("status", Text, nullable=False),
    Column("status_reason", Text),
    Column("provider_message_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # pending / held: not before (backoff, or the next opening of the sending window)
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_at", DateTime(timezone=True)),  # sending: reclaimable once stale
    Column("last_error", Text),
    Column("template_version", Integer, nullable=False, server_default=text("1")),
    Column("trigger", Text),  # the decision type, or the state the product reached
    Column("reminder", Boolean, nullable=False, server_default=text("false")),
    Column("bill_month", Text),  # YYYY-MM the reminder is about (reminder timeliness)
    Column("decided_at", DateTime(timezone=True)),  # when credit-control made the decision
    Column("delivered_at", DateTime(timezone=True)),  # the delivery receipt's time
    Column("receipt_status", Text),
    # Send-time re-check (domain/recheck.py): the number of the credit event that made it
    # (notifier-wide, in the order events were received), the decision's business time
    # (decision order per recipient, quiet hours, the outcomes' dating; a catch-up
    # decision's: when it was really made, domain/outcomes.sending_as_of), what makes it
    # stale, when it was cancelled.
    Column("event_seq", BigInteger),
    Column("decision_as_of", DateTime(timezone=True)),
    Column("recheck", Text),
    Column("cancelled_at", DateTime(timezone=True)),
    # What the text was rendered from (domain/templates.NoticeFields as JSON) and when its
    # amounts were last revised (domain/revision.py; migration 0008). NULL fields: made
    # before 0008, never revised.
    Column("fields", JSONB),
    Column("revised_at", DateTime(timezone=True)),
    # A revision owed to a message claimed for sending when its product's amount changed
    # (migration 0009): it may be at the SMSC already, so its text is not touched while its
    # submit is out. Applied if the submit fails and the message waits for a retry (or its
    # claim is retaken after its sender died), cleared once the SMSC accepted it. The text,
    # segments and fields it is to leave with, or the reason it is to be cancelled instead
    # (nothing owed of its own); NULL: none pending. Only a 'sending' row has one.
    Column("pending_text", Text),
    Column("pending_segments", Integer),
    Column("pending_fields", JSONB),
    Column("pending_reason", Text),
    # The template (and its version) a message claimed for sending is to be rendered as
    # instead, owed with the text above: its product became exempt from suspension while its
    # submit was out, and a warning_3 must not leave again threatening one (warning_3_exempt;
    # migration 0010, domain/revision.py exempt_revisions). NULL: its own template.
    Column("pending_template", Text),
    Column("pending_template_version", Integer),
    Index("ix_messages_product", "product_id"),
    Index("ix_messages_recipient", "recipient"),
    Index("ix_messages_send_queue", "created_at", postgresql_where=text(IN_SEND_QUEUE)),
    Index("ix_messages_provider_id", "provider_message_id"),
    Index("ix_messages_bill_month", "bill_month", postgresql_where=text("reminder")),
    Index("ix_messages_recipient_queue", "recipient", "account_id", "decision_as_of", "event_seq",
          postgresql_where=text(IN_SEND_QUEUE)),
    Index("ix_messages_send_order", "decision_as_of", "event_seq", "message_id",
          postgresql_where=text(IN_SEND_QUEUE)),
    Index("ix_messages_recipient_claimed", "recipient", "claimed_at",
          postgresql_where=text("claimed_at IS NOT NULL")),
    # The receipt timeout's scan (migration 0006): accepted, no receipt yet.
    Index("ix_messages_awaiting_receipt", "submitted_at",
          postgresql_where=text("status = 'submitted'")),
)

# Numbers the credit events as the notifier receives them (in order per product).
credit_event_seq = Sequence("credit_event_seq", metadata=metadata)

# What the notifier last heard about each product (domain/recheck.py ProductFacts): the
# sender's claim re-checks every waiting message against it.
product_states = Table(
    "product_states", metadata,
    Column("product_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("decision_id", Text, nullable=False),
    Column("normal_seq", BigInteger),  # the last return to normal (cleared, restored)
    Column("suspended_seq", BigInteger),  # the last confirmed suspension
    Column("cycle_seq", BigInteger),  # the current arrears cycle began
    Column("withdrawn_seq", BigInteger),  # the last suspension warning that stopped counting
    Column("suspension_exempt", Boolean, nullable=False, server_default=text("false")),
    Column("bill_month", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Template texts changed through the API; version 1 of every template is the shipped default
# (domain/templates.py), so only changes are stored.
templates = Table(
    "templates", metadata,
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("changed_by", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("name", "version"),
)

# Delivery receipts as they arrive; kept so a receipt that overtakes the submit's bookkeeping
# (a crash between the two) is applied when the bookkeeping catches up.
receipts = Table(
    "receipts", metadata,
    Column("provider_message_id", Text, primary_key=True),
    Column("status", Text, nullable=False),  # delivered | rejected
    Column("error", Text),
    Column("receipt_at", DateTime(timezone=True), nullable=False),
)

# What the simulated SMSC received: it stands for the operator's SMS centre.
smsc_received = Table(
    "smsc_received", metadata,
    Column("smsc_message_id", Text, primary_key=True),
    Column("client_ref", Text, nullable=False, unique=True),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("segments", Integer, nullable=False, server_default=text("1")),
    Column("submits", Integer, nullable=False, server_default=text("1")),  # incl. duplicates
    Column("receipt_due_at", DateTime(timezone=True)),
    Column("receipt_sent_at", DateTime(timezone=True)),
    Column("receipt_status", Text),
    Index("ix_smsc_receipt_due", "receipt_due_at", postgresql_where=text(RECEIPT_DUE)),
)

# The notice outcomes published (domain/outcomes.py): each (decision, status) once.
notice_outcomes = Table(
    "notice_outcomes", metadata,
    Column("decision_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),  # business time
    Column("wall_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text),
    PrimaryKeyConstraint("decision_id", "status"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
