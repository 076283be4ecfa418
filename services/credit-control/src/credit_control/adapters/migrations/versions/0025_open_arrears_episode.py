"""credit: at most one open arrears episode per account, kept by a partial unique index.

The balance path opened an episode only where `NOT EXISTS` an open one. On a table whose
statistics were not yet gathered (a fresh database, or one that grew by a whole bill run
within autovacuum's minute) PostgreSQL planned that as a nested-loop anti join over a
materialized scan of every open episode: per batch, the batch's accounts times the table
(445,500 comparisons for 330 accounts and 1,350 episodes; 65 ms of a 2,400-event batch,
growing with the table). The index answers the same question with one probe per row, as
the insert's `ON CONFLICT DO NOTHING`, whatever the statistics say; and it states the
invariant in the schema.

Revision ID: 0025
"""

from alembic import op

revision = "0025"
down_revision = "0024"
S = "credit"


def upgrade() -> None:
    op.create_index("ux_credit_arrears_episodes_open", "arrears_episodes", ["account_id"],
                    unique=True, schema=S, postgresql_where="cleared_at IS NULL")


def downgrade() -> None:
    op.drop_index("ux_credit_arrears_episodes_open", "arrears_episodes", schema=S)
