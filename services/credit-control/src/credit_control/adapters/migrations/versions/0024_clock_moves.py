"""credit: the simulation clock's moves (docs/simulation-clock.md), each published to the
compacted clock topic; the latest is the clock's offset.

Revision ID: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
# 0023 is the region's (issue 19, helper `region`): when both are merged this follows it.
down_revision = "0023"
S = "credit"


def upgrade() -> None:
    op.create_table(
        "clock_moves",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("move_id", sa.Text, nullable=False, unique=True),  # the client's id
        sa.Column("wall_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_offset_s", sa.Float, nullable=False),
        sa.Column("offset_s", sa.Float, nullable=False),
        sa.Column("simulated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("clock_moves", schema=S)
