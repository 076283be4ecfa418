"""credit: rule table, profiles, exemptions, audit, work orders, sweep holds, guard; the
account's facts and the closed loop's attempt on each product.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
S = "credit"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _product_columns() -> None:
    for column in (
        sa.Column("customer_id", sa.Text), sa.Column("tier", sa.Text),
        sa.Column("star_level", sa.Integer),
        sa.Column("balance_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("amount_due_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("oldest_due_month", sa.Date),
        sa.Column("warning_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cycle", sa.Integer, nullable=False, server_default="0"),
        sa.Column("command_action", sa.Text), _ts("command_at", True),
        sa.Column("command_attempt", sa.Integer, nullable=False, server_default="0"),
        _ts("command_sent_at", True), _ts("retry_at", True),
        sa.Column("pending_work_order_id", sa.Text),
    ):
        op.add_column("product_credit", column, schema=S)
    op.create_index("ix_product_credit_sweep", "product_credit", ["family", "tier", "state"],
                    schema=S)
    for column in (sa.Column("inputs", JSONB), sa.Column("warning_level", sa.Integer),
                   sa.Column("amount_fen", sa.BigInteger), sa.Column("rule_version", sa.Integer)):
        op.add_column("decisions", column, schema=S)


def upgrade() -> None:
    _product_columns()
    op.create_table(
        "rule_tables", sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("rows", JSONB, nullable=False), sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False), _ts("changed_at"), schema=S)
    op.create_table(
        "credit_profiles", sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("star_level", sa.Integer), sa.Column("credit_limit_fen", sa.BigInteger),
        sa.Column("updated_by", sa.Text, nullable=False), _ts("updated_at"), schema=S)
    op.create_table(
        "exemptions", sa.Column("exemption_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False), sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approver", sa.Text, nullable=False), _ts("until", True),
        sa.Column("created_by", sa.Text, nullable=False), _ts("created_at"),
        sa.Column("removed_by", sa.Text), _ts("removed_at", True), schema=S)
    op.create_table(
        "audit_log", sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _ts("at"), sa.Column("actor", sa.Text, nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False), sa.Column("old", JSONB),
        sa.Column("new", JSONB), schema=S)
    op.create_index("ix_audit_entity", "audit_log", ["entity", "entity_id"], schema=S)
    op.create_table(
        "work_orders", sa.Column("work_order_id", sa.Text, primary_key=True),
        sa.Column("product_id", sa.Text, nullable=False, index=True),
        sa.Column("account_id", sa.Text, nullable=False), sa.Column("customer_id", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("decision_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False), sa.Column("status", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False), sa.Column("assignee", sa.Text),
        _ts("due_at"), _ts("created_at"), _ts("updated_at"),
        sa.Column("steps", JSONB, nullable=False), schema=S)
    op.create_index("ix_work_orders_status", "work_orders", ["status", "due_at"], schema=S)
    op.create_table(
        "sweep_holds", sa.Column("sweep_id", sa.Text, primary_key=True), _ts("as_of"),
        sa.Column("would_suspend", sa.BigInteger, nullable=False),
        sa.Column("active", sa.BigInteger, nullable=False),
        sa.Column("max_share", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False), sa.Column("status", sa.Text, nullable=False),
        sa.Column("confirmed_by", sa.Text), _ts("confirmed_at", True), _ts("created_at"),
        schema=S)
    op.create_table(
        "guard_settings", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("max_share", sa.Float, nullable=False),
        sa.Column("min_active", sa.BigInteger, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False), _ts("updated_at"), schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
