"""THE SWEEP'S OLD PATH, kept only for bench/sweep_compare.py (not used by the service): the
credit-control sweep before the one-pass statement (services/credit-control/.../sweep_sql.py),
with the notice-delivered gate (branch h7), verbatim but for the imports and the reads of a
decision's context, a `text` column since migration 0033 (`::json`, `::jsonb`). Delete it
with the comparison once nobody needs the check.

One rule row of a sweep as ONE statement per chunk of products: select the candidates
(locked, in product id order), insert the decisions (deterministic ids: a re-run conflicts and
does nothing), move the states, write history, work orders and outbox rows, all inside
PostgreSQL. The predicate is the domain's `SweepStep`; `rules.on_calendar` is the same rule
for one product (the integration tests check both agree)."""

import re
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import DecisionType
from common.contracts.snapshots import ProductFamily
from credit_control.credit.adapters.balance_sql import PRODUCT_OWES_SQL
from credit_control.credit.domain.model import Action, action_for
from credit_control.credit.domain.profiles import STAR_LIMITS_FEN
from credit_control.credit.domain.rules import SweepStep

_LIMIT = ("COALESCE(cp.credit_limit_fen, CASE COALESCE(cp.star_level, pc.star_level) "
          + " ".join(f"WHEN {s} THEN {v[0]}" for s, v in STAR_LIMITS_FEN.items())
          + " ELSE 0 END)")
_BDATE = "(pc.state_changed_at AT TIME ZONE 'Asia/Shanghai')::date"
_EXEMPT = ("EXISTS (SELECT 1 FROM credit.exemptions e WHERE e.customer_id = pc.customer_id "
           "AND e.removed_at IS NULL AND (e.until IS NULL OR e.until > :as_of))")


def _scheduled(step: SweepStep) -> str:
    """The tier's suspension day for each product's oldest owing month (ladder.py's
    `scheduled_suspension`); the row's month and day are validated integers."""
    row = step.suspend_row
    assert row is not None and row.arrears_month is not None
    if row.day == "last" or row.day is None:
        return (f"(pc.oldest_due_month + interval '{row.arrears_month + 1} months' "
                "- interval '1 day')::date")
    return (f"(pc.oldest_due_month + interval '{row.arrears_month} months' "
            f"+ interval '{int(row.day) - 1} days')::date")


def _notice_counts(step: SweepStep) -> str:
    """ladder.notice_counts: a suspension warning of this month that announces the current
    tier's suspension day."""
    return (f"(pc.ladder_month = pc.oldest_due_month AND pc.suspension_deadline IS NOT NULL "
            f"AND pc.suspension_deadline >= {_scheduled(step)})")


# --- Notice before suspension: THE suspension predicate ---------------------------------
# (domain/ladder.py `notice_counts`, `may_suspend`, `Notice`, `notice_allows`,
# `warning_owed_again`; rules._calendar_due is the same rule for one product.)
# A product may be suspended today when its suspension warning counts (same cycle and oldest
# owing month, naming a date no earlier than the tier's suspension day), that date has come,
# and the warning's SMS reached the customer — delivered (sent, when receipts are not
# expected) — at least the warning's notice period before today's business day; or the SMS
# failed for good (no valid contact number, or `max_warnings` failed in a row): then the
# suspension is an exception with its reason. A lost SMS (failed, or cancelled: withdrawn by the
# notifier's re-check) that may yet reach the customer makes the suspension warning owed again
# (a new decision, named for every loss so far); a withdrawn one never counts toward
# `max_warnings` (ladder.WITHDRAWN, the thirty-first session).
# A warning neither reached nor lost `:unheard_after_days` after its deadline is lost too
# (ladder.heard_as_of): one more failure, status `unheard`, its own reason.
NOTICE_REACHED_ON = ("((CASE WHEN :requires_delivery THEN pc.notice_delivered_at "
                     "ELSE COALESCE(pc.notice_delivered_at, pc.notice_sent_at) END) "
                     "AT TIME ZONE 'Asia/Shanghai')::date")
