"""notifier: versioned templates, delivery receipts, quiet hours, reminder timeliness.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
S = "notifier"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("template_version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("trigger", sa.Text),
        sa.Column("reminder", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("bill_month", sa.Text),
        sa.Column("decided_at", TZ),
        sa.Column("delivered_at", TZ),
        sa.Column("receipt_status", sa.Text),
    ):
        op.add_column("messages", column, schema=S)
    # 'failed' is now called what it is: the message was dead-lettered.
    op.execute(f"UPDATE {S}.messages SET status = 'dead_lettered' WHERE status = 'failed'")
    op.drop_index("ix_messages_pending", "messages", schema=S)
    op.create_index("ix_messages_send_queue", "messages", ["created_at"], schema=S,
                    postgresql_where=sa.text("status IN ('pending', 'held', 'sending')"))
    op.create_index("ix_messages_provider_id", "messages", ["provider_message_id"], schema=S)
    op.create_index("ix_messages_bill_month", "messages", ["bill_month"], schema=S,
                    postgresql_where=sa.text("reminder"))
    op.create_table(
        "templates",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("changed_by", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("name", "version"),
        schema=S,
    )
    op.create_table(
        "receipts",
        sa.Column("provider_message_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("receipt_at", TZ, nullable=False),
        schema=S,
    )
    for column in (
        sa.Column("segments", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("submits", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("receipt_due_at", TZ),
        sa.Column("receipt_sent_at", TZ),
        sa.Column("receipt_status", sa.Text),
    ):
        op.add_column("smsc_received", column, schema=S)
    # Receipts for what the SMSC took before this revision: not owed any more.
    op.execute(f"UPDATE {S}.smsc_received SET receipt_sent_at = received_at")
    op.create_index("ix_smsc_receipt_due", "smsc_received", ["receipt_due_at"], schema=S,
                    postgresql_where=sa.text("receipt_sent_at IS NULL"))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
