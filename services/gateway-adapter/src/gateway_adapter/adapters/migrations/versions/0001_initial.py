"""gateway: chain products (BOSS status, gateway block), EMOS orders, commands; outbox/inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
S = "gateway"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "chain_products",
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("cpno", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("vendor", sa.Text),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("boss_status", sa.Text, nullable=False),
        _ts("boss_updated_at"),
        sa.Column("gateway_blocked", sa.Boolean, nullable=False),
        _ts("gateway_updated_at"),
        schema=S,
    )
    op.create_table(
        "emos_orders",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("command_id", sa.Text, nullable=False, unique=True),
        sa.Column("product_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        _ts("closed_at", nullable=True),
        schema=S,
    )
    op.create_table(
        "commands",
        sa.Column("command_id", sa.Text, primary_key=True),
        sa.Column("product_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema=S,
    )
    create_plumbing_tables(S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
