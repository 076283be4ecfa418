"""credit: the account's deposit on its position, so a deduction (划扣) asks only for what the
deposit can cover, and none is decided (nor announced by SMS) when there is no deposit.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
S = "credit"


def upgrade() -> None:
    op.add_column("account_positions",
                  sa.Column("deposit_fen", sa.BigInteger(), nullable=False, server_default="0"),
                  schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
