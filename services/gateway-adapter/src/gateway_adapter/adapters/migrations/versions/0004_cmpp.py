"""gateway: CMPP 2.0 logins (`cmpp_accounts`) and every submit judged (`submits`).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
S = "gateway"


def _ts(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "cmpp_accounts",
        sa.Column("source_addr", sa.Text, primary_key=True),
        sa.Column("shared_secret", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("max_connections", sa.Integer, nullable=False),
        sa.Column("max_rate_per_s", sa.Float, nullable=False),
        _ts("updated_at"),
        schema=S,
    )
    op.create_table(
        "submits",
        sa.Column("submit_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("source_addr", sa.Text),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        _ts("submitted_at"),
        schema=S,
    )
    op.create_index("ix_submits_product", "submits", ["product_id", "submitted_at"], schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
