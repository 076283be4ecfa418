"""credit: the customer's region (区县分公司, its county branch; issue 19) on product_credit,
next to its tier and star level, so a region freeze and the preview's regions read the one
table the sweep reads. Filled by the next balance event of each account (billing's customer
snapshot carries it from billing's migration 0007); NULL until then, and for customers
without one.

Revision ID: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
S = "credit"


def upgrade() -> None:
    op.add_column("product_credit", sa.Column("region", sa.Text), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
