"""credit: `product_credit.notice_withdrawals`, the suspension warnings of this ladder that the
notifier withdrew at send time (`cancelled`: the customer paid, became exempt, promised to
pay; the re-check's reasons, notifier/domain/recheck.py). Such a warning is owed again, but
it is not a failed delivery: it no longer counts in `notice_failures`, the streak that lets a
suspension go ahead as an exception after `CREDIT_NOTICE_MAX_WARNINGS`
(credit/domain/ladder.py WITHDRAWN, docs/rules.md). The next warning's id is named for both
(`~n`, n = failures + withdrawals), as it was for the lost ones before.

A product whose current warning is `cancelled` moves that one count from failures to
withdrawals (the sum, and so the next warning's id, is unchanged); older cancellations of
the same ladder folded into `notice_failures` cannot be told apart any more and stay there.
Adding a NOT NULL column with a constant default rewrites nothing (PostgreSQL 11+).

Revision ID: 0037
"""

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
S = "credit"


def upgrade() -> None:
    op.add_column("product_credit", sa.Column("notice_withdrawals", sa.Integer(),
                                              nullable=False, server_default="0"), schema=S)
    op.execute("UPDATE credit.product_credit SET notice_withdrawals = 1, "
               "notice_failures = notice_failures - 1 "
               "WHERE notice_status = 'cancelled' AND notice_failures > 0")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
