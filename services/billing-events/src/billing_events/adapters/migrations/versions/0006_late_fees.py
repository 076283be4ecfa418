"""billing: late fees (滞纳金, docs/billing.md "Late fees"): the lines a bill run posted, the
disputed bills no late fee is charged on, and the exemption facts credit-control's decisions
carry (red list or emergency no-suspension) per account.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
S = "billing"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "late_fees",
        sa.Column("line_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("bill_month", sa.Date, nullable=False),  # the overdue bill
        sa.Column("posted_bill_month", sa.Date, nullable=False),  # the bill it is a line of
        sa.Column("bill_run_id", sa.Text, nullable=False),
        sa.Column("base_fen", sa.BigInteger, nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("rate_bp_per_day", sa.Integer, nullable=False),
        sa.Column("fee_fen", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("charge_id", sa.Text),  # the charge line on the bill (fee > 0)
        sa.Column("waived_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("waived_by", sa.Text),
        _ts("waived_at", nullable=True),
        sa.Column("waive_reason", sa.Text),
        _ts("posted_at"),
        sa.CheckConstraint("fee_fen >= 0 AND waived_fen >= 0 AND waived_fen <= fee_fen",
                           name="ck_late_fees_amounts"),
        schema=S,
    )
    op.create_index("ix_late_fees_bill", "late_fees", ["account_id", "product_id", "bill_month"],
                    schema=S)
    op.create_table(
        "disputes",
        sa.Column("dispute_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("bill_month", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("opened_by", sa.Text, nullable=False),
        _ts("opened_at"),
        sa.Column("resolved_by", sa.Text),
        _ts("resolved_at", nullable=True),
        sa.Column("resolution", sa.Text),
        schema=S,
    )
    op.create_index("ix_disputes_bill", "disputes", ["account_id", "product_id", "bill_month"],
                    schema=S)
    op.create_table(
        "credit_exemption_facts",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("exempt", sa.Boolean, nullable=False),
        _ts("as_of"),
        sa.Column("decision_id", sa.Text, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
