"""credit: collections escalation (docs/collections.md "Escalation"): a case per account in
arrears past suspension with its phase, the log of its steps (each a decision with its
reason), and the products it suspended by association (关联停机) until the arrears are paid.

Revision ID: 0017
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
S = "credit"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "collection_cases",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # open | paid | closed
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("arrears_fen", sa.BigInteger, nullable=False),
        sa.Column("association_approved_by", sa.Text),
        _ts("association_approved_at", nullable=True),
        sa.Column("association_note", sa.Text),
        sa.Column("legal_referred_on", sa.Date),
        _ts("advanced_at"),  # the as_of of the newest run that looked at it
        _ts("closed_at", nullable=True),
        sa.Column("closed_reason", sa.Text),
        schema=S,
    )
    # At most one open case per account: a run's INSERT … ON CONFLICT DO NOTHING adds none.
    op.create_index("ux_collection_cases_open", "collection_cases", ["account_id"], schema=S,
                    unique=True, postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_collection_cases_customer", "collection_cases", ["customer_id"],
                    schema=S)
    op.create_table(
        "collection_steps",
        sa.Column("step_id", sa.Text, primary_key=True),
        # The order steps were recorded in (several share a moment: an approval and the
        # suspensions it carried out).
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("phase", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        _ts("at"),
        sa.Column("product_id", sa.Text),
        sa.Column("decision_id", sa.Text),
        sa.Column("details", JSONB),
        schema=S,
    )
    op.create_index("ix_collection_steps_case", "collection_steps", ["case_id", "at"], schema=S)
    op.create_table(
        "collection_associations",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # suspended | restored
        sa.Column("suspend_decision_id", sa.Text, nullable=False),
        _ts("suspended_at"),
        sa.Column("restore_decision_id", sa.Text),
        _ts("restored_at", nullable=True),
        sa.Column("restore_outcome", sa.Text),
        schema=S,
    )
    op.create_index("ix_collection_associations_product", "collection_associations",
                    ["product_id"], schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
