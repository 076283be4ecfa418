"""billing: the business moment a charge was dated with (`charged_at`: the `as_of` of
POST /v1/charges, when given), so a bill run dated before a charge of its month is refused (it
would close the month before the charge came in). A charge without `as_of`, a CSV row, a late
fee (posted by the run itself) and a charge recorded before this revision have none.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
S = "billing"


def upgrade() -> None:
    op.add_column("charges", sa.Column("charged_at", sa.DateTime(timezone=True)), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
