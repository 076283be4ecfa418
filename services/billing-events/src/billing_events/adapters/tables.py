"""billing's tables, in schema `billing` (SQLAlchemy Core; the domain never sees them)."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "billing"
metadata = MetaData(schema=SCHEMA)

customers = Table(
    "customers", metadata,
    Column("customer_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("tier", Text, nullable=False),
    Column("star_level", Integer),
    Column("account_manager", JSONB, nullable=False),
    Column("contacts", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

accounts = Table(
    "accounts", metadata,
    Column("account_id", Text, primary_key=True),
    Column("customer_id", Text, ForeignKey(customers.c.customer_id), nullable=False, index=True),
    # Bumped in every transaction that changes the balance: orders events per account.
    Column("sequence", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

products = Table(
    "products", metadata,
    Column("product_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("cpno", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("family", Text, nullable=False),
    Column("vendor", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

charges = Table(
    "charges", metadata,
    Column("charge_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("product_id", Text, ForeignKey(products.c.product_id), nullable=False),
    Column("bill_month", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_fen > 0", name="charge_amount_positive"),
)

bill_runs = Table(
    "bill_runs", metadata,
    Column("bill_run_id", Text, primary_key=True),
    Column("bill_month", Date, nullable=False, unique=True),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("accounts_billed", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

payments = Table(
    "payments", metadata,
    Column("payment_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_fen > 0", name="payment_amount_positive"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
