"""credit: the rating model (seed 004, issue 18): scorecards, inputs from billing's events,
ratings and their history, runs, overrides; credit multiples; potential churn; the tier a
rating gives the credit profile.

Revision ID: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0015"
S = "credit"


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Text, nullable=nullable)


def upgrade() -> None:
    op.add_column("credit_profiles", sa.Column("tier", sa.Text), schema=S)
    op.create_table(
        "rating_scorecards", sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("card", JSONB, nullable=False), _text("changed_by", False),
        _text("reason", False), _ts("changed_at"), schema=S)
    op.create_table(
        "rating_customers", sa.Column("customer_id", sa.Text, primary_key=True),
        _text("brand"), sa.Column("opened_on", sa.Date),
        sa.Column("blacklisted", sa.Boolean, nullable=False, server_default="false"),
        _text("blacklist_reason"), _ts("updated_at"), schema=S)
    op.create_table(
        "rating_bills", sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("bill_month", sa.Date, primary_key=True), _text("customer_id", False),
        sa.Column("billed_fen", sa.BigInteger, nullable=False), schema=S)
    op.create_index("ix_credit_rating_bills_customer_id", "rating_bills", ["customer_id"],
                    schema=S)
    op.create_table(
        "customer_ratings", sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("star_level", sa.Integer), sa.Column("limit_fen", sa.BigInteger,
                                                       nullable=False),
        sa.Column("score", sa.Integer), _text("model", False), _text("period", False),
        sa.Column("scorecard_version", sa.Integer, nullable=False), _ts("rated_at"),
        sa.Column("first_rated_on", sa.Date, nullable=False), schema=S)
    op.create_table(
        "rating_changes", sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        _text("customer_id", False), _text("model", False), _text("period", False),
        sa.Column("star_before", sa.Integer), sa.Column("star_after", sa.Integer),
        sa.Column("limit_before_fen", sa.BigInteger),
        sa.Column("limit_after_fen", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Integer), sa.Column("inputs", JSONB, nullable=False),
        _text("reason", False), sa.Column("scorecard_version", sa.Integer, nullable=False),
        _text("actor", False), _ts("at"),
        sa.UniqueConstraint("customer_id", "model", "period", name="rating_changes_once"),
        schema=S)
    op.create_index("ix_credit_rating_changes_customer_id", "rating_changes", ["customer_id"],
                    schema=S)
    op.create_table(
        "rating_runs", sa.Column("run_id", sa.Text, primary_key=True), _text("model", False),
        _text("period", False), _ts("as_of"),
        sa.Column("scorecard_version", sa.Integer, nullable=False),
        sa.Column("considered", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False), _text("started_by", False),
        _ts("finished_at"), schema=S)
    op.create_table(
        "rating_overrides", sa.Column("override_id", sa.Text, primary_key=True),
        _text("customer_id", False), sa.Column("star_level", sa.Integer),
        sa.Column("limit_fen", sa.BigInteger, nullable=False), _text("reason", False),
        _ts("expires_at"), _text("created_by", False), _ts("created_at"), _text("removed_by"),
        _ts("removed_at", True),
        sa.Column("ended_applied", sa.Boolean, nullable=False, server_default="false"),
        schema=S)
    op.create_index("ix_credit_rating_overrides_customer_id", "rating_overrides",
                    ["customer_id"], schema=S)
    op.create_table(
        "multiple_checks", sa.Column("check_date", sa.Date, primary_key=True),
        sa.Column("customer_id", sa.Text, primary_key=True), sa.Column("star_level", sa.Integer),
        sa.Column("limit_fen", sa.BigInteger, nullable=False),
        sa.Column("avg_bill_fen", sa.BigInteger, nullable=False),
        sa.Column("multiple_milli", sa.BigInteger), _text("status", False),
        _text("reviewed_by"), _text("note"), schema=S)
    op.create_table(
        "churn_entries", sa.Column("entry_id", sa.Text, primary_key=True),
        _text("customer_id", False), _text("cause", False), sa.Column("star_level", sa.Integer),
        sa.Column("found_on", sa.Date, nullable=False), sa.Column("detail", JSONB,
                                                                  nullable=False),
        _text("status", False), sa.Column("revisit_due", sa.Date, nullable=False),
        _text("outcome"), _text("churn_reason"), _text("note"), _text("revisited_by"),
        _ts("revisited_at", True),
        sa.UniqueConstraint("customer_id", "cause", "found_on", name="churn_entries_once"),
        schema=S)
    op.create_index("ix_credit_churn_entries_customer_id", "churn_entries", ["customer_id"],
                    schema=S)
    op.create_table(
        "arrears_episodes", _text("account_id", False),
        _ts("started_at"), _text("customer_id", False),
        sa.Column("peak_fen", sa.BigInteger, nullable=False), _ts("cleared_at", True),
        sa.PrimaryKeyConstraint("account_id", "started_at"), schema=S)
    op.create_index("ix_credit_arrears_episodes_customer_id", "arrears_episodes",
                    ["customer_id"], schema=S)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup instead")
