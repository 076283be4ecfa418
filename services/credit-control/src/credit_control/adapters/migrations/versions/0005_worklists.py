"""credit: collections worklists (欠费催缴): call and visit entries per account, their contact
attempts, promised payment dates or refusal reasons, and the arrears cause (docs/collections.md).

Revision ID: 0005_worklists
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_worklists"
down_revision = "0004"
S = "credit"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "worklist_entries",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("bill_month", sa.Date, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("customer", JSONB, nullable=False),
        sa.Column("manager", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("arrears_fen", sa.BigInteger, nullable=False),
        sa.Column("oldest_month", sa.Date, nullable=False),
        sa.Column("months", sa.Integer, nullable=False),
        sa.Column("dues", JSONB, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        _ts("refreshed_at"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_attempt", JSONB),
        sa.Column("promised_date", sa.Date),
        sa.Column("refusal_reason", sa.Text),
        sa.Column("cause", sa.Text),
        sa.Column("cause_note", sa.Text),
        sa.Column("cause_by", sa.Text),
        _ts("cause_at", nullable=True),
        _ts("closed_at", nullable=True),
        sa.Column("closed_reason", sa.Text),
        sa.Column("reopened", sa.Integer, nullable=False, server_default="0"),
        schema=S,
    )
    op.create_index("ux_worklist_key", "worklist_entries", ["account_id", "kind", "bill_month"],
                    unique=True, schema=S)
    # One active entry per account and list; also what a payment's close-on-clear probes.
    op.create_index("ux_worklist_active", "worklist_entries", ["account_id", "kind"],
                    unique=True, schema=S, postgresql_where=sa.text(
                        "status IN ('open', 'contacted', 'promised', 'refused')"))
    op.create_index("ix_worklist_list", "worklist_entries", ["kind", "status", "manager"],
                    schema=S)
    op.create_table(
        "worklist_attempts",
        sa.Column("attempt_id", sa.Text, primary_key=True),
        sa.Column("entry_id", sa.Text, nullable=False),
        _ts("at"),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("promised_date", sa.Date),
        sa.Column("refusal_reason", sa.Text),
        sa.Column("status_after", sa.Text, nullable=False),
        _ts("created_at"),
        schema=S,
    )
    op.create_index("ix_worklist_attempts_entry", "worklist_attempts", ["entry_id", "at"],
                    schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