NOTICE_OUTCOME_LOST = "COALESCE(pc.notice_status, '') IN ('failed', 'cancelled')"
NOTICE_UNHEARD = (f"COALESCE(NOT {NOTICE_OUTCOME_LOST} AND {NOTICE_REACHED_ON} IS NULL "
                  "AND pc.suspension_deadline + :unheard_after_days <= :today, false)")
NOTICE_LOST = f"({NOTICE_OUTCOME_LOST} OR {NOTICE_UNHEARD})"
NOTICE_FAILED = f"(COALESCE(pc.notice_status, '') = 'failed' OR {NOTICE_UNHEARD})"
NOTICE_FAILURES = f"(pc.notice_failures + CASE WHEN {NOTICE_UNHEARD} THEN 1 ELSE 0 END)"
NOTICE_LOSSES = f"({NOTICE_FAILURES} + pc.notice_withdrawals)"
NOTICE_EXCEPTION = (f"({NOTICE_FAILED} AND (pc.notice_permanent "
                    f"OR {NOTICE_FAILURES} >= :max_warnings))")
NOTICE_UNHEARD_REASON = (
    "'never heard of by ' || to_char(pc.suspension_deadline + :unheard_after_days, "
    "'YYYY-MM-DD') || ', ' || :unheard_after_days || ' days after its deadline ' || "
    "to_char(pc.suspension_deadline, 'YYYY-MM-DD') || ': ' || CASE WHEN "
    "pc.notice_status = 'sent' THEN 'sent, no delivery receipt' "
    "ELSE 'no outcome from the notifier' END")
NOTICE_SUSPEND_FROM = f"({NOTICE_REACHED_ON} + GREATEST(1, COALESCE(pc.notice_days, 1)))"
NOTICE_AGAIN = f"({NOTICE_LOST} AND NOT {NOTICE_EXCEPTION})"


def suspension_predicate(step: SweepStep) -> str:
    """The products the SUSPEND step may suspend today (state, tier and arrears are the
    step's other conditions)."""
    return (f"{_notice_counts(step)} AND pc.suspension_deadline <= :today "
            f"AND ({NOTICE_SUSPEND_FROM} <= :today OR {NOTICE_EXCEPTION})")


def suspension_warning_predicate(step: SweepStep) -> str:
    """The products the SUSPENSION_WARNING step warns today: no warning counts, or its SMS
    was lost and another may reach the customer."""
    return f"(NOT {_notice_counts(step)} OR {NOTICE_AGAIN})"


def _where(step: SweepStep) -> str:
    where = ["pc.family = :family", "pc.tier = :tier", "pc.state = ANY(:from_states)",
             "pc.product_id > :after"]
    if step.row.decision is DecisionType.PRE_CANCEL:
        where.append(f"{_BDATE} <= CASE WHEN COALESCE(cp.star_level, pc.star_level) IN (4, 5) "
                     "THEN :long_before ELSE :short_before END")
        if step.skip_exempt:  # red list / emergency: no pre-cancellation either
            where.append(f"NOT {_EXEMPT}")
        where.append(PRODUCT_OWES_SQL)  # nor of a line whose own debt is paid (allowed_in_sweep)
        return " AND ".join(where)
    where.append(f"pc.amount_due_fen > {_LIMIT}")
    where.append(PRODUCT_OWES_SQL)  # the product's own debt: nothing to quote or suspend else
    where.append("pc.oldest_due_month <= :cutoff" if step.cutoff
                 else "pc.oldest_due_month = :month")
    if step.skip_exempt:
        where.append(f"NOT {_EXEMPT}")
    if step.row.warning_level is not None:
        where.append("pc.warning_level < :level")
    if step.row.decision is DecisionType.SUSPEND and step.suspend_row is not None:
        where.append(suspension_predicate(step))  # notice before suspension
    if step.row.decision is DecisionType.SUSPENSION_WARNING:
        where.append(suspension_warning_predicate(step))
    return " AND ".join(where)


