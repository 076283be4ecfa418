"""credit: each product's own amount due (product_credit.product_amount_due_fen), from the
balance event's `product_dues`: the SMS quote it, and a product that owes nothing of its
own is never warned, suspension-warned or suspended (docs/credit-control.md).

Rows written before it get the account's amount (what they were decided on until now) and
are corrected by the account's next balance event.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007_arrears_ladder"
S = "credit"


def upgrade() -> None:
    op.add_column("product_credit", sa.Column(
        "product_amount_due_fen", sa.BigInteger, nullable=False, server_default="0"), schema=S)
    op.execute(f"UPDATE {S}.product_credit SET product_amount_due_fen = amount_due_fen")


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
