"""credit-control's tables, in schema `credit`."""

from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB
from sqlalchemy.types import TypeDecorator

from common.plumbing import idempotency_table, inbox_table, outbox_table

SCHEMA = "credit"
metadata = MetaData(schema=SCHEMA)


class JsonText(TypeDecorator[Any]):
    """JSON kept as the `text` its writer made (migration 0033): the server neither parses
    nor checks it on the way in. Through this table Python reads and writes it as JSON
    values, as it would a `json` column (a raw `text()` query gets the text); SQL that looks
    inside it casts it (`context::json ->> 'deadline'`)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else orjson.loads(value)


# The newest balance billing told us about, per account (a read model of billing). Rewritten
# by every balance event: fillfactor 50 (migration 0026) keeps room on the page, so the
# rewrite is a HOT update (no index entry, no table growth).
account_positions = Table(
    "account_positions", metadata,
    Column("account_id", Text, primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("balance_fen", BigInteger, nullable=False),
    Column("amount_due_fen", BigInteger, nullable=False),
    Column("dues", JSONB, nullable=False),
    # json: the text as msgspec wrote it (migration 0029)
    Column("customer", JSON, nullable=False),
    Column("deposit_fen", BigInteger, nullable=False, server_default="0"),
    Column("cause", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # What the position was before its last move (migration 0032,
    # balance_sql.advance_positions); NULL: it had none.
    Column("previous_sequence", BigInteger),
    Column("previous_amount_due_fen", BigInteger),
)

product_credit = Table(
    "product_credit", metadata,
    Column("product_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False, index=True),
    Column("family", Text, nullable=False),
    Column("product", JSON, nullable=False),  # json: as msgspec wrote it (0029)
    Column("state", Text, nullable=False),
    Column("state_changed_at", DateTime(timezone=True), nullable=False),
    Column("command_seq", BigInteger, nullable=False, server_default="0"),
    Column("pending_command_id", Text),
    Column("pending_decision_id", Text),
    # The account's facts as of the newest balance event, kept on the product so a sweep is
    # one statement over one table (and a racing payment is re-checked on the locked row).
    # Indexed (migration 0036): a customer's products are looked up by it.
    Column("customer_id", Text, index=True),
    Column("tier", Text),
    Column("star_level", Integer),
    Column("balance_fen", BigInteger, nullable=False, server_default="0"),
    Column("amount_due_fen", BigInteger, nullable=False, server_default="0"),
    Column("oldest_due_month", Date),
    # The product's OWN amount due over closed bill months (billing's allocation): what its
    # SMS quote; 0 = nothing of the account's debt is this product's (never sanctioned).
    Column("product_amount_due_fen", BigInteger, nullable=False, server_default="0"),
    # What it owed of its own before the balance path's last upsert (migration 0034): a
    # change while off normal revises the notices not sent yet. NULL: not known.
    Column("previous_product_amount_due_fen", BigInteger),
    Column("warning_level", Integer, nullable=False, server_default="0"),
    Column("cycle", Integer, nullable=False, server_default="0"),
    Column("command_action", Text),
    Column("command_at", DateTime(timezone=True)),
    Column("command_attempt", Integer, nullable=False, server_default="0"),
    Column("command_sent_at", DateTime(timezone=True)),
    Column("retry_at", DateTime(timezone=True)),
    Column("pending_work_order_id", Text),
    # The arrears ladder (credit/domain/ladder.py): the oldest owing month warning_level and the
    # suspension warning belong to, when that warning was decided and the deadline it named.
    Column("ladder_month", Date),
    Column("suspension_warned_on", Date),
    Column("suspension_deadline", Date),
    # What became of that suspension warning's SMS (notifier.notices.v1; credit/domain/ladder.py
    # Notice): sent / delivered / failed / cancelled, when (business time), why, whether it
    # can never be delivered, the notice period in force when it was decided, and how many
    # warnings of this ladder failed (a failed one is owed again, up to a limit) and how many
    # were withdrawn by the notifier's re-check (owed again, never toward the limit; 0037).
    Column("suspension_warning_id", Text),
    Column("notice_status", Text),
    Column("notice_sent_at", DateTime(timezone=True)),
    Column("notice_delivered_at", DateTime(timezone=True)),
    Column("notice_reason", Text),
    Column("notice_permanent", Boolean, nullable=False, server_default=text("false")),
    Column("notice_days", Integer),
    Column("notice_failures", Integer, nullable=False, server_default="0"),
    Column("notice_withdrawals", Integer, nullable=False, server_default="0"),
    # The customer's region (区县分公司, billing's snapshot; migration 0023): a freeze scope
    # and a preview grouping, with the account's other facts above.
    Column("region", Text),
    # No index on `state` (migration 0013): the sweep reads in primary-key order, and a state
    # UPDATE that touches no index can be HOT.
)

decisions = Table(
    "decisions", metadata,
    Column("decision_id", Text, primary_key=True),
    Column("product_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("state_before", Text, nullable=False),
    Column("state_after", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("context", JsonText, nullable=False),  # as msgspec wrote it (0029, 0033)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("inputs", JsonText),  # as its writer made it (0030, 0033)
    Column("warning_level", Integer),
    Column("amount_fen", BigInteger),
    Column("rule_version", Integer),
    Index("ix_decisions_product", "product_id", "created_at"),
)

# Every version of the rule table; the newest is in force. Version 1 is the seed defaults.
rule_tables = Table(
    "rule_tables", metadata,
    Column("version", Integer, primary_key=True),
    Column("rows", JSONB, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

credit_profiles = Table(
    "credit_profiles", metadata,
    Column("customer_id", Text, primary_key=True),
    Column("star_level", Integer),
    Column("credit_limit_fen", BigInteger),
    Column("tier", Text),  # the rating's tier (docs/rating.md); NULL: billing's snapshot tier
    Column("updated_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Red list (红名单) and emergency no-suspension (紧急不停机) entries.
exemptions = Table(
    "exemptions", metadata,
    Column("exemption_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("approver", Text, nullable=False),
    Column("until", DateTime(timezone=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_by", Text),
    Column("removed_at", DateTime(timezone=True)),
    Column("review_on", Date),  # red-list review: set by a renewal (migration 0019)
    # When its running out (`until`) was announced to the notifier (credit.exemption_changed,
    # admin/service_layer/expiries.py; migration 0035): each expiry once. NULL: not yet, or
    # it has no `until`, or it was removed before (the removal announced itself).
    Column("expiry_announced_at", DateTime(timezone=True)),
    Index("ix_exemptions_expiry_due", "until", postgresql_where=text(
        "until IS NOT NULL AND removed_at IS NULL AND expiry_announced_at IS NULL")),
)

# Scoped emergency freezes (issue 19, migration 0021): no automatic suspension (and, with
# covers_warnings, no suspension warning) for a scope until `until`; what each held back.
freezes = Table(
    "freezes", metadata,
    Column("freeze_id", Text, primary_key=True),
    Column("scope", Text, nullable=False),
    Column("value", Text),
    Column("covers_warnings", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("approver", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ended_by", Text),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", Text),
    Column("released_at", DateTime(timezone=True)),
    Column("released", JSONB),
    Index("ix_freezes_open", "until", postgresql_where=text("released_at IS NULL")),
)

freeze_holds = Table(
    "freeze_holds", metadata,
    Column("freeze_id", Text, ForeignKey("credit.freezes.freeze_id"), primary_key=True),
    Column("product_id", Text, primary_key=True),
    Column("decision", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("first_held_on", Date, nullable=False),
    Column("last_held_on", Date, nullable=False),
    Column("amount_due_fen", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("entity", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("old", JSONB),
    Column("new", JSONB),
    Index("ix_audit_entity", "entity", "entity_id"),
)

# 工单: manual suspend / restore, every step timestamped and attributed.
work_orders = Table(
    "work_orders", metadata,
    Column("work_order_id", Text, primary_key=True),
    Column("product_id", Text, nullable=False, index=True),
    Column("account_id", Text, nullable=False),
    Column("customer_id", Text),
    Column("action", Text, nullable=False),
    Column("decision_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("assignee", Text),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("steps", JSONB, nullable=False),
    # decision: a decision's move made by hand; repair: reconciliation's repair left for a
    # person, with the product's command sequence when it was opened (migration 0038).
    Column("kind", Text, nullable=False, server_default="decision"),
    Column("sequence", BigInteger),
    Index("ix_work_orders_status", "status", "due_at"),
    Index("ix_work_orders_open_repair", "product_id", postgresql_where=text(
        "kind = 'repair' AND status IN ('created', 'assigned')")),
)

# Sweeps the mass-suspension guard stopped, until staff confirm them.
sweep_holds = Table(
    "sweep_holds", metadata,
    Column("sweep_id", Text, primary_key=True),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("would_suspend", BigInteger, nullable=False),
    Column("active", BigInteger, nullable=False),
    Column("max_share", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("confirmed_by", Text),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # guard: the mass-suspension guard; preview: no approved preview covers the sweep (0014)
    Column("kind", Text, nullable=False, server_default="guard"),
    Column("difference", JSONB),
)

# A sweep's progress, durable per step and chunk (docs/credit-control.md, "Sweeps that
# finish"): running → held (the guard waits for staff) → running (confirmed) → done.
sweep_runs = Table(
    "sweep_runs", metadata,
    Column("sweep_id", Text, primary_key=True),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("catch_up", Boolean, nullable=False, server_default=text("false")),
    Column("confirmed", Boolean, nullable=False, server_default=text("false")),
    Column("held", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    # With approvals on: the preview approval it decides within (0015).
    Column("approval_id", Text),
    Index("ix_sweep_runs_status", "status", "created_at"),
)

# One row per step of a run's plan: the last product id done (`after`) is the resume cursor.
sweep_steps = Table(
    "sweep_steps", metadata,
    Column("sweep_id", Text, primary_key=True),
    Column("step_no", Integer, primary_key=True),
    Column("rule_id", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("after", Text, nullable=False, server_default=""),
    Column("decided", BigInteger, nullable=False, server_default="0"),
    Column("chunks", Integer, nullable=False, server_default="0"),
    Column("done", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

guard_settings = Table(
    "guard_settings", metadata,
    Column("id", Integer, primary_key=True),
    Column("max_share", Float, nullable=False),
    Column("min_active", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # A sweep runs only what a credit-admin approved in its preview (0014).
    Column("needs_approved_preview", Boolean, nullable=False, server_default="false"),
)

# A sweep's preview as a credit-admin approved it: the decision ids it showed (0014).
preview_approvals = Table(
    "preview_approvals", metadata,
    Column("approval_id", Text, primary_key=True),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("decision_ids", ARRAY(Text), nullable=False),
    Column("approved_by", Text, nullable=False),
    Column("approved_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Index("ix_preview_approvals_as_of", "as_of", "approved_at"),
)

# Every state change with its cause, so "why is product X suspended?" has an answer.
state_history = Table(
    "state_history", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("product_id", Text, nullable=False, index=True),
    Column("state_before", Text, nullable=False),
    Column("state_after", Text, nullable=False),
    Column("cause", Text, nullable=False),
    Column("decision_id", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Collections worklists (欠费催缴): one entry per account, list kind and the bill month that
# was oldest when it was put on the list; at most one active entry per account and kind.
_ACTIVE_ENTRY = text("status IN ('open', 'contacted', 'promised', 'refused')")
worklist_entries = Table(
    "worklist_entries", metadata,
    Column("entry_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("bill_month", Date, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("customer", JSONB, nullable=False),
    Column("manager", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("arrears_fen", BigInteger, nullable=False),
    Column("oldest_month", Date, nullable=False),
    Column("months", Integer, nullable=False),
    Column("dues", JSONB, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_attempt", JSONB),
    Column("promised_date", Date),
    Column("refusal_reason", Text),
    Column("cause", Text),
    Column("cause_note", Text),
    Column("cause_by", Text),
    Column("cause_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_reason", Text),
    Column("reopened", Integer, nullable=False, server_default="0"),
    Index("ux_worklist_key", "account_id", "kind", "bill_month", unique=True),
    Index("ux_worklist_active", "account_id", "kind", unique=True,
          postgresql_where=_ACTIVE_ENTRY),
    Index("ix_worklist_list", "kind", "status", "manager"),
)

# Every contact attempt (催缴记录), attributed to the caller's token subject.
worklist_attempts = Table(
    "worklist_attempts", metadata,
    Column("attempt_id", Text, primary_key=True),
    Column("entry_id", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("channel", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("promised_date", Date),
    Column("refusal_reason", Text),
    Column("status_after", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_worklist_attempts_entry", "entry_id", "at"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

# Review tasks (docs/credit-control.md): a customer put on the red list / under an emergency
# no-suspension while a product is sanctioned; a credit-admin restores it or keeps it.
reviews = Table(
    "reviews", metadata,
    Column("review_id", Text, primary_key=True),
    Column("product_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("exemption_id", Text, nullable=False),
    Column("exemption_kind", Text, nullable=False),
    Column("state_at_open", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("note", Text),
    Column("decision_id", Text),
    Column("outcome", Text),
    Index("ix_reviews_status", "status", "opened_at"),
    Index("ix_reviews_product", "product_id"),
)

# The pre-cancellation worklist's `lifted` side (GET /v1/pre-cancellations): few rows.
Index("ix_state_history_pre_cancel_lifted", state_history.c.at,
      postgresql_where=text("state_before = 'pre_cancel'"))

# Collections escalation (docs/collections.md "Escalation", migration 0017): a case per
# account in arrears past suspension, its steps, and its associated suspensions (关联停机).
collection_cases = Table(
    "collection_cases", metadata,
    Column("case_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("phase", Integer, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("arrears_fen", BigInteger, nullable=False),
    Column("association_approved_by", Text),
    Column("association_approved_at", DateTime(timezone=True)),
    Column("association_note", Text),
    Column("legal_referred_on", Date),
    Column("advanced_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_reason", Text),
    Index("ux_collection_cases_open", "account_id", unique=True,
          postgresql_where=text("status = 'open'")),
    Index("ix_collection_cases_customer", "customer_id"),
)

collection_steps = Table(
    "collection_steps", metadata,
    Column("step_id", Text, primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("case_id", Text, nullable=False),
    Column("step", Text, nullable=False),
    Column("phase", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("product_id", Text),
    Column("decision_id", Text),
    Column("details", JSONB),
    Index("ix_collection_steps_case", "case_id", "at"),
)

collection_associations = Table(
    "collection_associations", metadata,
    Column("case_id", Text, primary_key=True),
    Column("product_id", Text, primary_key=True),
    Column("account_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("suspend_decision_id", Text, nullable=False),
    Column("suspended_at", DateTime(timezone=True), nullable=False),
    Column("restore_decision_id", Text),
    Column("restored_at", DateTime(timezone=True)),
    Column("restore_outcome", Text),
    Index("ix_collection_associations_product", "product_id"),
)
# Promises to pay (issue 19), on this metadata.
from ..collections.adapters import promise_tables as _promise_tables  # noqa: E402,F401

# The rating model's tables (issue 18), on this metadata.
from ..rating.adapters import rating_tables as _rating_tables  # noqa: E402,F401

# The simulation clock's moves (docs/simulation-clock.md): the latest is the clock's offset.
clock_moves = Table(
    "clock_moves", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("move_id", Text, nullable=False, unique=True),
    Column("wall_at", DateTime(timezone=True), nullable=False),
    Column("previous_offset_s", Float, nullable=False),
    Column("offset_s", Float, nullable=False),
    Column("simulated_at", DateTime(timezone=True), nullable=False),
    Column("moved_by", Text, nullable=False),
    Column("reason", Text, nullable=False),
)
