"""gateway: the chain in stages: attempts with due times, EMOS orders per attempt, per-stage
sequences, fault knobs, reconciliation runs.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
S = "gateway"


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("chain_products", sa.Column("customer_id", sa.Text), schema=S)
    for name in ("boss_sequence", "gateway_sequence"):
        op.add_column("chain_products", sa.Column(name, sa.BigInteger, nullable=False,
                                                  server_default="0"), schema=S)
    # The foundation applied both stages at once: they hold what the product row says.
    op.execute(f"UPDATE {S}.chain_products SET boss_sequence = last_sequence, "
               "gateway_sequence = last_sequence")

    op.drop_constraint("emos_orders_command_id_key", "emos_orders", schema=S, type_="unique")
    op.add_column("emos_orders", sa.Column("attempt", sa.Integer, nullable=False,
                                           server_default="1"), schema=S)
    op.add_column("emos_orders", _ts("due_at"), schema=S)
    op.add_column("emos_orders", _ts("sent_at"), schema=S)
    op.create_unique_constraint("emos_orders_command_attempt_key", "emos_orders",
                                ["command_id", "attempt"], schema=S)
    op.create_index("ix_emos_orders_created_at", "emos_orders", ["created_at"], schema=S)
    op.create_index("ix_emos_orders_open", "emos_orders", ["created_at"], schema=S,
                    postgresql_where=sa.text("status IN ('received', 'sent_to_gateway')"))

    op.add_column("commands", sa.Column("latest_attempt", sa.Integer, nullable=False,
                                        server_default="1"), schema=S)
    op.add_column("commands", sa.Column("applied_attempt", sa.Integer), schema=S)
    op.add_column("commands", sa.Column("emos_order_id", sa.Text), schema=S)
    op.execute(f"UPDATE {S}.commands SET applied_attempt = 1 WHERE outcome = 'applied'")

    op.create_table(
        "attempts",
        sa.Column("command_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text),
        sa.Column("cpno", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("vendor", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("step", sa.Text, nullable=False),
        sa.Column("fate", sa.Text, nullable=False),
        _ts("due_at"),
        sa.Column("outcome", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("emos_order_id", sa.Text),
        sa.Column("vendor_command", sa.Text),
        _ts("received_at", nullable=False),
        _ts("boss_at"),
        _ts("emos_at"),
        _ts("gateway_ack_at"),
        _ts("gateway_at"),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("command_id", "attempt"),
        schema=S,
    )
    op.create_index("ix_attempts_product", "attempts", ["product_id"], schema=S)
    op.create_index("ix_attempts_due", "attempts", ["due_at"], schema=S,
                    postgresql_where=sa.text("outcome IS NULL"))

    op.create_table(
        "faults",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", JSONB, nullable=False),
        _ts("updated_at", nullable=False),
        schema=S,
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=True),
        _ts("as_of", nullable=False),
        sa.Column("missed_suspensions", sa.Integer, nullable=False),
        sa.Column("wrong_suspensions", sa.Integer, nullable=False),
        sa.Column("stuck_emos_orders", sa.Integer, nullable=False),
        sa.Column("report", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema=S,
    )


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
