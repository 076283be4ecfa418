"""notifier: message log, the simulated SMSC's record; outbox/inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
S = "notifier"


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("recipient_name", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        schema=S,
    )
    op.create_index("ix_messages_product", "messages", ["product_id"], schema=S)
    op.create_index("ix_messages_recipient", "messages", ["recipient"], schema=S)
    op.create_index("ix_messages_pending", "messages", ["created_at"], schema=S,
                    postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_table(
        "smsc_received",
        sa.Column("smsc_message_id", sa.Text, primary_key=True),
        sa.Column("client_ref", sa.Text, nullable=False, unique=True),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema=S,
    )
    create_plumbing_tables(S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
