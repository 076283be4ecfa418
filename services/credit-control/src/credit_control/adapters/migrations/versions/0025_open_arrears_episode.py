"""credit: at most one open arrears episode per account, kept by a partial unique index.

The balance path opened an episode only where `NOT EXISTS` an open one. On a table whose
statistics were not yet gathered (a fresh database, or one that grew by a whole bill run
within autovacuum's minute) PostgreSQL planned that as a nested-loop anti join over a
materialized scan of every open episode: per batch, the batch's accounts times the table
(445,500 comparisons for 330 accounts and 1,350 episodes; 65 ms of a 2,400-event batch,
growing with the table). The index answers the same question with one probe per row, as
the insert's `ON CONFLICT DO NOTHING`, whatever the statistics say; and it states the
invariant in the schema.

An owing account's episode has its peak raised by nearly every charge: fillfactor 70 keeps
room on the page so that rewrite is a HOT update (the credit bench's 40,000 events: 142 of
2,212 updates with full pages, 53–63 % with this room; each other one is an entry in each of
the table's three indexes).

Revision ID: 0025
"""

from alembic import op

revision = "0025"
down_revision = "0024"
S = "credit"


def upgrade() -> None:
    op.create_index("ux_credit_arrears_episodes_open", "arrears_episodes", ["account_id"],
                    unique=True, schema=S, postgresql_where="cleared_at IS NULL")
    op.execute(f"ALTER TABLE {S}.arrears_episodes SET (fillfactor = 70)")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
