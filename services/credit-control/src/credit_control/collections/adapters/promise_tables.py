"""The promises' table (migration 0022), on credit-control's metadata (schema `credit`). The
code reads and writes it with SQL text (promise_sql.py); this copy is what the migrations are
checked against (tests/integration/test_migrations_match_tables.py)."""

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB

from ...adapters.tables import metadata

promises = Table(
    "promises", metadata,
    Column("promise_id", Text, primary_key=True),
    Column("entry_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("manager", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("promised_date", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("schedule", JSONB, nullable=False),
    Column("instalments", Boolean, nullable=False),
    Column("covered_through", Text, nullable=False),
    Column("baseline_fen", BigInteger, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_role", Text, nullable=False),
    Column("approved_by", Text),
    Column("reason", Text, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_on", Date, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("request", JSONB, nullable=False),
    Column("closed_on", Date),
    Column("closed_at", DateTime(timezone=True)),
    Column("paid_fen", BigInteger),
    Index("ux_promises_open", "account_id", unique=True,
          postgresql_where=text("status = 'open'")),
    Index("ix_promises_account", "account_id", "recorded_on"),
    Index("ix_promises_manager", "manager", "recorded_on"),
)
