"""billing's tables, in schema `billing` (SQLAlchemy Core; the domain never sees them)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
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
    Column("region", Text),  # 区县分公司, the county branch (migration 0007)
)

accounts = Table(
    "accounts", metadata,
    Column("account_id", Text, primary_key=True),
    Column("customer_id", Text, ForeignKey(customers.c.customer_id), nullable=False, index=True),
    # Bumped in every transaction that changes the balance: orders events per account.
    # Not indexed, and the table has fillfactor 50 (migration 0005): the bump is a HOT update.
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
    Column("channel", Text),
)

charges = Table(
    "charges", metadata,
    Column("charge_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("product_id", Text, ForeignKey(products.c.product_id), nullable=False),
    Column("bill_month", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Its `as_of`, when given (migration 0009): a bill run is not dated before it.
    Column("charged_at", DateTime(timezone=True)),
    CheckConstraint("amount_fen > 0", name="charge_amount_positive"),
    Index("ix_charges_bill_month_account", "bill_month", "account_id"),
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
    # cash: paid by the customer (may bounce); deposit: a deduction (划扣) from the deposit
    Column("source", Text, nullable=False, server_default="cash"),
)

# A bounced payment is reversed once: the payment row stays, this row takes it out again.
reversals = Table(
    "reversals", metadata,
    Column("reversal_id", Text, primary_key=True),
    Column("payment_id", Text, ForeignKey(payments.c.payment_id), nullable=False, unique=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("reversed_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# 调账: corrects one product's bill of one month, up (> 0) or down (< 0).
adjustments = Table(
    "adjustments", metadata,
    Column("adjustment_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("product_id", Text, ForeignKey(products.c.product_id), nullable=False),
    Column("bill_month", Date, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("adjusted_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_fen <> 0", name="adjustment_amount_nonzero"),
    Index("ix_adjustments_bill_month_account", "bill_month", "account_id"),
)

# 核销: bad debt taken off the account's dues (oldest first), nothing collected.
write_offs = Table(
    "write_offs", metadata,
    Column("write_off_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("written_off_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_fen > 0", name="write_off_amount_positive"),
)

# A write-off's lapse (坏账收回): the excess of the write-offs once a payment or a credit note
# would leave the account in credit while they stand (domain/model.py: write_off_lapse).
# Signed: > 0 the write-offs lapse by it, < 0 a lapse undone (`payment_id`'s payment bounced).
write_off_lapses = Table(
    "write_off_lapses", metadata,
    Column("lapse_id", Text, primary_key=True),  # "<cause>:<id of the cause>"
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("cause", Text, nullable=False),  # payment, adjustment, reversal
    Column("payment_id", Text, nullable=True, index=True),  # the payment that caused it
    Column("lapsed_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_fen <> 0", name="write_off_lapse_amount_nonzero"),
)

# The deposit (押金/预存) as movements: money in (> 0), deductions out (< 0). Held apart
# from the balance: it pays nothing until a deduction moves it into a payment.
deposit_movements = Table(
    "deposit_movements", metadata,
    Column("movement_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),  # deposit | deduction
    Column("at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount_fen <> 0", name="deposit_movement_nonzero"),
)

# One row per credit-control deduction decision: applied at most once per decision_id.
deductions = Table(
    "deductions", metadata,
    Column("decision_id", Text, primary_key=True),
    Column("account_id", Text, ForeignKey(accounts.c.account_id), nullable=False, index=True),
    Column("requested_fen", BigInteger, nullable=False),
    Column("collected_fen", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)


# Late fees (docs/billing.md "Late fees", migration 0006): the lines bill runs posted, the
# disputed bills, and credit-control's exemption facts per account (from its decisions).
late_fees = Table(
    "late_fees", metadata,
    Column("line_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("bill_month", Date, nullable=False),
    Column("posted_bill_month", Date, nullable=False),
    Column("bill_run_id", Text, nullable=False),
    Column("base_fen", BigInteger, nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("days", Integer, nullable=False),
    Column("rate_bp_per_day", Integer, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    Column("charge_id", Text),
    Column("waived_fen", BigInteger, nullable=False, server_default="0"),
    Column("waived_by", Text),
    Column("waived_at", DateTime(timezone=True)),
    Column("waive_reason", Text),
    Column("posted_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("fee_fen >= 0 AND waived_fen >= 0 AND waived_fen <= fee_fen",
                    name="ck_late_fees_amounts"),
    Index("ix_late_fees_bill", "account_id", "product_id", "bill_month"),
)

disputes = Table(
    "disputes", metadata,
    Column("dispute_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("product_id", Text, nullable=False),
    Column("bill_month", Date, nullable=False),
    Column("reason", Text, nullable=False),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("resolved_by", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution", Text),
    Index("ix_disputes_bill", "account_id", "product_id", "bill_month"),
)

credit_exemption_facts = Table(
    "credit_exemption_facts", metadata,
    Column("account_id", Text, primary_key=True),
    Column("exempt", Boolean, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("decision_id", Text, nullable=False),
)

# The products credit-control holds under a sanction, as billing heard it on
# credit.decisions.v1 (service_layer/sanctions.py; migration 0010).
product_sanctions = Table(
    "product_sanctions", metadata,
    Column("product_id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("decision_id", Text, nullable=False),
)
