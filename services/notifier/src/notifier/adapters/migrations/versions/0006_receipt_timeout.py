"""notifier: the messages still waiting for their delivery receipt, by submit time, so the
receipt timeout (service_layer/receipts.py `time_out_receipts`) finds the notices whose
receipt is overdue without reading the whole message log. Small: a message leaves it as soon
as its receipt comes.

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"
S = "notifier"


def upgrade() -> None:
    op.create_index("ix_messages_awaiting_receipt", "messages", ["submitted_at"], schema=S,
                    postgresql_where="status = 'submitted'")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
