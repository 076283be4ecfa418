"""notifier: a message claimed for sending (`sending`) when its product's amount changes keeps
the revision it is owed (`pending_text`, `pending_segments`, `pending_fields`, or
`pending_reason` for a cancellation: nothing owed of its own), applied if its submit fails and
it waits for a retry (or its claim is retaken after its sender died), cleared if it was
accepted (domain/revision.py, docs/notifier.md "Amounts still true when they leave"). NULL:
none pending; only a `sending` row ever has one.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
S = "notifier"


def upgrade() -> None:
    op.add_column("messages", sa.Column("pending_text", sa.Text), schema=S)
    op.add_column("messages", sa.Column("pending_segments", sa.Integer), schema=S)
    op.add_column("messages", sa.Column("pending_fields", JSONB), schema=S)
    op.add_column("messages", sa.Column("pending_reason", sa.Text), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
