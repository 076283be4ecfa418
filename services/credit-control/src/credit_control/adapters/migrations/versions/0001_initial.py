"""credit: account positions, product credit state, decisions, state history; outbox/inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
S = "credit"


def _ts(name: str, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "account_positions",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("balance_fen", sa.BigInteger, nullable=False),
        sa.Column("amount_due_fen", sa.BigInteger, nullable=False),
        sa.Column("dues", JSONB, nullable=False),
        sa.Column("customer", JSONB, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        _ts("as_of"),
        _ts("updated_at", server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "product_credit",
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False, index=True),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("product", JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        _ts("state_changed_at"),
        sa.Column("command_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("pending_command_id", sa.Text),
        sa.Column("pending_decision_id", sa.Text),
        schema=S,
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.Text, primary_key=True),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state_before", sa.Text, nullable=False),
        sa.Column("state_after", sa.Text, nullable=False),
        _ts("as_of"),
        sa.Column("context", JSONB, nullable=False),
        _ts("created_at", server_default=sa.func.now()),
        schema=S,
    )
    op.create_index("ix_decisions_product", "decisions", ["product_id", "created_at"], schema=S)
    op.create_table(
        "state_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("product_id", sa.Text, nullable=False, index=True),
        sa.Column("state_before", sa.Text, nullable=False),
        sa.Column("state_after", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("decision_id", sa.Text),
        _ts("at"),
        schema=S,
    )
    create_plumbing_tables(S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