def _period(step: SweepStep) -> str:
    if step.row.decision is DecisionType.PRE_CANCEL:
        return "'retention:' || to_char(c.suspended_on, 'YYYY-MM-DD')"
    if step.row.decision is DecisionType.SUSPENSION_WARNING:  # rules._calendar_due
        return (":rule_id || ':' || to_char(c.oldest_due_month, 'YYYY-MM') || ':' || "
                f"{_deadline(step)} || CASE WHEN c.notice_again THEN '~' || c.notice_losses "
                "ELSE '' END")
    return ":rule_id || ':' || to_char(c.oldest_due_month, 'YYYY-MM')"


def _reason(step: SweepStep) -> str:
    if step.row.decision is DecisionType.PRE_CANCEL:
        return ("'suspended since ' || c.suspended_on || ', retention (' || "
                "CASE WHEN c.star IN (4, 5) THEN 120 ELSE 90 END || ' days) ran out'")
    reason = ("'amount due ' || c.amount_due_fen || ' fen since bill month ' || "
              "to_char(c.oldest_due_month, 'YYYY-MM') || '; ' || :decision || ' on day ' || "
              ":day || ' of arrears month ' || :arrears_month")
    if step.row.decision is DecisionType.SUSPEND and step.suspend_row is not None:
        # rules.late_note: a late suspension (its warning came late) is not a missed one.
        reason += (" || CASE WHEN c.suspension_deadline > c.suspend_on THEN "
                   "'; late: suspension warning of ' || c.suspension_warned_on || ' named ' "
                   "|| c.suspension_deadline ELSE '' END")
        reason += " || " + _NOTICE_NOTE
    return reason


# rules.notice_note: an exception's reason, or a suspension made late by its notice.
_NOTICE_WHY = "COALESCE(NULLIF(c.notice_reason, ''), c.notice_status)"
_NOTICE_NOTE = (
    "CASE WHEN c.notice_exception THEN '; exception: ' || CASE WHEN c.notice_permanent "
    f"THEN 'suspension warning undeliverable: ' || {_NOTICE_WHY} "
    "ELSE c.notice_failures || ' suspension warnings in a row ' || c.notice_status || ': ' "
    f"|| {_NOTICE_WHY} END "
    "WHEN c.notice_from > GREATEST(c.suspend_on, c.suspension_deadline) THEN "
    "'; late: suspension warning reached the customer on ' || c.notice_reached_on ELSE '' END")


def _deadline(step: SweepStep) -> str:
    if step.row.decision is DecisionType.SUSPENSION_WARNING:
        # ladder.suspension_deadline: the suspension day, or the day the warning is sent
        # (today; a catch-up's real day) + the notice period.
        return "to_char(GREATEST(c.suspend_on, :notice_date), 'YYYY-MM-DD')"
    return ":deadline"


_TYPES = {
    "family": "text", "tier": "text", "from_states": "text[]", "to_state": "text",
    "after": "text", "chunk": "integer", "cutoff": "date", "month": "date", "level": "integer",
    "decision": "text", "rule_id": "text", "as_of": "timestamptz", "as_of_text": "text",
    "as_of_date": "text", "deadline": "text", "is_deduction": "boolean",
    "rule_version": "integer", "source": "text", "now": "text", "now_ts": "timestamptz",
    "correlation_id": "text", "due_at": "timestamptz", "short_before": "date",
    "long_before": "date", "day": "text", "arrears_month": "text", "today": "date",
    "notice_date": "date", "notice_days": "integer", "requires_delivery": "boolean",
    "max_warnings": "integer",
    "unheard_after_days": "integer",
}
_BIND = re.compile(r"(?<![:\w]):(\w+)")


