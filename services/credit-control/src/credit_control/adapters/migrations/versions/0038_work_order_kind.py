"""credit: `work_orders.kind` and `work_orders.sequence`: a work order is either a decision's
move made by hand (`decision`: a WORK_ORDER product's suspension or restore, or a chain
product's command the chain gave up on; done moves the credit state) or reconciliation's
repair left for a person (`repair`: the gateway still differs after `REPAIR_LIMIT` repairs in
a row; the product is already settled in the desired state, done means a person made the
gateway hold it, and moves nothing and sends nothing). `sequence`: a repair work order's
product command sequence when it was opened; the newest done one's starts the repair limit
again (only repairs after it count). A follow-up of a failed work order keeps its kind and
sequence. Every existing order is a decision's (the column's constant default: nothing is
rewritten, PostgreSQL 11+).

`ix_work_orders_open_repair`: the open repair work orders by product (a few, if any): the
sweep cancels those of the products it suspends through the chain (sweep_sql.py, `void`)
without a probe per product.

Revision ID: 0038
"""

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
S = "credit"


def upgrade() -> None:
    op.add_column("work_orders", sa.Column("kind", sa.Text(), nullable=False,
                                           server_default="decision"), schema=S)
    op.add_column("work_orders", sa.Column("sequence", sa.BigInteger()), schema=S)
    op.create_index("ix_work_orders_open_repair", "work_orders", ["product_id"], schema=S,
                    postgresql_where=sa.text(
                        "kind = 'repair' AND status IN ('created', 'assigned')"))


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
