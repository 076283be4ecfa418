"""credit: the one-pass sweep reads products in primary-key order and needs no index on
`state`; the two sweep indexes that had it go, so a state UPDATE (the sweep's, a balance
event's) touches no indexed column and can be HOT, given room on the page: fillfactor 85
(docs/benchmarks.md, credit-control sweep).

Revision ID: 0013
"""

from alembic import op

revision = "0013"
down_revision = "0011_notice_delivered"
S = "credit"


def upgrade() -> None:
    # (family, tier, state): the per-rule-row steps' scan; (family, tier, oldest_due_month,
    # state) WHERE oldest_due_month IS NOT NULL: theirs too (migration 0003). Nothing else reads
    # product_credit by state through them.
    op.drop_index("ix_product_credit_sweep", table_name="product_credit", schema=S)
    op.drop_index("ix_product_credit_owing", table_name="product_credit", schema=S)
    # Room on each page for the new version of a row whose state changes, so the UPDATE can
    # stay on the page (HOT); pages written from now on (a table loaded by COPY has none).
    op.execute(f"ALTER TABLE {S}.product_credit SET (fillfactor = 85)")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
