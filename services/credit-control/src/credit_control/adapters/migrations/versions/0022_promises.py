"""credit: promises to pay (承诺缴费, issue 19): recorded on a worklist entry, they defer the
suspension ladder of the account until the promised date (or the next instalment's).

Revision ID: 0022
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0022"
down_revision = "0021"
S = "credit"


def upgrade() -> None:
    op.create_table(
        "promises",
        sa.Column("promise_id", sa.Text, primary_key=True),  # the client's idempotency key
        sa.Column("entry_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("manager", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # open | kept | broken
        sa.Column("promised_date", sa.Date, nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        # [{due_on, amount_fen, cumulative_fen}], oldest first; the last is the promised date.
        sa.Column("schedule", JSONB, nullable=False),
        sa.Column("instalments", sa.Boolean, nullable=False),
        # What "paid" is measured against: the account's dues of the bill months up to
        # `covered_through` when the promise was made (new bills later do not hide a payment).
        sa.Column("covered_through", sa.Text, nullable=False),  # YYYY-MM
        sa.Column("baseline_fen", sa.BigInteger, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_role", sa.Text, nullable=False),
        sa.Column("approved_by", sa.Text),  # a credit-admin, for a promise beyond the normal
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),  # business time
        sa.Column("recorded_on", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request", JSONB, nullable=False),  # the body, for the idempotent retry
        sa.Column("closed_on", sa.Date),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("paid_fen", sa.BigInteger),  # paid towards it when it was closed
        schema=S,
    )
    # One open promise per account; also what the sweep's `pr` CTE and the daily check read.
    op.create_index("ux_promises_open", "promises", ["account_id"], unique=True, schema=S,
                    postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_promises_account", "promises", ["account_id", "recorded_on"], schema=S)
    op.create_index("ix_promises_manager", "promises", ["manager", "recorded_on"], schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
