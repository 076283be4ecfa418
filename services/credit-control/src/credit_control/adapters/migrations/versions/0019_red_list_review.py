"""credit: red-list review (docs/collections.md "Red-list review"): the review date a
renewal set. An entry without one is due `CREDIT_REDLIST_REVIEW_MONTHS` after it was added.

Revision ID: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
S = "credit"


def upgrade() -> None:
    op.add_column("exemptions", sa.Column("review_on", sa.Date), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
