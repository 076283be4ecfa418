"""credit: the preview approval a sweep run decides within (issue 19): its statement takes
only that approval's decision ids, also when the run is resumed after a crash.

Revision ID: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
S = "credit"


def upgrade() -> None:
    op.add_column("sweep_runs", sa.Column("approval_id", sa.Text), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