def _typed(sql: str) -> str:
    """asyncpg must know every parameter's type: CAST each bind once, by name."""
    return _BIND.sub(lambda m: f"CAST(:{m[1]} AS {_TYPES[m[1]]})" if m[1] in _TYPES
                     else m[0], sql)


def _envelope(event_type: str, key: str, payload: str) -> str:
    return (f"jsonb_build_object('event_id', x.eid, 'type', '{event_type}', 'source', :source, "
            f"'occurred_at', :now, 'correlation_id', :correlation_id, 'schema_version', 1, "
            f"'key', {key}, 'payload', {payload})::text")


def statement(step: SweepStep) -> str:
    family = step.row.family
    action = action_for(step.row.decision, family)
    chain = family.uses_chain and action is Action.REQUEST_SUSPEND
    manual = family is ProductFamily.WORK_ORDER and action is Action.REQUEST_SUSPEND
    keeps_state = action is Action.DEDUCT
    state_after = "c.state" if keeps_state else ":to_state"
    decision_payload = (
        "jsonb_build_object('decision_id', d.decision_id, 'account_id', d.account_id, "
        "'product_id', d.product_id, 'decision', d.decision, 'rule_id', d.rule_id, "
        "'reason', d.reason, 'state_before', d.state_before, 'state_after', d.state_after, "
        "'as_of', :as_of_text, 'context', d.context::jsonb, 'warning_level', d.warning_level, "
        "'amount_fen', d.amount_fen, 'rule_version', d.rule_version)")
    parts = [f"""
cand AS (
  SELECT pc.product_id, pc.account_id, pc.customer_id, pc.product, pc.state, pc.cycle,
         pc.command_seq, pc.amount_due_fen, pc.balance_fen, pc.oldest_due_month, pc.tier,
         pc.product_amount_due_fen, pc.warning_level,
         COALESCE(cp.star_level, pc.star_level) AS star, {_LIMIT} AS limit_fen,
         {_BDATE} AS suspended_on, {_EXEMPT} AS exempt, pc.suspension_warned_on,
         pc.suspension_deadline, {_scheduled(step) if step.suspend_row else "NULL::date"}
         AS suspend_on, {_notice_columns(step)}
  FROM credit.product_credit pc
  LEFT JOIN credit.credit_profiles cp ON cp.customer_id = pc.customer_id
  WHERE {_where(step)}
  ORDER BY pc.product_id LIMIT :chunk
  FOR UPDATE OF pc
)""", f"""
dec AS (
  INSERT INTO credit.decisions (decision_id, product_id, account_id, decision, rule_id, reason,
      state_before, state_after, as_of, context, inputs, warning_level, amount_fen, rule_version)
  SELECT md5(c.product_id || '|' || :decision || '|' || {_period(step)}
             || '|' || c.cycle)::uuid::text,
         c.product_id, c.account_id, :decision, :rule_id,
         {_reason(step)},
         c.state, {state_after}, :as_of,
         jsonb_build_object('customer', ap.customer, 'product', c.product,
                            'amount_due_fen', c.product_amount_due_fen,
                            'account_amount_due_fen', c.amount_due_fen,
                            'as_of_date', CASE WHEN ap.as_of > :as_of
                                THEN ((ap.as_of AT TIME ZONE 'Asia/Shanghai')::date)::text
                                ELSE :as_of_date END,
                            'deadline', {_deadline(step)}, 'suspension_exempt', c.exempt,
                            'bill_month', to_char(c.oldest_due_month, 'YYYY-MM'),
                            'reminder_level', CASE WHEN :decision = 'warning'
                                AND CAST(:level AS int) > c.warning_level + 1
                                THEN c.warning_level + 1 END),
         jsonb_build_object('balance_fen', c.balance_fen, 'amount_due_fen', c.amount_due_fen,
                            'dues', ap.dues, 'tier', c.tier, 'star_level', c.star,
                            'credit_limit_fen', c.limit_fen, 'exemptions', '[]'::jsonb,
                            'oldest_due_month', c.oldest_due_month, 'cause', 'sweep',
                            'rule_version', :rule_version,
                            'suspension_warned_on', c.suspension_warned_on,
                            'suspension_deadline', c.suspension_deadline,
                            'late', c.suspension_deadline > c.suspend_on
                                    OR COALESCE(c.notice_from > c.suspend_on, false),
                            'notice_status', c.notice_status,
                            'notice_reached_on', c.notice_reached_on,
                            'notice_exception', c.notice_exception),
         :level, CASE WHEN :is_deduction THEN k.ded_fen END,
         :rule_version
  -- A deduction takes from the deposit, the account's one for all its products: shared in
  -- product id order, each asking at most its own amount due, after what the account's
  -- other products were asked the same day (8e1cd81; the one-pass sweep's
  -- sweep_sql._deduction_shares); none without anything left to take.
  FROM (SELECT cd.*, COALESCE(sum(cd.product_amount_due_fen) OVER (
               PARTITION BY cd.account_id ORDER BY cd.product_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS ded_before
        FROM cand cd) c
  JOIN credit.account_positions ap ON ap.account_id = c.account_id
  CROSS JOIN LATERAL (SELECT LEAST(
      c.product_amount_due_fen, GREATEST(0, ap.deposit_fen - c.ded_before - (
        SELECT COALESCE(sum(x.amount_fen), 0) FROM credit.product_credit o
        JOIN credit.decisions x ON x.product_id = o.product_id
        WHERE o.account_id = c.account_id AND o.product_id <> c.product_id
          AND x.decision = 'deduction'
          AND (x.as_of AT TIME ZONE 'Asia/Shanghai')::date = CAST(:as_of_date AS date))))
      AS ded_fen) k
  WHERE NOT :is_deduction OR k.ded_fen > 0
  ON CONFLICT DO NOTHING
  RETURNING *
)"""]
    if not keeps_state:
        parts.append(_state_parts(chain, manual, step.row.warning_level is not None,
                                  step.row.decision is DecisionType.SUSPENSION_WARNING))
    events = [f"SELECT d.product_id, 1 AS kind, '{'credit.decisions.v1'}' AS topic, "
              f"d.account_id AS key, 'credit.decision_made' AS event_type, "
              f"{decision_payload} AS payload FROM dec d"]
    if chain:
        events.append(
            "SELECT u.product_id, 2, 'provisioning.commands.v1', u.product_id, "
            "'provisioning.command', jsonb_build_object('command_id', u.pending_command_id, "
            "'decision_id', u.pending_decision_id, 'product_id', u.product_id, "
            "'account_id', u.account_id, 'cpno', u.product->>'cpno', 'family', u.family, "
            "'vendor', u.product->'vendor', 'action', 'suspend', 'sequence', u.command_seq, "
            "'requested_at', :as_of_text, 'attempt', 1, 'customer_id', u.customer_id) FROM upd u")
    elif action in (Action.SUSPEND_NOW, Action.PRE_CANCEL):
        events.append(
            "SELECT d.product_id, 2, 'credit.decisions.v1', d.account_id, "
            "'credit.state_changed', jsonb_build_object('account_id', d.account_id, "
            "'product_id', d.product_id, 'decision_id', d.decision_id, "
            "'state_before', d.state_before, 'state_after', d.state_after, "
            "'as_of', :as_of_text, 'context', d.context::jsonb) FROM dec d")
    parts.append(f"""
ev AS (SELECT * FROM ({" UNION ALL ".join(events)}) e),
ob AS (
  INSERT INTO credit.outbox (event_id, topic, key, event_type, payload)
  SELECT x.eid, x.topic, x.key, x.event_type,
         {_envelope("' || x.event_type || '", "x.key", "x.payload")}
  FROM (SELECT gen_random_uuid() AS eid, ev.* FROM ev ORDER BY ev.product_id, ev.kind) x
  ORDER BY x.product_id, x.kind
  RETURNING 1
)""")
    return _typed("WITH " + ",".join(parts) + "\nSELECT (SELECT count(*) FROM cand) AS candidates, "
            "(SELECT max(product_id) FROM cand) AS last_id, (SELECT count(*) FROM dec) AS decided,"
            " (SELECT count(*) FROM ob) AS published")


