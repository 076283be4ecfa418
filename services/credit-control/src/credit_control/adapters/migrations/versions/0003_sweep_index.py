"""credit: an index that lets a sweep step read only the products that owe for the months it
looks at, instead of every heap page of a family × tier (docs/benchmarks.md, credit-control).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
S = "credit"


def upgrade() -> None:
    # Partial on the owing products: a calendar step always compares oldest_due_month, which
    # the planner proves non-null; state last so a re-run skips decided products in the index.
    op.create_index("ix_product_credit_owing", "product_credit",
                    ["family", "tier", "oldest_due_month", "state"], schema=S,
                    postgresql_where=sa.text("oldest_due_month IS NOT NULL"))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
