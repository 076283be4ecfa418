"""billing: a group customer's region (区县分公司, the county branch it belongs to; issue 19):
master data like a product's channel, optional (customers made before it have none).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
S = "billing"


def upgrade() -> None:
    op.add_column("customers", sa.Column("region", sa.Text), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
