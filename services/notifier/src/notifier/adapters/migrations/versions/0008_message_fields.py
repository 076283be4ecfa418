"""notifier: each message keeps the fields it was rendered from (`fields`, JSON of
domain/templates.NoticeFields) and when its amounts were last revised (`revised_at`), so a
notice not sent yet can be given the product's new own amount (domain/revision.py). Messages
made before this migration have no fields and are never revised.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
S = "notifier"


def upgrade() -> None:
    op.add_column("messages", sa.Column("fields", JSONB), schema=S)
    op.add_column("messages", sa.Column("revised_at", sa.DateTime(timezone=True)), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
