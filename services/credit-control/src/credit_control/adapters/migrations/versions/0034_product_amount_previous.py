"""credit: a product keeps what it owed of its own before its last balance batch.

A notice the notifier has not sent yet (held by the quiet hours, waiting for a retry) quotes
the product's own amount as of its decision. When a later balance event changes that amount
with no decision (a partial payment, an adjustment, a new bill), credit-control publishes
`credit.product_amount_changed` and the notifier revises the waiting notice. The balance
path's products upsert sets `previous_product_amount_due_fen` from the row it locked and
returns it beside the new amount (adapters/balance_sql.py), as the positions' previous
columns do (0032): no read before the upsert. NULL: not known (a new product, or a row not
moved since this revision).

Revision ID: 0034
"""

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
S = "credit"


def upgrade() -> None:
    op.add_column("product_credit",
                  sa.Column("previous_product_amount_due_fen", sa.BigInteger()), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
