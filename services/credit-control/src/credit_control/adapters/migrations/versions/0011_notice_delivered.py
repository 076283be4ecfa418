"""credit: what became of the current suspension warning's SMS (the notifier's
`notifier.notices.v1` outcomes), so a suspension needs a warning that reached the customer a
notice period earlier (credit/domain/ladder.py `Notice`, credit/adapters/sweep_sql.py `notice_*`).

Existing rows: a product already suspension-warned keeps the newest suspension warning of its
cycle as its current one, and that warning's notice is taken as delivered when it was decided
(the rule before this version); the notice period is its deadline minus its day.

Revision ID: 0011_notice_delivered
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_notice_delivered"
down_revision = "0010"
S = "credit"


def upgrade() -> None:
    for column in (
        sa.Column("suspension_warning_id", sa.Text()),
        sa.Column("notice_status", sa.Text()),
        sa.Column("notice_sent_at", sa.DateTime(timezone=True)),
        sa.Column("notice_delivered_at", sa.DateTime(timezone=True)),
        sa.Column("notice_reason", sa.Text()),
        sa.Column("notice_permanent", sa.Boolean(), nullable=False,
                  server_default=sa.text("false")),
        sa.Column("notice_days", sa.Integer()),
        sa.Column("notice_failures", sa.Integer(), nullable=False, server_default="0"),
    ):
        op.add_column("product_credit", column, schema=S)
    op.execute("""
        UPDATE credit.product_credit p
        SET suspension_warning_id = w.decision_id, notice_status = 'delivered',
            notice_sent_at = w.as_of, notice_delivered_at = w.as_of,
            notice_reason = 'before notice outcomes were followed',
            notice_days = GREATEST(1, p.suspension_deadline - p.suspension_warned_on)
        FROM (SELECT DISTINCT ON (product_id) product_id, decision_id, as_of
              FROM credit.decisions WHERE decision = 'suspension_warning'
              ORDER BY product_id, as_of DESC) w
        WHERE w.product_id = p.product_id AND p.state = 'suspension_warned'
          AND p.suspension_deadline IS NOT NULL""")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
