"""The rating model's tables (migration 0016), on credit-control's metadata (schema `credit`)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ...adapters.tables import metadata

# The scorecard, versioned: the newest row is in force (docs/rating.md).
rating_scorecards = Table(
    "rating_scorecards", metadata,
    Column("version", Integer, primary_key=True),
    Column("card", JSONB, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# The rating inputs billing's events carry, per customer (a read model of billing).
rating_customers = Table(
    "rating_customers", metadata,
    Column("customer_id", Text, primary_key=True),
    Column("brand", Text),
    Column("opened_on", Date),
    Column("blacklisted", Boolean, nullable=False, server_default="false"),
    Column("blacklist_reason", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Each account's bill per closed month (bill-run events' billed_fen): monthly spend.
rating_bills = Table(
    "rating_bills", metadata,
    Column("account_id", Text, primary_key=True),
    Column("bill_month", Date, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("billed_fen", BigInteger, nullable=False),
)

# The model's rating of each customer (overrides live apart, in rating_overrides).
customer_ratings = Table(
    "customer_ratings", metadata,
    Column("customer_id", Text, primary_key=True),
    Column("star_level", Integer),  # NULL: unrated
    Column("limit_fen", BigInteger, nullable=False),
    Column("score", Integer),
    Column("model", Text, nullable=False),  # basic | guidance
    Column("period", Text, nullable=False),
    Column("scorecard_version", Integer, nullable=False),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    Column("first_rated_on", Date, nullable=False),
)

# Every rating a run made, with its inputs and reason: one per customer, model and period.
rating_changes = Table(
    "rating_changes", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("model", Text, nullable=False),  # basic | guidance | override | override_expired
    Column("period", Text, nullable=False),
    Column("star_before", Integer),
    Column("star_after", Integer),
    Column("limit_before_fen", BigInteger),
    Column("limit_after_fen", BigInteger, nullable=False),
    Column("score", Integer),
    Column("inputs", JSONB, nullable=False),
    Column("reason", Text, nullable=False),
    Column("scorecard_version", Integer, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("customer_id", "model", "period", name="rating_changes_once"),
)

rating_runs = Table(
    "rating_runs", metadata,
    Column("run_id", Text, primary_key=True),  # model:period
    Column("model", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("scorecard_version", Integer, nullable=False),
    Column("considered", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
    Column("started_by", Text, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

# A credit-admin's override of a customer's rating: reason and expiry, audited.
rating_overrides = Table(
    "rating_overrides", metadata,
    Column("override_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("star_level", Integer),
    Column("limit_fen", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_by", Text),
    Column("removed_at", DateTime(timezone=True)),
    Column("ended_applied", Boolean, nullable=False, server_default="false"),
)

# Credit multiples (信控倍数): the daily check's findings, one per customer and day.
multiple_checks = Table(
    "multiple_checks", metadata,
    Column("check_date", Date, primary_key=True),
    Column("customer_id", Text, primary_key=True),
    Column("star_level", Integer),
    Column("limit_fen", BigInteger, nullable=False),
    Column("avg_bill_fen", BigInteger, nullable=False),
    Column("multiple_milli", BigInteger),  # limit / average bill × 1000; NULL: no bill
    Column("status", Text, nullable=False),  # open | reviewed
    Column("reviewed_by", Text),
    Column("note", Text),
)

# Potential churn (潜在离网, seed 003): one entry per customer and cause while open.
churn_entries = Table(
    "churn_entries", metadata,
    Column("entry_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("cause", Text, nullable=False),  # suspended_high_star | repeated | pre_cancelled
    Column("star_level", Integer),
    Column("found_on", Date, nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("status", Text, nullable=False),  # open | revisited
    Column("revisit_due", Date, nullable=False),
    Column("outcome", Text),  # retained | churned | unreachable
    Column("churn_reason", Text),  # seed 003's categories
    Column("note", Text),
    Column("revisited_by", Text),
    Column("revisited_at", DateTime(timezone=True)),
    UniqueConstraint("customer_id", "cause", "found_on", name="churn_entries_once"),
)

# Arrears episodes per account (from balance events: owing → cleared), for the recovery
# after an emergency no-suspension (seed 004: > 85 % in the first month, > 95 % in four).
arrears_episodes = Table(
    "arrears_episodes", metadata,
    Column("account_id", Text, primary_key=True),
    Column("started_at", DateTime(timezone=True), primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("peak_fen", BigInteger, nullable=False),
    Column("cleared_at", DateTime(timezone=True)),
    # One open episode per account (migration 0025): the balance path's insert conflicts here.
    Index("ux_credit_arrears_episodes_open", "account_id", unique=True,
          postgresql_where=text("cleared_at IS NULL")),
)
