"""credit: scoped emergency freezes (issue 19): automatic suspensions (and, if asked,
suspension warnings) stopped for a scope, with what each freeze held back.

Revision ID: 0021
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0021"
down_revision = "0019"
S = "credit"


def upgrade() -> None:
    op.create_table(
        "freezes",
        sa.Column("freeze_id", sa.Text, primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),  # all | family | tier | star_level | ...
        sa.Column("value", sa.Text),  # NULL for `all`
        sa.Column("covers_warnings", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approver", sa.Text, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_by", sa.Text),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.Text),
        # When its held-back products were sent through the notice period again (ended or
        # expired): done once.
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("released", JSONB),
        schema=S,
    )
    op.create_index("ix_freezes_open", "freezes", ["until"], schema=S,
                    postgresql_where=sa.text("released_at IS NULL"))
    op.create_table(
        "freeze_holds",
        sa.Column("freeze_id", sa.Text, sa.ForeignKey(f"{S}.freezes.freeze_id"),
                  primary_key=True),
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("decision", sa.Text, primary_key=True),  # suspend | suspension_warning
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("first_held_on", sa.Date, nullable=False),
        sa.Column("last_held_on", sa.Date, nullable=False),
        sa.Column("amount_due_fen", sa.BigInteger, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
