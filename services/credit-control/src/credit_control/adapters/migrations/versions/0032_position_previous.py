"""credit: an account position keeps what it was before its last move, and no digest.

The balance path moves each account's position to the batch's newest event in the batch's
first statement, which returns the position each account had before (its sequence: which
of the batch's events are stale; its debt: the rating's arrears before the batch). The
update sets `previous_sequence` and `previous_amount_due_fen` from the row it locked, and
returns them (adapters/balance_sql.py). That statement replaced a `SELECT … FOR UPDATE` of
the positions first and their upsert last: a statement fewer a batch, and a row lock fewer an
account. NULL: no position before.

The customer snapshot's digest (0028) goes: it let the upsert skip a snapshot it had read
was unchanged, and nothing is read before the upsert now; the snapshot is `json` (0029),
checked rather than parsed into jsonb, ~1 µs of the server's an event.

Revision ID: 0032
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
S = "credit"


def upgrade() -> None:
    op.add_column("account_positions", sa.Column("previous_sequence", sa.BigInteger()),
                  schema=S)
    op.add_column("account_positions", sa.Column("previous_amount_due_fen", sa.BigInteger()),
                  schema=S)
    op.drop_column("account_positions", "customer_digest", schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