def _notice_columns(step: SweepStep) -> str:
    """What the notice predicate knows of each candidate (for its reason and inputs)."""
    if step.suspend_row is None:
        return ("pc.notice_status, pc.notice_reason, pc.notice_permanent, pc.notice_failures, "
                "pc.notice_failures + pc.notice_withdrawals AS notice_losses, "
                "NULL::date AS notice_reached_on, NULL::date AS notice_from, "
                "NULL::boolean AS notice_exception, false AS notice_again")
    # An unheard warning reads as lost (ladder.heard_as_of).
    return (f"CASE WHEN {NOTICE_UNHEARD} THEN 'unheard' ELSE pc.notice_status END "
            f"AS notice_status, CASE WHEN {NOTICE_UNHEARD} THEN {NOTICE_UNHEARD_REASON} "
            f"ELSE pc.notice_reason END AS notice_reason, pc.notice_permanent, "
            f"{NOTICE_FAILURES} AS notice_failures, {NOTICE_LOSSES} AS notice_losses, "
            f"{NOTICE_REACHED_ON} AS notice_reached_on, {NOTICE_SUSPEND_FROM} AS notice_from, "
            f"{NOTICE_EXCEPTION} AS notice_exception, {NOTICE_AGAIN} AS notice_again")


def _state_parts(chain: bool, manual: bool, warning: bool, suspension_warning: bool) -> str:
    sets = ["state = d.state_after", "state_changed_at = :as_of"]
    if warning:
        sets += ["warning_level = :level", "ladder_month = p.oldest_due_month"]
    if suspension_warning:  # ladder.record: when, and the deadline it named
        sets += ["ladder_month = p.oldest_due_month", "suspension_warned_on = :today",
                 "suspension_deadline = (d.context::json->>'deadline')::date",
                 # Its SMS is still to be heard of; lost ones of this ladder stay counted.
                 "suspension_warning_id = d.decision_id", "notice_status = NULL",
                 "notice_sent_at = NULL", "notice_delivered_at = NULL", "notice_reason = NULL",
                 "notice_permanent = false", "notice_days = :notice_days",
                 "notice_failures = CASE WHEN " + NOTICE_LOST.replace("pc.", "p.")
                 + " AND p.suspension_deadline IS NOT NULL THEN "
                 + NOTICE_FAILURES.replace("pc.", "p.") + " ELSE 0 END",
                 "notice_withdrawals = CASE WHEN " + NOTICE_LOST.replace("pc.", "p.")
                 + " AND p.suspension_deadline IS NOT NULL THEN p.notice_withdrawals "
                 "ELSE 0 END"]
    if chain:
        sets += ["command_seq = p.command_seq + 1",
                 "pending_command_id = md5(d.decision_id || '|cmd|' || (p.command_seq + 1))"
                 "::uuid::text",
                 "pending_decision_id = d.decision_id", "command_action = 'suspend'",
                 "command_at = :as_of", "command_attempt = 1", "command_sent_at = :now_ts",
                 "retry_at = NULL", "pending_work_order_id = NULL"]
    if manual:
        sets += ["pending_decision_id = d.decision_id",
                 "pending_work_order_id = 'WO-' || "
                 "substr(md5(d.decision_id || '|suspend|'), 1, 20)"]
    parts = f"""
upd AS (
  UPDATE credit.product_credit p SET {", ".join(sets)}
  FROM dec d WHERE p.product_id = d.product_id
    -- The planner guesses a few thousand rows out of `dec` and would hash the whole table;
    -- the array makes it an index scan on the primary key.
    AND p.product_id = ANY(ARRAY(SELECT product_id FROM dec))
  RETURNING p.*
),
hist AS (
  INSERT INTO credit.state_history (product_id, state_before, state_after, cause, decision_id, at)
  SELECT d.product_id, d.state_before, d.state_after, d.rule_id || ': ' || d.reason,
         d.decision_id, :as_of FROM dec d
  RETURNING 1
)"""
    if manual:
        parts += """,
wo AS (
  INSERT INTO credit.work_orders (work_order_id, product_id, account_id, customer_id, action,
      decision_id, reason, status, role, assignee, due_at, created_at, updated_at, steps)
  SELECT u.pending_work_order_id, u.product_id, u.account_id, u.customer_id, 'suspend',
         u.pending_decision_id, :rule_id || ': month-end suspension', 'created', 'operator',
         NULL, :due_at, :as_of, :as_of,
         jsonb_build_array(jsonb_build_object('at', :as_of_text, 'by', :source,
             'status', 'created', 'role', 'operator', 'note', :rule_id))
  FROM upd u
  ON CONFLICT DO NOTHING
  RETURNING 1
)"""
    return parts


