"""credit: the arrears ladder on product_credit (credit/domain/ladder.py): the oldest owing month
the warning level and the suspension warning belong to, and when the suspension warning was decided
and which deadline it named, so a suspension needs notice of the same cycle and month.

Existing rows: the ladder is the current oldest owing month; a suspension-warned product keeps
the newest suspension warning of its cycle (its business date and the deadline it named).

Revision ID: 0007_arrears_ladder
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_arrears_ladder"
down_revision = "0006_sweep_runs"
S = "credit"


def upgrade() -> None:
    op.add_column("product_credit", sa.Column("ladder_month", sa.Date()), schema=S)
    op.add_column("product_credit", sa.Column("suspension_warned_on", sa.Date()), schema=S)
    op.add_column("product_credit", sa.Column("suspension_deadline", sa.Date()), schema=S)
    op.execute("UPDATE credit.product_credit SET ladder_month = oldest_due_month")
    op.execute("""
        UPDATE credit.product_credit p
        SET suspension_warned_on = (w.as_of AT TIME ZONE 'Asia/Shanghai')::date,
            suspension_deadline = (w.context->>'deadline')::date
        FROM (SELECT DISTINCT ON (product_id) product_id, as_of, context
              FROM credit.decisions WHERE decision = 'suspension_warning'
              ORDER BY product_id, as_of DESC) w
        WHERE w.product_id = p.product_id AND p.state = 'suspension_warned'
          AND w.context->>'deadline' IS NOT NULL""")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
