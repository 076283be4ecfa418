"""credit: an account position keeps a digest of its customer snapshot.

Every balance event rewrites its account's position, and PostgreSQL parsed the customer
snapshot (~250 bytes of JSON: names, contacts) into jsonb every time, ~6 µs of the server's
time an event on this VM, though a group customer's snapshot rarely changes. The balance path
reads the positions it locks anyway; with the stored digest it sends the snapshot only when
it differs (adapters/balance_sql.py). NULL: not known (positions written before this
revision), so the next event writes the snapshot and its digest.

Revision ID: 0028
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
S = "credit"


def upgrade() -> None:
    op.add_column("account_positions", sa.Column("customer_digest", sa.LargeBinary()),
                  schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
