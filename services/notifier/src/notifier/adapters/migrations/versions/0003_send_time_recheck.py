"""notifier: send-time re-check (what each product last heard), decision order, cancellations.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
S = "notifier"
TZ = sa.DateTime(timezone=True)
QUEUE = "status IN ('pending', 'held', 'sending')"


def upgrade() -> None:
    op.execute(f"CREATE SEQUENCE {S}.credit_event_seq")
    for column in (
        sa.Column("event_seq", sa.BigInteger),
        sa.Column("decision_as_of", TZ),
        sa.Column("recheck", sa.Text),
        sa.Column("cancelled_at", TZ),
    ):
        op.add_column("messages", column, schema=S)
    op.create_index("ix_messages_recipient_queue", "messages",
                    ["recipient", "account_id", "decision_as_of", "event_seq"], schema=S,
                    postgresql_where=sa.text(QUEUE))
    op.create_index("ix_messages_send_order", "messages",
                    ["decision_as_of", "event_seq", "message_id"], schema=S,
                    postgresql_where=sa.text(QUEUE))
    op.create_index("ix_messages_recipient_claimed", "messages", ["recipient", "claimed_at"],
                    schema=S, postgresql_where=sa.text("claimed_at IS NOT NULL"))
    op.create_table(
        "product_states",
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("event_seq", sa.BigInteger, nullable=False),
        sa.Column("as_of", TZ, nullable=False),
        sa.Column("decision_id", sa.Text, nullable=False),
        sa.Column("normal_seq", sa.BigInteger),
        sa.Column("suspended_seq", sa.BigInteger),
        sa.Column("cycle_seq", sa.BigInteger),
        sa.Column("suspension_exempt", sa.Boolean, nullable=False,
                  server_default=sa.text("false")),
        sa.Column("bill_month", sa.Text),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
