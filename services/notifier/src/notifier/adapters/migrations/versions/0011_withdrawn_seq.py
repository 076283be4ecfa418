"""notifier: when a product's suspension warning stopped counting with no decision
(`withdrawn_seq`: credit-control's `credit.state_changed` suspension_warned → warned, the
ladder restarted or an upgrade voided the warning). A suspension warning made before it and
still waiting names a date no suspension will follow: the re-check cancels it (domain/
recheck.py RULES). NULL: never.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
S = "notifier"


def upgrade() -> None:
    op.add_column("product_states", sa.Column("withdrawn_seq", sa.BigInteger), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
