"""billing: adjustments indexed by bill month, like charges (a bill run selects its accounts
by the month's charges and adjustments; without it the adjustments are scanned whole).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
S = "billing"


def upgrade() -> None:
    op.create_index("ix_adjustments_bill_month_account", "adjustments",
                    ["bill_month", "account_id"], schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
