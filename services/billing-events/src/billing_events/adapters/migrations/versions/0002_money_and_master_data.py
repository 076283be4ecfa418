"""billing: reversals, adjustments, write-offs, deposits, deductions; product channel;
payment source; charges indexed by bill month.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
S = "billing"


def _created_at() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                     server_default=sa.func.now())


def _account_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("account_id", sa.Text, sa.ForeignKey(f"{S}.accounts.account_id"),
                     nullable=False, index=True)


def upgrade() -> None:
    op.add_column("products", sa.Column("channel", sa.Text), schema=S)
    op.add_column("payments", sa.Column("source", sa.Text, nullable=False,
                                        server_default="cash"), schema=S)
    op.create_index("ix_charges_bill_month_account", "charges", ["bill_month", "account_id"],
                    schema=S)
    op.create_table(
        "reversals",
        sa.Column("reversal_id", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, sa.ForeignKey(f"{S}.payments.payment_id"),
                  nullable=False, unique=True),
        _account_fk(),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        schema=S,
    )
    op.create_table(
        "adjustments",
        sa.Column("adjustment_id", sa.Text, primary_key=True),
        _account_fk(),
        sa.Column("product_id", sa.Text, sa.ForeignKey(f"{S}.products.product_id"),
                  nullable=False),
        sa.Column("bill_month", sa.Date, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("adjusted_at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        sa.CheckConstraint("amount_fen <> 0", name="adjustment_amount_nonzero"),
        schema=S,
    )
    op.create_table(
        "write_offs",
        sa.Column("write_off_id", sa.Text, primary_key=True),
        _account_fk(),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("written_off_at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        sa.CheckConstraint("amount_fen > 0", name="write_off_amount_positive"),
        schema=S,
    )
    op.create_table(
        "deposit_movements",
        sa.Column("movement_id", sa.Text, primary_key=True),
        _account_fk(),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        sa.CheckConstraint("amount_fen <> 0", name="deposit_movement_nonzero"),
        schema=S,
    )
    op.create_table(
        "deductions",
        sa.Column("decision_id", sa.Text, primary_key=True),
        _account_fk(),
        sa.Column("requested_fen", sa.BigInteger, nullable=False),
        sa.Column("collected_fen", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