def params(step: SweepStep, as_of: datetime, now: datetime, rule_version: int, after: str,
           chunk: int, source: str, correlation_id: str | None,
           due_at: datetime) -> dict[str, Any]:
    row = step.row
    return {
        "family": row.family.value, "tier": row.tier.value,
        "from_states": [s.value for s in step.from_states], "to_state": step.to_state.value,
        "after": after, "chunk": chunk, "cutoff": step.cutoff, "month": step.month,
        "level": row.warning_level, "decision": row.decision.value, "rule_id": row.rule_id,
        "day": str(row.day), "arrears_month": str(row.arrears_month), "as_of": as_of,
        "as_of_text": as_of.isoformat(), "as_of_date": _business_day(as_of),
        "deadline": step.deadline.isoformat() if step.deadline else None,
        "is_deduction": row.decision is DecisionType.DEDUCTION, "rule_version": rule_version,
        "source": source, "now": now.isoformat(), "now_ts": now,
        "correlation_id": correlation_id, "due_at": due_at,
        "short_before": step.retention_short_before, "long_before": step.retention_long_before,
        "today": step.today, "notice_date": step.notice_date,
        "notice_days": step.notice_days,
        "requires_delivery": step.notice_policy.requires_delivery,
        "max_warnings": step.notice_policy.max_warnings,
        "unheard_after_days": step.notice_policy.unheard_after_days,
    }


