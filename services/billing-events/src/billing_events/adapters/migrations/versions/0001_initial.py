"""billing: customers, accounts, products, charges, bill runs, payments; outbox/inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
S = "billing"


def _created_at() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                     server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("star_level", sa.Integer),
        sa.Column("account_manager", JSONB, nullable=False),
        sa.Column("contacts", JSONB, nullable=False),
        _created_at(),
        schema=S,
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, sa.ForeignKey(f"{S}.customers.customer_id"),
                  nullable=False, index=True),
        sa.Column("sequence", sa.BigInteger, nullable=False, server_default="0"),
        _created_at(),
        schema=S,
    )
    op.create_table(
        "products",
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, sa.ForeignKey(f"{S}.accounts.account_id"),
                  nullable=False, index=True),
        sa.Column("cpno", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("vendor", sa.Text),
        _created_at(),
        schema=S,
    )
    op.create_table(
        "charges",
        sa.Column("charge_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, sa.ForeignKey(f"{S}.accounts.account_id"),
                  nullable=False, index=True),
        sa.Column("product_id", sa.Text, sa.ForeignKey(f"{S}.products.product_id"),
                  nullable=False),
        sa.Column("bill_month", sa.Date, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        _created_at(),
        sa.CheckConstraint("amount_fen > 0", name="charge_amount_positive"),
        schema=S,
    )
    op.create_table(
        "bill_runs",
        sa.Column("bill_run_id", sa.Text, primary_key=True),
        sa.Column("bill_month", sa.Date, nullable=False, unique=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accounts_billed", sa.Integer, nullable=False),
        _created_at(),
        schema=S,
    )
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, sa.ForeignKey(f"{S}.accounts.account_id"),
                  nullable=False, index=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        _created_at(),
        sa.CheckConstraint("amount_fen > 0", name="payment_amount_positive"),
        schema=S,
    )
    create_plumbing_tables(S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
