"""credit: review tasks for a credit-admin (restore or keep) when a customer with a sanctioned
product (suspended, suspension in flight, pre-cancelled) is put on the red list or under an
emergency no-suspension (docs/credit-control.md).

Revision ID: 0009_reviews
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_reviews"
down_revision = "0008"
S = "credit"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.Text, primary_key=True),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("exemption_id", sa.Text, nullable=False),
        sa.Column("exemption_kind", sa.Text, nullable=False),
        sa.Column("state_at_open", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # open | restored | kept
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("opened_by", sa.Text, nullable=False),
        _ts("opened_at"),
        sa.Column("decided_by", sa.Text),
        _ts("decided_at", nullable=True),
        sa.Column("note", sa.Text),
        sa.Column("decision_id", sa.Text),  # the restore decision, when there was one
        sa.Column("outcome", sa.Text),  # what the decision did to the product
        schema=S,
    )
    op.create_index("ix_reviews_status", "reviews", ["status", "opened_at"], schema=S)
    op.create_index("ix_reviews_product", "reviews", ["product_id"], schema=S)
    # The pre-cancellation worklist's `lifted` side: few rows, read newest first.
    op.create_index("ix_state_history_pre_cancel_lifted", "state_history", ["at"], schema=S,
                    postgresql_where=sa.text("state_before = 'pre_cancel'"))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