def _business_day(at: datetime) -> str:
    from common.clock import business_date
    return business_date(at).isoformat()


async def tune(conn: AsyncConnection) -> None:
    """For this transaction only: the outbox sort of a chunk fits in memory instead of
    spilling to disk, and no JIT compile (it costs more than these short statements save)."""
    await conn.execute(text("SET LOCAL work_mem = '64MB'"))
    await conn.execute(text("SET LOCAL jit = off"))


async def run_step(
    conn: AsyncConnection, sql: str, values: dict[str, Any]
) -> tuple[int, str | None, int]:
    used = {k: v for k, v in values.items() if f":{k} " in sql}
    row = (await conn.execute(text(sql), used)).one()
    return int(row.candidates), row.last_id, int(row.decided)


async def count_candidates(
    conn: AsyncConnection, step: SweepStep, values: dict[str, Any]
) -> int:
    sql = _typed("SELECT count(*) FROM credit.product_credit pc LEFT JOIN "
                 "credit.credit_profiles cp ON cp.customer_id = pc.customer_id "
                 f"WHERE {_where(step)}")
    used = {k: v for k, v in {**values, "after": ""}.items() if f":{k} " in sql}
    return int(await conn.scalar(text(sql), used) or 0)


async def active_products(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text(
        "SELECT count(*) FROM credit.product_credit WHERE state NOT IN "
        "('suspended', 'suspend_requested', 'pre_cancel')")) or 0)
