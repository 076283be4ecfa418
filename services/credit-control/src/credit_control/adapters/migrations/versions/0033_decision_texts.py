"""credit: a decision's notice context and inputs are stored as `text`, not `json`.

Both are written as JSON text by their makers: msgspec (the balance path) or the month-end
sweep's statement, which splices the stored snapshots into them (0029, 0030). A `json`
column checks every byte of that text on the way in, ~1.1 KB a decision: 6 % of the
server's instructions per decision of a sweep chunk (496,598 → 465,043 with `text`,
`make bench-instructions WHAT=sweep`; docs/benchmarks.md, twenty-first session). Nothing
in the database needs them checked: their makers write them from typed values, and what
reads inside them casts (`context::json ->> 'deadline'`; the preview and the invariant
checker). Python reads and writes them as JSON values (`tables.JsonText`).

ALTER ... TYPE rewrites the table under an exclusive lock: on a production database of
millions of decisions it wants a maintenance window, as 0029 and 0030 did.

Revision ID: 0033
"""

from alembic import op

revision = "0033"
down_revision = "0032"


def upgrade() -> None:
    op.execute("ALTER TABLE credit.decisions ALTER COLUMN context TYPE text, "
               "ALTER COLUMN inputs TYPE text")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
