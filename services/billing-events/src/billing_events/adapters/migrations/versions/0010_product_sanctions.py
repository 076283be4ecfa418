"""billing: the products credit-control has sanctioned (suspended, pre-cancelled, or a
suspension or restore in flight), as its decisions and state changes on credit.decisions.v1
say, so that a product's family is not changed under a sanction (docs/billing.md, master
data): the rule table is per family and the gateway serves only MAS and SMS-direct, so a
suspended product moved to another family could never be restored by the chain.

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
S = "billing"


def upgrade() -> None:
    op.create_table(
        "product_sanctions",
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision_id", sa.Text, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
