"""billing: write-offs lapse when the debt they wrote off is paid or cancelled after all
(docs/billing.md, "Write-offs lapse"). A write-off (核销) is the operator giving up on a debt;
once a payment or a credit note would leave the account in credit while write-offs stand,
that excess of the write-offs lapses (bad debt recovered) instead of becoming the customer's
money that pays the next bills. A lapse is its own ledger row, signed: > 0 the write-offs
lapse by it, < 0 a lapse undone (the payment that caused it bounced).

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
S = "billing"


def upgrade() -> None:
    op.create_table(
        "write_off_lapses",
        sa.Column("lapse_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, sa.ForeignKey(f"{S}.accounts.account_id"),
                  nullable=False, index=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=True, index=True),
        sa.Column("lapsed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.CheckConstraint("amount_fen <> 0", name="write_off_lapse_amount_nonzero"),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
