"""A sweep as ONE statement per chunk of products: every rule row due today (the day's
`SweepStep`s, passed as arrays and joined as the relation `due`) is evaluated against each
product at once, and the steps a product matches are applied in plan order (suspensions,
suspension warnings, deductions, warnings, pre-cancellations), as if the steps had run one
after the other over the whole table:

- a product matches at most one row of each decision (one suspension and one suspension
  warning row per family × tier; deductions and warnings fire only for their own arrears
  month, and of several warning rows the first in plan order, the highest level, blocks the
  rest); `fold` carries the state from one to the next, so a suspension or a suspension
  warning leaves no warning, a deduction keeps the state (the same product can still be
  warned), and a state changed today leaves no pre-cancellation;
- a step whose decision id exists already decides nothing and changes nothing (the old
  statement's `ON CONFLICT DO NOTHING`): `match` probes the id, so the steps after it see the
  state it left.
- notice before suspension includes its SMS (`suspension_criteria`, `notice_allows`): a
  suspension row matches only once the warning's SMS reached the customer a notice period ago
  or never can (an exception), and a suspension-warning row also matches when the SMS was lost
  and another may reach the customer (`notice_again`: a new decision, its id ending `~n`); a
  warning still unheard of `:unheard_after_days` after its deadline counts as lost
  (`notice_unheard`, ladder.heard_as_of).

Then the decisions, the one state UPDATE per product (so the history, the work orders and the
outbox rows come from the same rows), all inside PostgreSQL. `rules.on_calendar` is the same
rule for one product (the integration tests check both agree); bench/sweep_compare.py checks
this statement against the one-statement-per-rule-row path it replaced, row by row.
"""

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
)
from common.contracts.gateway import ProvisioningCommand
from common.contracts.notifier import NoticeStatus
from common.contracts.snapshots import ProductFamily, Tier
from common.envelope import SCHEMA_VERSION
from common.ids import EVENT_NUMBER_DIGITS, event_id_head

from ...adapters import tables as t
from ..domain.ladder import DEFAULT_POLICY
from ..domain.model import Action, action_for
from ..domain.profiles import STAR_LIMITS_FEN
from ..domain.rules import SweepStep
from .balance_sql import PRODUCT_OWES_SQL
from .event_text import (
    date_json,
    day_text,
    enum_json,
    envelope_text,
    moment_json,
    object_text,
    struct_text,
    text_json,
)

D = DecisionType
# The sweep's events go into the outbox 16 to a row (per topic, in order; common.outbox says
# how they are published): a row costs the outbox more than its bytes, and lz4 packs 16
# envelopes into ~3.7 KB. Written alone, 345,747 events a month end took 3.5–4 s one a row
# and ~1 s sixteen a row, with 79 MB of WAL against 557; the sweep as a whole, CPU-bound,
# takes about as long as before (grouping and compressing cost what the rows saved) with
# 40 % less WAL, and the relay publishes its events faster (docs/benchmarks.md, nineteenth
# session).
OUTBOX_GROUP = 16
# A chunk's messages are numbered per topic; the commands topic's numbers start here, so
# every message of a chunk has its own number (its event id's last hex digits, `msg`).
_TOPIC_NUMBERS = 16 ** EVENT_NUMBER_DIGITS // 2
_BDATE = "(pc.state_changed_at AT TIME ZONE 'Asia/Shanghai')::date"
_AP_DAY = "(ap.as_of AT TIME ZONE 'Asia/Shanghai')::date"  # its account's newest event's day
_INACTIVE = ("'" + "', '".join(s.value for s in (
    CreditState.SUSPENDED, CreditState.SUSPEND_REQUESTED, CreditState.PRE_CANCEL)) + "'")


def _month(d: str) -> str:
    """A date's month, 2026-11."""
    return f"left({day_text(d)}, 7)"


# --- the rule rows due today, as a relation -----------------------------------------------

# (column, SQL array type, value of one step): the `due` relation's columns.
_DUE: list[tuple[str, str]] = [
    ("step_no", "integer"), ("rule_id", "text"), ("family", "text"), ("tier", "text"),
    ("decision", "text"), ("effect", "text"), ("level", "integer"), ("month", "date"),
    ("cutoff", "date"), ("from_states", "text"), ("to_state", "text"), ("deadline", "text"),
    ("skip_exempt", "boolean"), ("sus_months", "integer"), ("sus_day", "integer"),
    ("notice_date", "date"), ("notice_days", "integer"), ("day", "text"),
    ("arrears_month", "text"),
]


def effect(step: SweepStep) -> str:
    """What a decision does to the product row: `keep` (a deduction), `chain` (a suspension
    command to the gateway), `manual` (a suspension work order), `now` (ADC's suspension, or a
    pre-cancellation: the state changes at once, with a state_changed event), `notice`."""
    action = action_for(step.row.decision, step.row.family)
    if action is Action.DEDUCT:
        return "keep"
    if action is Action.REQUEST_SUSPEND:
        return "chain" if step.row.family.uses_chain else (
            "manual" if step.row.family is ProductFamily.WORK_ORDER else "notice")
    if action in (Action.SUSPEND_NOW, Action.PRE_CANCEL):
        return "now"
    return "notice"


def _due_values(numbered: Sequence[tuple[int, SweepStep]]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {f"d_{c}": [] for c, _ in _DUE}
    for n, step in numbered:
        row, sus = step.row, step.suspend_row
        values = {
            "step_no": n, "rule_id": row.rule_id, "family": row.family.value,
            "tier": row.tier.value, "decision": row.decision.value, "effect": effect(step),
            "level": row.warning_level, "month": step.month, "cutoff": step.cutoff,
            "from_states": ",".join(s.value for s in step.from_states),
            "to_state": step.to_state.value,
            "deadline": step.deadline.isoformat() if step.deadline else None,
            "skip_exempt": step.skip_exempt,
            "sus_months": sus.arrears_month if sus is not None else None,
            "sus_day": (0 if sus.day in ("last", None) else int(sus.day)) if sus else None,
            "notice_date": step.notice_date, "notice_days": step.notice_days,
            "day": str(row.day),
            "arrears_month": str(row.arrears_month)}
        for c, _ in _DUE:
            cols[f"d_{c}"].append(values[c])
    return cols


# `from_list`: the states a row acts on, split once per statement (MATERIALIZED: inlined,
# the split would run again for every product the row is tested against).
# `*_json`: the JSON of the row's rule id and decision for the events, once per statement too.
_DUE_SQL = ("due AS MATERIALIZED (SELECT r.*, string_to_array(r.from_states, ',') AS from_list, "
            "to_json(r.rule_id)::text AS rule_id_json, to_json(r.decision)::text AS decision_json "
            "FROM unnest(" + ", ".join(f":d_{c}" for c, _ in _DUE)
            + ") AS r(" + ", ".join(c for c, _ in _DUE) + "))")

# --- the predicates, once -----------------------------------------------------------------


def _suspend_on(r: str, oldest: str = "pc.oldest_due_month") -> str:
    """The tier's suspension day for the product's oldest owing month (ladder.py's
    `scheduled_suspension`): month `sus_months` after it, on `sus_day` (0: the last day)."""
    return _suspend_on_at(f"{r}.sus_months", f"{r}.sus_day", oldest)


def _notice_counts(r: str, p: str = "pc") -> str:
    """ladder.notice_counts: a suspension warning of this month that announces the current
    tier's suspension day (NULL when the ladder has no month: as the old statement did)."""
    return (f"({p}.ladder_month = {p}.oldest_due_month AND {p}.suspension_deadline IS NOT NULL "
            f"AND {p}.suspension_deadline >= {_suspend_on(r, f'{p}.oldest_due_month')})")


# --- Notice before suspension: the warning's SMS reached the customer ----------------------
# (domain/ladder.py `Notice`, `notice_allows`, `warning_owed_again`; rules._calendar_due is
# the same rule for one product.) The SMS was delivered (sent, when receipts are not
# expected, :requires_delivery) at least the warning's notice period before today; or it
# failed for good (no valid contact number, or :max_warnings failed in a row): then the
# suspension is an exception with its reason. A lost SMS (failed, or cancelled: withdrawn by
# the notifier's re-check because its reason went) that may yet reach the customer makes the
# suspension warning owed again (a new decision); a withdrawn one never counts toward
# :max_warnings (ladder.WITHDRAWN). A warning whose SMS neither reached the customer nor was
# lost by `:unheard_after_days` after its deadline has failed too, as of today
# (`notice_unheard`: one more failure, stored by the next warning).
# The policy is the sweep's, the same for every rule row: bound once per statement.


def _notice_outcome_lost(p: str = "pc") -> str:
    return f"COALESCE({p}.notice_status, '') IN ('failed', 'cancelled')"


def notice_waiting(p: str = "pc") -> str:
    """The SMS neither reached the customer (as far as :requires_delivery asks) nor was lost
    (NULL when nothing is known of the row's notice columns)."""
    return f"(NOT {_notice_outcome_lost(p)} AND {notice_reached_on(p)} IS NULL)"


def notice_unheard(p: str = "pc") -> str:
    """ladder.heard_as_of: waiting still, and the deadline the warning named +
    :unheard_after_days has come (never NULL)."""
    return (f"COALESCE({notice_waiting(p)} "
            f"AND {p}.suspension_deadline + :unheard_after_days <= :today, false)")


def _notice_lost(p: str = "pc") -> str:
    return f"({_notice_outcome_lost(p)} OR {notice_unheard(p)})"


def _notice_failed(p: str = "pc") -> str:
    """ladder.FAILED: the SMS failed, or is unheard of too long (not a withdrawn one)."""
    return f"(COALESCE({p}.notice_status, '') = 'failed' OR {notice_unheard(p)})"


def notice_failures(p: str = "pc") -> str:
    """ladder.Notice.failures as of today: failed warnings of this ladder, the current one
    included if it is (unheard counts; withdrawn ones do not)."""
    return f"({p}.notice_failures + CASE WHEN {notice_unheard(p)} THEN 1 ELSE 0 END)"


def notice_losses(p: str = "pc") -> str:
    """ladder.Notice.losses: every warning of this ladder that did not reach the customer as
    of today, failed or withdrawn (names the next one, `~n`)."""
    return f"({notice_failures(p)} + {p}.notice_withdrawals)"


def notice_exception(p: str = "pc") -> str:
    """ladder.Notice.exception: only a failed delivery, permanent or the :max_warnings-th."""
    return (f"({_notice_failed(p)} AND ({p}.notice_permanent "
            f"OR {notice_failures(p)} >= :max_warnings))")


def unheard_reason(p: str = "c") -> str:
    """ladder.unheard_reason, the same words."""
    heard_by = day_text(f"{p}.suspension_deadline + :unheard_after_days")
    return (f"('never heard of by ' || {heard_by} "
            f"|| ', ' || :unheard_after_days || ' days after its deadline ' || "
            f"{day_text(f'{p}.suspension_deadline')} || ': ' || CASE WHEN "
            f"{p}.notice_status = 'sent' THEN 'sent, no delivery receipt' "
            "ELSE 'no outcome from the notifier' END)")


def notice_reached_on(p: str = "pc") -> str:
    return (f"((CASE WHEN :requires_delivery THEN {p}.notice_delivered_at "
            f"ELSE COALESCE({p}.notice_delivered_at, {p}.notice_sent_at) END) "
            "AT TIME ZONE 'Asia/Shanghai')::date")


def notice_suspend_from(p: str = "pc") -> str:
    return f"({notice_reached_on(p)} + GREATEST(1, COALESCE({p}.notice_days, 1)))"


def notice_again(p: str = "pc") -> str:
    """ladder.warning_owed_again: the SMS was lost and another may reach the customer."""
    return f"({_notice_lost(p)} AND NOT {notice_exception(p)})"


def notice_allows(p: str = "pc") -> str:
    """ladder.notice_allows: the SMS reached the customer a notice period ago, or never can."""
    return f"({notice_suspend_from(p)} <= :today OR {notice_exception(p)})"


def suspension_criteria(r: str, p: str = "pc", f: str = "f", freezes: bool = True) -> str:
    """Whether a product of row `r`'s family × tier in a state the row acts on, owing, may be
    suspended today: not exempt (red list / emergency) nor frozen (a scoped emergency freeze,
    `freezes`), the notice before suspension was
    given and its deadline has come (ladder.may_suspend), and its SMS reached the customer
    a notice period ago or is an exception (ladder.notice_allows). THE place for the
    suspension's conditions: the guard's count and the sweep's exact match use it.
    (`_may_match`, the chunk's cheap candidate test, may be looser.)"""
    frozen = f"NOT {f}.frozen AND " if freezes else ""
    return (f"NOT {f}.exempt AND {frozen}{_notice_counts(r, p)} "
            f"AND {p}.suspension_deadline <= :today AND {notice_allows(p)}")


def suspension_warning_criteria(r: str, p: str = "pc") -> str:
    """The suspension warning is owed: none counts, or its SMS was lost and another may reach
    the customer."""
    return f"(NOT {_notice_counts(r, p)} OR {notice_again(p)})"


def _again_part(p: str) -> str:
    # A warning owed again because its SMS was lost is named for the losses so far.
    return f"CASE WHEN {notice_again(p)} THEN '~' || {notice_losses(p)} ELSE '' END"


def _period(r: str, p: str = "pc", f: str = "f") -> str:
    """rules: one decision of a kind per product, period and cycle."""
    return (f"CASE {r}.decision WHEN 'pre_cancel' THEN 'retention:' || "
            f"{day_text(f'{f}.suspended_on')} "
            f"WHEN 'suspension_warning' THEN {r}.rule_id || ':' || "
            f"{_month(f'{p}.oldest_due_month')} || ':' || {_sw_deadline(r, p)} "
            f"|| {_again_part(p)} "
            f"ELSE {r}.rule_id || ':' || {_month(f'{p}.oldest_due_month')} END")


def _sw_deadline_date(r: str, p: str = "pc") -> str:
    # ladder.suspension_deadline: the suspension day, or the day the warning is sent (today;
    # a catch-up sweep's real day: rules.sweep_plan's `sent_on`) + the notice period.
    return f"GREATEST({_suspend_on(r, f'{p}.oldest_due_month')}, {r}.notice_date)"


def _sw_deadline(r: str, p: str = "pc") -> str:
    return day_text(_sw_deadline_date(r, p))


def _decision_id(r: str, p: str = "pc", f: str = "f") -> str:
    return (f"md5({p}.product_id || '|' || {r}.decision || '|' || {_period(r, p, f)} || '|' "
            f"|| {p}.cycle)::uuid::text")


def _match(r: str, guard: bool = False, p: str = "pc", f: str = "f",
           freezes: bool = True) -> str:
    """Row `r` matches product `p` (facts `f`) as its own step would have on the product's
    state before today's sweep; the state left by earlier steps is `fold`'s. Not in the
    guard's count: whether the decision exists, or a deposit to deduct from. `freezes`
    False: as if no freeze stood (what a freeze holds back, `held_by_freezes`)."""
    sw_frozen = f" AND NOT {f}.frozen_warn" if freezes else ""
    calendar = [
        f"{p}.amount_due_fen > {f}.limit_fen", PRODUCT_OWES_SQL.replace("pc.", f"{p}."),
        f"CASE WHEN {r}.cutoff IS NOT NULL THEN {p}.oldest_due_month <= {r}.cutoff "
        f"ELSE {p}.oldest_due_month = {r}.month END",
        f"NOT ({r}.skip_exempt AND {f}.exempt)",
        f"({r}.level IS NULL OR {p}.warning_level < {r}.level)",
        f"({r}.decision <> 'suspend' OR ({suspension_criteria(r, p, f, freezes)}))",
        f"({r}.decision <> 'suspension_warning' OR ({suspension_warning_criteria(r, p)}"
        f"{sw_frozen}))",
        # An open promise to pay defers suspension and its warning (collections/, _promised).
        f"({r}.decision NOT IN ('suspend', 'suspension_warning') OR NOT {f}.promised)",
    ]
    if not guard:
        # A deduction takes from the deposit: none without one (rules.deduction_amount).
        calendar.append(f"({r}.decision <> 'deduction' OR {f}.deposit_fen > 0)")
    pre_cancel = (f"{f}.suspended_on <= CASE WHEN {f}.star IN (4, 5) THEN :long_before "
                  f"ELSE :short_before END AND NOT ({r}.skip_exempt AND {f}.exempt) "
                  f"AND {PRODUCT_OWES_SQL.replace('pc.', f'{p}.')} "
                  f"AND NOT {held_by_association(p)}")
    matches = (f"{p}.state = ANY({r}.from_list) "
               f"AND CASE WHEN {r}.decision = 'pre_cancel' THEN {pre_cancel} "
               f"ELSE {' AND '.join(calendar)} END")
    where = f"{r}.family = {p}.family AND {r}.tier = {p}.tier AND "
    if guard:
        return where + matches
    # The decision id's probe only for a row that matches: inside a CASE, as PostgreSQL
    # orders the ANDs of a join filter by their estimated cost, and a probe planned as a
    # sequential scan of a table without statistics costs nothing (so planned, it ran first:
    # five md5s and probes per product, for rows the product mostly did not match).
    return (where + f"CASE WHEN {matches} THEN NOT EXISTS (SELECT 1 FROM credit.decisions x "
            f"WHERE x.decision_id = {_decision_id(r, p, f)})"
            # A sweep that needs an approved preview takes only approved decisions
            # (service_layer/approvals.py); :approved is NULL otherwise.
            f" AND (:approved IS NULL OR {_decision_id(r, p, f)} IN "
            "(SELECT unnest(:approved))) ELSE false END")


def held_by_association(p: str = "pc") -> str:
    """The product is suspended by association for a collections case (关联停机,
    collections/): held for another account's arrears, never pre-cancelled by retention
    (rules.ProductFacts.held). Asked only of a product whose retention ran out."""
    return (f"EXISTS (SELECT 1 FROM credit.collection_associations ca "
            f"WHERE ca.product_id = {p}.product_id AND ca.status = 'suspended')")


# --- the chunk's candidates: a cheap test on the product row alone -------------------------

_KINDS = {"sus": D.SUSPEND, "sw": D.SUSPENSION_WARNING, "ded": D.DEDUCTION,
          "warn": D.WARNING, "pc": D.PRE_CANCEL}

_FT = (f"((array_position(:fams, pc.family) - 1) * {len(Tier)} "
       "+ array_position(:tiers, pc.tier))")
# Months from the oldest owing month to today's: a warning or deduction row of arrears month
# n fires only for n (1..12); outside, the array index is NULL and so is the lookup.
_FA = (f"(({_FT} - 1) * 12 + NULLIF(LEAST(GREATEST(:month_index - (date_part('year', "
       "pc.oldest_due_month) * 12 + date_part('month', pc.oldest_due_month))::int, 0), 13) "
       "% 13, 0))")


def _may_match() -> str:
    """A product the chunk takes and locks: it may match a row due today. Looser than `_match`
    (no credit limit, exemption or star level: those need other tables), exact where a re-run
    must find nothing (states moved, warning levels, the ladder's notice, decisions taken), so
    a sweep that decides nothing reads the table once and locks nothing. Per family × tier
    (`_FT`) and arrears month (`_FA`) the day's rows come as arrays."""
    sus_on = _suspend_on_at(f"(:sus_months)[{_FT}]", f"(:sus_day)[{_FT}]")
    exempt = f"COALESCE(pc.customer_id IN ({_ACTIVE_EXEMPT}), false)"
    counts = (f"(pc.ladder_month = pc.oldest_due_month AND pc.suspension_deadline IS NOT NULL "
              f"AND pc.suspension_deadline >= {sus_on})")
    owing = [
        f"pc.state = ANY(:sus_from) AND pc.oldest_due_month <= (:sus_cutoff)[{_FT}] "
        f"AND {counts} AND pc.suspension_deadline <= :today AND {notice_allows()} "
        f"AND NOT {exempt}",
        f"pc.state = ANY(:sw_from) AND pc.oldest_due_month <= (:sw_cutoff)[{_FT}] "
        f"AND (NOT COALESCE({counts}, false) OR {notice_again()}) AND NOT {exempt}",
        f"pc.state = ANY(:ded_from) AND (:ded_rule)[{_FA}] IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM credit.account_positions ap WHERE ap.account_id = "
        "pc.account_id AND ap.deposit_fen > 0) AND NOT EXISTS (SELECT 1 FROM credit.decisions "
        "x WHERE x.decision_id = md5(pc.product_id || '|deduction|' || (:ded_rule)[" + _FA
        + "] || ':' || " + _month("pc.oldest_due_month") + " || '|' || pc.cycle)::uuid::text)",
        f"pc.state = ANY(:warn_from) AND pc.warning_level < (:warn_level)[{_FA}]",
    ]
    retention = (f"pc.state = ANY(:pc_from) AND (:pc_on)[{_FT}] "
                 f"AND {_BDATE} <= :short_before AND NOT {exempt} "  # the short one ends first
                 f"AND {PRODUCT_OWES_SQL} AND NOT {held_by_association()}")
    # Last, so only a product that got this far costs the look-ups: the credit limit (its
    # profile, else its star level) and the red list.
    limit = (f"COALESCE((SELECT {_limit('pc')} FROM credit.credit_profiles cp "
             f"WHERE cp.customer_id = pc.customer_id), {_star_limit('pc.star_level')})")
    return (f"((pc.oldest_due_month IS NOT NULL AND {PRODUCT_OWES_SQL} AND ("
            + " OR ".join(f"({c})" for c in owing) + f") AND pc.amount_due_fen > {limit})"
            f" OR ({retention}))")


def _prefilter_values(numbered: Sequence[tuple[int, SweepStep]],
                      today: date) -> dict[str, Any]:
    """The arrays `_may_match` looks the day's rows up in."""
    fams, tiers = list(ProductFamily), list(Tier)
    n = len(fams) * len(tiers)
    v: dict[str, Any] = {"fams": [x.value for x in fams], "tiers": [x.value for x in tiers],
                         "month_index": today.year * 12 + today.month,
                         "sus_cutoff": [None] * n, "sw_cutoff": [None] * n,
                         "sus_months": [None] * n, "sus_day": [None] * n, "pc_on": [None] * n,
                         "ded_rule": [None] * n * 12, "warn_level": [None] * n * 12,
                         **{f"{k}_from": [] for k in _KINDS}}
    for _, step in numbered:
        row = step.row
        kind = next(k for k, d in _KINDS.items() if d is row.decision)
        v[f"{kind}_from"] += [s.value for s in step.from_states
                              if s.value not in v[f"{kind}_from"]]
        ft = fams.index(row.family) * len(tiers) + tiers.index(row.tier)
        if step.suspend_row is not None:
            sus = step.suspend_row
            v["sus_months"][ft] = sus.arrears_month
            v["sus_day"][ft] = 0 if sus.day in ("last", None) else int(sus.day)
        if row.decision is D.SUSPEND:
            v["sus_cutoff"][ft] = step.cutoff
        elif row.decision is D.SUSPENSION_WARNING:
            v["sw_cutoff"][ft] = step.cutoff
        elif row.decision is D.PRE_CANCEL:
            v["pc_on"][ft] = True
        elif row.arrears_month is not None:
            fa = ft * 12 + row.arrears_month - 1
            if row.decision is D.DEDUCTION:
                v["ded_rule"][fa] = row.rule_id
            elif row.warning_level is not None:
                v["warn_level"][fa] = max(v["warn_level"][fa] or 0, row.warning_level)
    return v


def _suspend_on_at(months: str, day: str, oldest: str = "pc.oldest_due_month") -> str:
    return (f"(CASE WHEN {day} = 0 THEN {oldest} + make_interval(months => {months} + 1) "
            f"- interval '1 day' ELSE {oldest} + make_interval(months => {months}, "
            f"days => {day} - 1) END)::date")


def _star_limit(star: str) -> str:
    return (f"CASE {star} " + " ".join(f"WHEN {s} THEN {v[0]}" for s, v in STAR_LIMITS_FEN.items())
            + " ELSE 0 END")


def _limit(p: str, cp: str = "cp") -> str:
    """The credit limit: the profile's, else its star level's, else the product's star."""
    return (f"COALESCE({cp}.credit_limit_fen, "
            f"{_star_limit(f'COALESCE({cp}.star_level, {p}.star_level)')})")


def _bdate(p: str) -> str:
    return f"({p}.state_changed_at AT TIME ZONE 'Asia/Shanghai')::date"


_ACTIVE_EXEMPT = ("SELECT e.customer_id FROM credit.exemptions e WHERE e.removed_at IS NULL "
                  "AND (e.until IS NULL OR e.until > :as_of)")
# Scoped emergency freezes in force at :as_of (domain/freezes.py), as one row of arrays: per
# scope kind the values frozen, for suspensions (s_) and, of the freezes that also cover
# them, for suspension warnings (w_). Read once per statement; `_frozen` looks a product up.
_FREEZE_SCOPES = ("family", "tier", "star_level", "vendor", "channel", "customer", "region")
_FREEZES_SQL = ("fz AS (SELECT COALESCE(bool_or(z.scope = 'all'), false) AS s_all, "
                "COALESCE(bool_or(z.scope = 'all' AND z.covers_warnings), false) AS w_all, "
                + ", ".join(
                    f"COALESCE(array_agg(z.value) FILTER (WHERE z.scope = '{k}'), '{{}}') "
                    f"AS s_{k}, COALESCE(array_agg(z.value) FILTER (WHERE z.scope = '{k}' "
                    f"AND z.covers_warnings), '{{}}') AS w_{k}" for k in _FREEZE_SCOPES)
                + " FROM credit.freezes z WHERE z.ended_at IS NULL AND z.starts_at <= :as_of "
                "AND z.until > :as_of)")


# Accounts an open promise to pay holds back at :today (collections/domain/promises.py
# `Promise.defers`): open, made by :as_of, and no date of its schedule before :today with
# its cumulative amount unpaid ("paid": the dues of the months it covers fell from the
# baseline). One row of an array, read once per statement; `_promised` looks an account up.
_PROMISES_SQL = (
    "pr AS (SELECT COALESCE(array_agg(p.account_id), '{}') AS accounts "
    "FROM credit.promises p WHERE p.status = 'open' AND p.recorded_at <= :as_of "
    "AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p.schedule) s "
    "WHERE (s ->> 'due_on')::date < :today "
    "AND (s ->> 'cumulative_fen')::bigint > GREATEST(0, p.baseline_fen - "
    "(SELECT COALESCE(sum((d ->> 'amount_due_fen')::bigint), 0) "
    "FROM credit.account_positions ap CROSS JOIN LATERAL jsonb_array_elements(ap.dues) d "
    "WHERE ap.account_id = p.account_id AND d ->> 'bill_month' <= p.covered_through "
    "AND (d ->> 'amount_due_fen')::bigint > 0))))")


def _promised(p: str, z: str = "pr") -> str:
    return f"({p}.account_id = ANY({z}.accounts))"


def _frozen(p: str, star: str, warnings: bool = False, z: str = "fz") -> str:
    """freezes.frozen: a freeze in force covers product `p` (star level `star`)."""
    k = "w" if warnings else "s"
    found = {"family": f"{p}.family", "tier": f"{p}.tier", "star_level": f"({star})::text",
             "vendor": f"{p}.product->>'vendor'", "channel": f"{p}.product->>'channel'",
             "customer": f"{p}.customer_id", "region": f"{p}.region"}
    # A scope is looked at only when a freeze names it: the snapshot is json (migration
    # 0029), and `->>` parses its text.
    return (f"COALESCE({z}.{k}_all OR " + " OR ".join(
        f"(cardinality({z}.{k}_{scope}) > 0 AND {v} = ANY({z}.{k}_{scope}))"
        for scope, v in found.items()) + ", false)")


# The guard's facts of each product, next to the row (a lateral the planner inlines).
_STAR = "COALESCE(cp.star_level, pc.star_level)"
_FACTS = (f"CROSS JOIN fz CROSS JOIN pr CROSS JOIN LATERAL (SELECT {_STAR} AS star, "
          f"{_limit('pc')} AS limit_fen, {_bdate('pc')} AS suspended_on, "
          f"COALESCE(pc.customer_id IN ({_ACTIVE_EXEMPT}), false) AS exempt, "
          f"{_frozen('pc', _STAR)} AS frozen, "
          f"{_frozen('pc', _STAR, warnings=True)} AS frozen_warn, "
          f"{_promised('pc')} AS promised) f")


# A candidate's columns, carried through every step of the chunk: not the pending command's
# and work order's, which only the state UPDATE reads (from the table: every column carried
# is copied at each materialised step).
_NOT_CARRIED = {"command_seq", "pending_command_id", "pending_decision_id", "command_action",
                "command_at", "command_attempt", "command_sent_at", "retry_at",
                "pending_work_order_id", "suspension_warning_id"}
_CAND_COLUMNS = ", ".join(f"pc.{c.name}" for c in t.product_credit.columns
                          if c.name not in _NOT_CARRIED)


def _candidates(bounded: bool = False) -> str:
    """The chunk: the next products that may match, locked in product id order (a payment
    that commits while the sweep waits for a row lock is re-checked on the locked row); their
    facts from the other tables, set-wise; per product the first step of each decision it
    matches exactly (plan order: for warnings, the highest level), NULL where none.

    A sweep of a moment before a product's last decision (a day re-run by hand, or posted
    with a past `as_of`) leaves that product to the next sweep: its facts are newer than the
    sweep's day, and no decision is dated before the product's last one (nor an SMS sent
    today naming a deadline already past). A catch-up is the exception: it acts late on
    purpose, on the missed day (its notices count from the real day, `sent_on`), and the
    new month's bill notices that come before it must not hold its suspensions back."""
    picks = ", ".join(f"min(r.step_no) FILTER (WHERE r.decision = '{d.value}') OVER w AS s_{k}"
                      for k, d in _KINDS.items())
    return f"""
cand AS (
  SELECT {_CAND_COLUMNS} FROM credit.product_credit pc
  WHERE pc.product_id > :after {"AND pc.product_id <= :upto" if bounded else ""}
    AND {_may_match()}
    AND (:catch_up IS NOT NULL OR pc.state_changed_at <= :as_of)
  ORDER BY pc.product_id LIMIT :chunk
  FOR UPDATE
),
{_DUE_SQL},
{_FREEZES_SQL},
{_PROMISES_SQL},
facts AS (
  SELECT c.*, COALESCE(cp.star_level, c.star_level) AS star, {_limit('c')} AS limit_fen,
         {_bdate('c')} AS suspended_on,
         COALESCE(c.customer_id IN ({_ACTIVE_EXEMPT}), false) AS exempt,
         {_frozen('c', 'COALESCE(cp.star_level, c.star_level)')} AS frozen,
         {_frozen('c', 'COALESCE(cp.star_level, c.star_level)', warnings=True)} AS frozen_warn,
         {_promised('c')} AS promised,
         -- one primary-key probe per candidate: a join would read every account per chunk
         COALESCE((SELECT ap.deposit_fen FROM credit.account_positions ap
                   WHERE ap.account_id = c.account_id), 0) AS deposit_fen
  FROM cand c LEFT JOIN credit.credit_profiles cp ON cp.customer_id = c.customer_id
       CROSS JOIN fz CROSS JOIN pr
),
picked AS (
  -- A window over the chunk's few rows of each product, not a GROUP BY joined back: no join
  -- of two large sets whose size the planner can only guess.
  SELECT * FROM (
    SELECT DISTINCT ON (c.product_id) c.*, {picks}
    FROM facts c LEFT JOIN due r ON r.family = c.family AND r.tier = c.tier
         AND {_match('r', p='c', f='c')}
    WINDOW w AS (PARTITION BY c.product_id)
    ORDER BY c.product_id) m
  WHERE num_nonnulls(m.s_sus, m.s_sw, m.s_ded, m.s_warn, m.s_pc) > 0
)"""


def _fold() -> str:
    """Each step sees the state the steps before it left (from the row's `from_states`):
    s1 after the suspension, s2 after the suspension warning; a deduction keeps the state."""
    return f"""
fold AS (
  SELECT c.*,
         c.s_sus IS NOT NULL AS sus_fires,
         c.s_sw IS NOT NULL AND c.s1 = ANY(sw.from_list) AS sw_fires
  FROM (SELECT c.*, COALESCE(sus.to_state, c.state) AS s1
        FROM picked c LEFT JOIN due sus ON sus.step_no = c.s_sus) c
  LEFT JOIN due sw ON sw.step_no = c.s_sw
),
fold2 AS (
  SELECT c.*, CASE WHEN c.sw_fires THEN sw.to_state ELSE c.s1 END AS s2,
         CASE WHEN c.sw_fires THEN {_sw_deadline_date('sw', 'c')} END AS sw_deadline
  FROM fold c LEFT JOIN due sw ON sw.step_no = c.s_sw
),
fired AS (
  -- Up to five steps per product, one row each. A join to five constant rows, not a
  -- LATERAL VALUES list of the product's columns: PostgreSQL compiles such a list's
  -- expressions again for every product (7 % of a chunk's server instructions, callgrind).
  SELECT * FROM (
    SELECT c.*,
           CASE k.i WHEN 1 THEN CASE WHEN c.sus_fires THEN c.s_sus END
                    WHEN 2 THEN CASE WHEN c.sw_fires THEN c.s_sw END
                    WHEN 3 THEN CASE WHEN c.ded_fires THEN c.s_ded END
                    WHEN 4 THEN CASE WHEN c.warn_fires THEN c.s_warn END
                    -- a step that changed the state today leaves no pre-cancellation (its
                    -- retention starts today); a deduction leaves the product as it was
                    ELSE CASE WHEN NOT (c.sus_fires OR c.sw_fires OR c.warn_fires)
                              THEN c.s_pc END END AS step_no,
           CASE k.i WHEN 1 THEN c.state WHEN 2 THEN c.s1 ELSE c.s2 END AS state_before
    FROM (SELECT c.*,
                 c.s_ded IS NOT NULL AND c.s2 = ANY(ded.from_list) AS ded_fires,
                 c.s_warn IS NOT NULL AND c.s2 = ANY(wn.from_list) AS warn_fires
          FROM fold2 c LEFT JOIN due ded ON ded.step_no = c.s_ded
          LEFT JOIN due wn ON wn.step_no = c.s_warn) c
    CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS k(i)) x
  WHERE x.step_no IS NOT NULL
)"""


# A day without a deduction row due: the steps as they are, without the deposit's shares
# (a CTE of the chunk's deduction steps and a lateral join per step, for nothing).
_NO_DEDUCTIONS = "steps c JOIN credit.account_positions ap ON ap.account_id = c.account_id"


def _deduction_shares() -> str:
    """`steps c` with the account's position `ap` and each deduction's amount `k.ded_fen`
    (rules.deduction_shares): the account's ONE deposit shared by its products deducted the
    same day, in product id order (billing's order within a bill month), each asking at most
    its own amount due. Every product asking min(account due, deposit) told the contact of
    each product that the whole deposit went to it: two products, a deposit of 20.00 yuan,
    "划扣20.00元" twice, 20.00 collected. What the account's other products were asked for
    earlier the same business day (an earlier chunk of this sweep, or an earlier sweep of the
    day: a re-run must not ask for the same deposit again, as `as_of` equality let it) is
    taken off first; should billing already have collected it, the ask is smaller (never more
    than the deposit: a deduction told is a deduction made). Limit: two lanes running at once
    do not see each other's uncommitted asks, so an account whose products deducted the same
    day fall in two ranges swept at the same moment can be asked for more than its deposit
    (billing collects at most what it holds; the notice says what was asked)."""
    # What the account's products before this one ask in this chunk: summed over the
    # chunk's deduction steps only (a few per thousand products). A window over every step
    # sorted the whole chunk by account: the 1,000,000-product re-run 2.0 s against 1.2 s.
    return """(WITH deds AS MATERIALIZED (
             SELECT d.account_id, d.product_id, d.product_amount_due_fen FROM steps d
             WHERE d.decision = 'deduction')
        SELECT s.*, CASE WHEN s.decision = 'deduction' THEN (
                 SELECT COALESCE(sum(d.product_amount_due_fen), 0) FROM deds d
                 WHERE d.account_id = s.account_id AND d.product_id < s.product_id)
               END AS ded_before
        FROM steps s) c
  JOIN credit.account_positions ap ON ap.account_id = c.account_id
  CROSS JOIN LATERAL (SELECT CASE WHEN c.decision = 'deduction' THEN LEAST(
      c.product_amount_due_fen, GREATEST(0, ap.deposit_fen - c.ded_before - (
        SELECT COALESCE(sum(x.amount_fen), 0) FROM credit.product_credit o
        JOIN credit.decisions x ON x.product_id = o.product_id
        WHERE o.account_id = c.account_id AND o.product_id <> c.product_id
          AND x.decision = 'deduction'
          AND (x.as_of AT TIME ZONE 'Asia/Shanghai')::date = :today))) END AS ded_fen) k
  WHERE c.decision <> 'deduction' OR k.ded_fen > 0"""


# rules.notice_note: an exception's reason, or a suspension made late by its notice. An
# unheard warning (c.notice_unheard) reads as ladder.heard_as_of makes it: status `unheard`,
# one more failure, its own reason.
_NOTICE_WHY = (f"CASE WHEN c.notice_unheard THEN {unheard_reason('c')} "
               "ELSE COALESCE(NULLIF(c.notice_reason, ''), c.notice_status) END")
_NOTICE_NOTE = (
    "CASE WHEN c.notice_exception THEN '; exception: ' || CASE WHEN c.notice_permanent "
    f"THEN 'suspension warning undeliverable: ' || {_NOTICE_WHY} "
    "ELSE (c.notice_failures + CASE WHEN c.notice_unheard THEN 1 ELSE 0 END) "
    "|| ' suspension warnings in a row ' "
    "|| CASE WHEN c.notice_unheard THEN 'unheard' ELSE c.notice_status END || ': ' "
    f"|| {_NOTICE_WHY} END "
    "WHEN c.notice_from > GREATEST(c.suspend_on, c.suspension_deadline) THEN "
    "'; late: suspension warning reached the customer on ' || c.notice_reached_on ELSE '' END")


def _envelope(event_type_json: str, key: str, payload_text: str) -> str:
    """common.envelope's envelope around a payload given as JSON text, as msgspec writes it
    (event_text.py: one serialisation style for every event)."""
    return envelope_text(event_type_json, "x.eid", ":source_json", ":now_json",
                         ":correlation_json", ":schema_version", key, payload_text)


def _statement(bounded: bool = False, deductions: bool = True) -> str:
    # The payloads as msgspec writes their contracts (event_text.py): the contract's field
    # order, compact, datetimes as msgspec formats them (`*_json` parameters). The context is
    # written once, as text: the stored snapshots are json as msgspec wrote them (migration
    # 0029), spliced in; the decision keeps that text and the payloads take it as it is.
    notice_context = struct_text(NoticeContext, {
        "customer": "ap.customer::text", "product": "c.product::text",
        # 截至 the day of the facts quoted: the sweep's, or its account's newest event's when
        # that came after the sweep's moment (a late or catch-up sweep, a month end swept
        # after the next bill run: the amount is today's, so is the date; QA pass 30).
        "amount_due_fen": "c.product_amount_due_fen",
        "as_of_date": f"CASE WHEN ap.as_of > :as_of THEN {date_json(_AP_DAY)} "
                      "ELSE :as_of_date_json END",
        "deadline": text_json("c.deadline"),
        "bill_month": text_json(_month("c.oldest_due_month")),
        "suspension_exempt": "c.exempt", "account_amount_due_fen": "c.amount_due_fen",
        # ladder.reminder_level: a warning of a step past the next one this ladder owes is
        # sent with the next one's text (the product's level is this ladder's: the balance
        # path restarts it when the oldest owing month moves on).
        "reminder_level": "CASE WHEN c.decision = 'warning' AND c.level > c.warning_level + 1 "
                          "THEN c.warning_level + 1 END"},
        raw=("customer", "product", "as_of_date", "deadline", "bill_month"))
    context = "d.context"
    # Enum values' JSON as constants (event_text.enum_json); the rule id and decision come as
    # JSON from `due`, made once per statement: fields given as JSON text (`raw`).
    state_before, state_after = (enum_json(f"d.{c}", CreditState)
                                 for c in ("state_before", "state_after"))
    as_json = ("decision", "rule_id", "state_before", "state_after", "family")
    decision_members = {
        "decision_id": "d.decision_id", "account_id": "d.account_id",
        "product_id": "d.product_id", "decision": "d.decision_json",
        "rule_id": "d.rule_id_json", "reason": "d.reason", "state_before": state_before,
        "state_after": state_after, "as_of": ":as_of_json", "context": context,
        "warning_level": "d.warning_level", "amount_fen": "d.amount_fen",
        "rule_version": "d.rule_version"}
    raw = ("as_of", "context", "caught_up_at", "requested_at", *as_json)
    # Ids the statement made (md5 uuids' text): no escaping to do, never NULL.
    made = ("decision_id", "command_id")
    # A catch-up sweep's decisions also say when they were really made (the notifier sends,
    # and dates what became of the SMS, in that time); an on-time sweep's are as they were.
    caught_up = {**decision_members, "caught_up_at": ":now_json"}
    decision_payload = (
        f"CASE WHEN :catch_up IS NULL THEN "
        f"{struct_text(CreditDecisionMade, decision_members, raw, made)} "
        f"ELSE {struct_text(CreditDecisionMade, caught_up, raw, made)} END")
    command_payload = struct_text(ProvisioningCommand, {
        "command_id": "u.pending_command_id", "decision_id": "u.pending_decision_id",
        "product_id": "u.product_id", "account_id": "u.account_id",
        "cpno": "u.product->>'cpno'", "family": enum_json("u.family", ProductFamily),
        "vendor": "u.product->'vendor'", "action": "'\"suspend\"'",
        "sequence": "u.command_seq", "requested_at": ":as_of_json", "attempt": "1",
        "customer_id": "u.customer_id"}, (*raw, "action"), made)
    changed_payload = struct_text(CreditStateChanged, {
        "account_id": "d.account_id", "product_id": "d.product_id",
        "decision_id": "d.decision_id", "state_before": state_before,
        "state_after": state_after, "as_of": ":as_of_json", "context": context}, raw, made)
    # What the decision was based on, as text (migrations 0030, 0033: stored unchecked, as
    # the context is): a jsonb_build_object typed and copied every value into a jsonb and
    # sorted its keys.
    # After a suspension warning of this sweep (`after_sw`): the one just given, its SMS
    # unheard of.
    after_sw = "c.sw_fires AND c.step_no > c.s_sw"
    inputs_members = [
        ("balance_fen", "c.balance_fen", "plain"), ("amount_due_fen", "c.amount_due_fen", "plain"),
        ("dues", "ap.dues::text", "raw"), ("tier", enum_json("c.tier", Tier), "raw"),
        ("star_level", "c.star", "plain"), ("credit_limit_fen", "c.limit_fen", "plain"),
        ("exemptions", "'[]'", "raw"), ("oldest_due_month", date_json("c.oldest_due_month"), "raw"),
        ("cause", "'\"sweep\"'", "raw"), ("rule_version", ":rule_version", "plain"),
        ("suspension_warned_on", date_json(
            f"CASE WHEN {after_sw} THEN :today ELSE c.suspension_warned_on END"), "raw"),
        ("suspension_deadline", date_json(
            f"CASE WHEN {after_sw} THEN c.sw_deadline ELSE c.suspension_deadline END"), "raw"),
        ("late", "c.suspension_deadline > c.suspend_on "
                 "OR COALESCE(c.notice_from > c.suspend_on, false)", "plain"),
        ("notice_status", enum_json(f"CASE WHEN {after_sw} THEN NULL WHEN c.notice_unheard "
                                    "THEN 'unheard' ELSE c.notice_status END",
                                    [*NoticeStatus, "unheard"]), "raw"),
        ("notice_reached_on", date_json("c.notice_reached_on"), "raw"),
        ("notice_exception", "c.notice_exception", "plain")]
    # A catch-up sweep's decisions say so, and when they were really made.
    caught_up_members = [
        ("cause", "'\"catch-up sweep\"'", "raw") if k == "cause" else (k, v, kind)
        for k, v, kind in inputs_members] + [
        ("catch_up", ":catch_up", "json"), ("caught_up_at", ":now", "json")]
    inputs = (f"(CASE WHEN :catch_up IS NULL THEN {object_text(inputs_members)} "
              f"ELSE {object_text(caught_up_members)} END)")
    reason = (
        "CASE WHEN c.decision = 'pre_cancel' THEN 'suspended since ' || c.suspended_on || "
        "', retention (' || CASE WHEN c.star IN (4, 5) THEN 120 ELSE 90 END || ' days) ran out'"
        " ELSE 'amount due ' || c.amount_due_fen || ' fen since bill month ' || "
        + _month("c.oldest_due_month") + " || '; ' || c.decision || ' on day ' || c.day "
        "|| ' of arrears month ' || c.arrears_month || CASE WHEN c.decision = 'suspend' AND "
        # rules.late_note: a late suspension (its warning came late) is not a missed one.
        "c.suspension_deadline > c.suspend_on THEN '; late: suspension warning of ' || "
        "c.suspension_warned_on || ' named ' || c.suspension_deadline ELSE '' END "
        "|| CASE WHEN c.decision = 'suspend' THEN " + _NOTICE_NOTE + " ELSE '' END END")
    # The candidates' CTE first in the text: pg_stat_activity shows a query's first 1,024
    # bytes, and staff (and the lock tests) look there for what a sweep waits on
    # (test_sweep_sql_contracts checks it is there).
    return _typed(f"""WITH {_candidates(bounded)},{_fold()},
steps AS (
  SELECT c.*, r.rule_id, r.decision, r.effect, r.level, r.day, r.arrears_month,
         CASE WHEN r.effect = 'keep' THEN c.state_before ELSE r.to_state END AS state_after,
         CASE WHEN r.decision IN ('suspend', 'suspension_warning')
              THEN {_suspend_on('r', 'c.oldest_due_month')} END AS suspend_on,
         CASE WHEN r.decision = 'suspension_warning' THEN {_sw_deadline('r', 'c')}
              ELSE r.deadline END AS deadline,
         -- what the notice predicate knows (suspension and suspension-warning rows)
         CASE WHEN r.decision IN ('suspend', 'suspension_warning')
              THEN {notice_reached_on('c')} END AS notice_reached_on,
         CASE WHEN r.decision IN ('suspend', 'suspension_warning')
              THEN {notice_suspend_from('c')} END AS notice_from,
         CASE WHEN r.decision IN ('suspend', 'suspension_warning')
              THEN {notice_exception('c')} END AS notice_exception,
         CASE WHEN r.decision IN ('suspend', 'suspension_warning')
              THEN {notice_unheard('c')} END AS notice_unheard
  FROM fired c JOIN due r ON r.step_no = c.step_no
),
dec AS (
  INSERT INTO credit.decisions (decision_id, product_id, account_id, decision, rule_id, reason,
      state_before, state_after, as_of, context, inputs, warning_level, amount_fen, rule_version)
  SELECT md5(c.product_id || '|' || c.decision || '|' || CASE c.decision
               WHEN 'pre_cancel' THEN 'retention:' || {day_text('c.suspended_on')}
               WHEN 'suspension_warning' THEN c.rule_id || ':' ||
                 {_month('c.oldest_due_month')} || ':' || c.deadline
                 || {_again_part('c')}
               ELSE c.rule_id || ':' || {_month('c.oldest_due_month')} END
             || '|' || c.cycle)::uuid::text,
         c.product_id, c.account_id, c.decision, c.rule_id,
         {reason},
         c.state_before, c.state_after, :as_of,
         ({notice_context}),
         {inputs},
         c.level, {"k.ded_fen" if deductions else "NULL::bigint"}, :rule_version
  FROM {_deduction_shares() if deductions else _NO_DEDUCTIONS}
  ON CONFLICT DO NOTHING
  -- not `inputs` (nor the times): the rest of the statement does not read them, and every
  -- column returned is copied into this CTE's store and `moved`'s
  RETURNING decision_id, product_id, account_id, decision, rule_id, reason, state_before,
            state_after, context, warning_level, amount_fen, rule_version
),
moved AS (  -- a rule row is at most one step of a pass
  SELECT d.*, r.effect, r.step_no, r.notice_days AS sw_notice_days, r.sus_months, r.sus_day,
         r.rule_id_json, r.decision_json,
         r.notice_date
  FROM dec d JOIN due r ON r.rule_id = d.rule_id
),
upd AS (
  UPDATE credit.product_credit p SET state = d.state_after, state_changed_at = :as_of,
    warning_level = CASE WHEN d.decision = 'warning' THEN d.warning_level
                         ELSE p.warning_level END,
    ladder_month = CASE WHEN d.decision IN ('warning', 'suspension_warning')
                        THEN p.oldest_due_month ELSE p.ladder_month END,
    -- ladder.record: when, and the deadline it named
    suspension_warned_on = CASE WHEN d.decision = 'suspension_warning' THEN :today
                                ELSE p.suspension_warned_on END,
    suspension_deadline = CASE WHEN d.decision = 'suspension_warning'
                               THEN {_sw_deadline_date('d', 'p')}
                               ELSE p.suspension_deadline END,
    -- a suspension warning's SMS is still to be heard of; lost ones of this ladder stay
    -- counted
    suspension_warning_id = CASE WHEN d.decision = 'suspension_warning' THEN d.decision_id
                                 ELSE p.suspension_warning_id END,
    notice_status = CASE WHEN d.decision = 'suspension_warning' THEN NULL
                         ELSE p.notice_status END,
    notice_sent_at = CASE WHEN d.decision = 'suspension_warning' THEN NULL
                          ELSE p.notice_sent_at END,
    notice_delivered_at = CASE WHEN d.decision = 'suspension_warning' THEN NULL
                               ELSE p.notice_delivered_at END,
    notice_reason = CASE WHEN d.decision = 'suspension_warning' THEN NULL
                         ELSE p.notice_reason END,
    notice_permanent = CASE WHEN d.decision = 'suspension_warning' THEN false
                            ELSE p.notice_permanent END,
    notice_days = CASE WHEN d.decision = 'suspension_warning'
                       THEN d.sw_notice_days ELSE p.notice_days END,
    notice_failures = CASE WHEN d.decision <> 'suspension_warning' THEN p.notice_failures
                           WHEN {_notice_lost('p')} AND p.suspension_deadline IS NOT NULL
                           THEN {notice_failures('p')} ELSE 0 END,
    notice_withdrawals = CASE WHEN d.decision <> 'suspension_warning'
                              THEN p.notice_withdrawals
                              WHEN {_notice_lost('p')} AND p.suspension_deadline IS NOT NULL
                              THEN p.notice_withdrawals ELSE 0 END,
    command_seq = p.command_seq + CASE WHEN d.effect = 'chain' THEN 1 ELSE 0 END,
    pending_command_id = CASE WHEN d.effect = 'chain' THEN
        md5(d.decision_id || '|cmd|' || (p.command_seq + 1))::uuid::text
        ELSE p.pending_command_id END,
    pending_decision_id = CASE WHEN d.effect IN ('chain', 'manual') THEN d.decision_id
                               ELSE p.pending_decision_id END,
    command_action = CASE WHEN d.effect = 'chain' THEN 'suspend' ELSE p.command_action END,
    command_at = CASE WHEN d.effect = 'chain' THEN :as_of ELSE p.command_at END,
    command_attempt = CASE WHEN d.effect = 'chain' THEN 1 ELSE p.command_attempt END,
    command_sent_at = CASE WHEN d.effect = 'chain' THEN :now_ts ELSE p.command_sent_at END,
    retry_at = CASE WHEN d.effect = 'chain' THEN NULL ELSE p.retry_at END,
    pending_work_order_id = CASE WHEN d.effect = 'chain' THEN NULL
        WHEN d.effect = 'manual' THEN 'WO-' || substr(md5(d.decision_id || '|suspend|'), 1, 20)
        ELSE p.pending_work_order_id END
  FROM moved d WHERE p.product_id = d.product_id AND d.effect <> 'keep'
  -- what `wo` and `ev` read, not p.*: every column returned is copied into this CTE's store
  -- (the product snapshot only for a command's payload)
  RETURNING p.product_id, p.account_id, p.customer_id, p.family, p.command_seq,
            p.pending_command_id, p.pending_decision_id, p.pending_work_order_id,
            CASE WHEN d.effect = 'chain' THEN p.product END AS product,
            d.effect, d.rule_id AS rule_id_, d.step_no
),
hist AS (
  INSERT INTO credit.state_history (product_id, state_before, state_after, cause, decision_id, at)
  SELECT d.product_id, d.state_before, d.state_after, d.rule_id || ': ' || d.reason,
         d.decision_id, :as_of FROM moved d WHERE d.effect <> 'keep'
  RETURNING 1
),
wo AS (
  INSERT INTO credit.work_orders (work_order_id, product_id, account_id, customer_id, action,
      decision_id, reason, status, role, assignee, due_at, created_at, updated_at, steps)
  SELECT u.pending_work_order_id, u.product_id, u.account_id, u.customer_id, 'suspend',
         u.pending_decision_id, u.rule_id_ || ': month-end suspension', 'created', 'operator',
         NULL, :due_at, :as_of, :as_of,
         jsonb_build_array(jsonb_build_object('at', :as_of_text, 'by', :source,
             'status', 'created', 'role', 'operator', 'note', u.rule_id_))
  FROM upd u WHERE u.effect = 'manual'
  ON CONFLICT DO NOTHING
  RETURNING 1
),
void AS (
  -- A repair work order still open for a product suspended here through the chain (a person
  -- was to make the gateway let it send: docs/gateway.md, Repair) is superseded, as the
  -- balance path's commands supersede theirs (work_order_book.cancel_superseded); the
  -- partial index ix_work_orders_open_repair holds the few open ones (migration 0038).
  UPDATE credit.work_orders w SET status = 'cancelled', updated_at = :as_of,
    steps = w.steps || jsonb_build_array(jsonb_build_object('at', :as_of_text, 'by', :source,
        'status', 'cancelled', 'role', w.role,
        'note', 'superseded by command ' || u.pending_command_id || ' (suspend)'))
  FROM upd u WHERE u.effect = 'chain' AND w.product_id = u.product_id
    AND w.kind = 'repair' AND w.status IN ('created', 'assigned') AND w.action <> 'suspend'
  RETURNING 1
),
ev AS (
  SELECT d.product_id, d.step_no, 1 AS kind, :decisions_topic AS topic, 0 AS topic_no,
         d.account_id AS key, :decision_made AS event_type, :decision_made_json AS type_json,
         {decision_payload} AS payload FROM moved d
  UNION ALL
  SELECT u.product_id, u.step_no, 2, :commands_topic, 1, u.product_id, :command_type,
         :command_type_json,
         {command_payload}
  FROM upd u WHERE u.effect = 'chain'
  UNION ALL
  SELECT d.product_id, d.step_no, 2, :decisions_topic, 0, d.account_id, :state_changed,
         :state_changed_json,
         {changed_payload}
  FROM moved d WHERE d.effect = 'now'
),
msg AS (
  -- Time-ordered event ids (common.ids.event_id_head): the outbox's unique index grows at
  -- its right edge instead of taking each id on a random leaf. Made from each message's
  -- number, not a random function: nothing here is volatile, so this query is folded into
  -- `ob`, its only reader, instead of its ~1 KB rows being stored (and spilled) on the way.
  SELECT x.topic, x.key, x.event_type, x.n, x.eid,
         {_envelope("x.type_json", "x.key", "x.payload")} AS envelope
  FROM (SELECT y.*, :event_id_head || lpad(to_hex(y.topic_no * {_TOPIC_NUMBERS} + y.n),
                                            {EVENT_NUMBER_DIGITS}, '0') AS eid
        FROM (SELECT ev.*, row_number() OVER (PARTITION BY ev.topic
                                              ORDER BY ev.product_id, ev.step_no, ev.kind) AS n
              FROM ev) y) x
),
ob AS (
  -- A topic's messages in groups of :group consecutive ones, each group one row
  -- (common.outbox: its key empty when its messages' keys differ, each message published
  -- with its envelope's), groups in order: each key's messages keep their order.
  INSERT INTO credit.outbox (event_id, topic, key, event_type, payload)
  -- the row's id is its first message's: the group's smallest (same head, fixed width)
  SELECT min(m.eid COLLATE "C")::uuid, m.topic,
         CASE WHEN min(m.key) = max(m.key) THEN min(m.key) ELSE '' END,
         (array_agg(m.event_type ORDER BY m.n))[1],
         CASE WHEN count(*) = 1 THEN min(m.envelope)
              ELSE '[' || string_agg(m.envelope, ',' ORDER BY m.n) || ']' END
  FROM msg m GROUP BY m.topic, (m.n - 1) / :group
  ORDER BY m.topic, (m.n - 1) / :group
  RETURNING 1
)
SELECT (SELECT count(*) FROM cand) AS candidates, (SELECT max(product_id) FROM cand) AS last_id,
       (SELECT COALESCE(jsonb_object_agg(n.step_no, n.decided), '{{}}'::jsonb) FROM
          (SELECT step_no, count(*) AS decided FROM moved GROUP BY step_no) n) AS decided,
       -- what `ev` makes, counted from its sources (`msg` stays read once)
       (SELECT count(*) + count(*) FILTER (WHERE effect = 'now') FROM moved)
         + (SELECT count(*) FROM upd WHERE effect = 'chain') AS published,
       (SELECT count(*) FROM hist) AS changed,
       (SELECT count(*) FROM wo) AS work_orders""")


_TYPES = {
    "after": "text", "upto": "text", "chunk": "integer", "as_of": "timestamptz",
    "as_of_text": "text", "as_of_json": "text", "now_json": "text", "source_json": "text",
    "event_id_head": "text", "group": "integer",
    "correlation_json": "text",
    "as_of_date": "text", "rule_version": "integer", "source": "text", "now": "text",
    "now_ts": "timestamptz", "correlation_id": "text", "due_at": "timestamptz",
    "short_before": "date", "long_before": "date", "today": "date", "catch_up": "text",
    "schema_version": "integer", "requires_delivery": "boolean", "max_warnings": "integer",
    "unheard_after_days": "integer", "approved": "text[]", "guard_from": "text[]",
    "decisions_topic": "text", "commands_topic": "text",
    "decision_made": "text", "state_changed": "text", "command_type": "text",
    "decision_made_json": "text", "state_changed_json": "text", "command_type_json": "text",
    "as_of_date_json": "text",
    **{f"d_{c}": f"{t}[]" for c, t in _DUE},
    "fams": "text[]", "tiers": "text[]", "month_index": "integer", "sus_cutoff": "date[]",
    "sw_cutoff": "date[]", "sus_months": "integer[]", "sus_day": "integer[]",
    "pc_on": "boolean[]", "ded_rule": "text[]", "warn_level": "integer[]",
    **{f"{k}_from": "text[]" for k in ("sus", "sw", "ded", "warn", "pc")},
}
_BIND = re.compile(r"(?<![:\w]):(\w+)")


def _typed(sql: str) -> str:
    """asyncpg must know every parameter's type: CAST each bind once, by name."""
    return _BIND.sub(lambda m: f"CAST(:{m[1]} AS {_TYPES[m[1]]})" if m[1] in _TYPES
                     else m[0], sql)


STATEMENT = _statement()
# A lane's chunk (sweeps._run): products after :after up to :upto only.
STATEMENT_UPTO = _statement(bounded=True)
# The same on a day without a deduction row due (`deductions_due` in the params).
_WITHOUT_DEDUCTIONS = {False: _statement(deductions=False),
                       True: _statement(bounded=True, deductions=False)}


def params(steps: Sequence[tuple[int, SweepStep]], as_of: datetime, now: datetime,
           rule_version: int, after: str, chunk: int, source: str,
           correlation_id: str | None, due_at: datetime, today: date,
           catch_up: str | None = None, approved: list[str] | None = None) -> dict[str, Any]:
    """The pass's steps (plan number, step) and the day's values. Retention cut-offs are the
    same for every pre-cancellation row of the day."""
    retention = next((s for _, s in steps if s.row.decision is D.PRE_CANCEL), None)
    from common.clock import business_date
    return {
        **_due_values(steps), **_prefilter_values(steps, today), "after": after,
        "chunk": chunk, "as_of": as_of,
        # as_of_date: the statement's is as_of_date_json; bench/legacy_sweep_sql.py's reads it
        "as_of_text": as_of.isoformat(), "as_of_date": business_date(as_of).isoformat(),
        "as_of_date_json": msgspec.json.encode(business_date(as_of)).decode(),
        # The events' texts: JSON as msgspec writes it (event_text.py).
        "as_of_json": moment_json(as_of), "now_json": moment_json(now),
        "source_json": msgspec.json.encode(source).decode(),
        "correlation_json": msgspec.json.encode(correlation_id).decode(),
        "rule_version": rule_version, "source": source, "now": now.isoformat(),
        "now_ts": now, "correlation_id": correlation_id, "due_at": due_at, "today": today,
        "short_before": retention.retention_short_before if retention else None,
        "long_before": retention.retention_long_before if retention else None,
        "catch_up": catch_up, "schema_version": SCHEMA_VERSION, **_policy_values(steps),
        "decisions_topic": CreditDecisionMade.topic, "commands_topic": ProvisioningCommand.topic,
        "decision_made": CreditDecisionMade.event_type,
        "state_changed": CreditStateChanged.event_type,
        "command_type": ProvisioningCommand.event_type, "approved": approved,
        # The events' types as JSON: constants of the statement, not escaped per row.
        **{f"{k}_json": msgspec.json.encode(t.event_type).decode() for k, t in (
            ("decision_made", CreditDecisionMade), ("state_changed", CreditStateChanged),
            ("command_type", ProvisioningCommand))},
        "event_id_head": event_id_head(), "group": OUTBOX_GROUP,
        # Not a bind: which statement the chunk runs (run_chunk).
        "deductions_due": any(s.row.decision is D.DEDUCTION for _, s in steps),
    }


def _policy_values(steps: Sequence[tuple[int, SweepStep]]) -> dict[str, Any]:
    """The notice policy: the sweep's, the same in every step (sweep_plan's `policy`)."""
    policy = steps[0][1].notice_policy if steps else DEFAULT_POLICY
    return {"requires_delivery": policy.requires_delivery, "max_warnings": policy.max_warnings,
            "unheard_after_days": policy.unheard_after_days}


# A sweep transaction's `work_mem` (`tune`; the bench's ceilings run with it too).
WORK_MEM = "256MB"


async def tune(conn: AsyncConnection) -> None:
    """For this transaction only: a chunk's sorts of its ~1 KB messages (numbering them,
    then grouping them into outbox rows, ~60 MB each at 50,000 products) stay in memory
    instead of spilling to disk: at 64 MB they spilled, and the 1,000,000-product sweep took
    11.3 s against 9.9 s (docs/benchmarks.md, twenty-second session). A sort takes what it
    needs, not the limit. (No JIT compile either, as on every connection of ours,
    `common.db.SERVER_SETTINGS`: it costs more than these short statements save.)"""
    await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))


async def tune_chunk(conn: AsyncConnection) -> None:
    """tune, and the decision-id probes through the index even when the plan is made while
    `credit.decisions` is empty (a new database): planned as a sequential scan of nothing,
    each probe would read every row a concurrent lane (or this chunk) inserts meanwhile."""
    await tune(conn)
    await conn.execute(text("SET LOCAL enable_seqscan = off"))


async def run_chunk(conn: AsyncConnection, values: dict[str, Any]
                    ) -> tuple[int, str | None, dict[int, int]]:
    """One chunk: how many products it took, the last one, decisions per plan step. With
    `upto` in `values`, only products up to it (a lane's range)."""
    bounded = values.get("upto") is not None
    if values.get("deductions_due", True):
        sql = STATEMENT_UPTO if bounded else STATEMENT
    else:
        sql = _WITHOUT_DEDUCTIONS[bounded]
    used = {k: v for k, v in values.items() if f":{k} " in sql}
    row = (await conn.execute(text(sql), used)).one()
    decided = {int(k): int(v) for k, v in (row.decided or {}).items()}
    return int(row.candidates), row.last_id, decided


async def split_points(conn: AsyncConnection, after: str, cuts: Sequence[float],
                       min_products: int) -> list[str]:
    """Where a pass over the products after `after` splits into ranges, at the shares `cuts`
    (ascending, between 0 and 1) of its products (none when the table has fewer than
    `min_products`): quantiles of a page sample of about 20,000 rows (TABLESAMPLE SYSTEM),
    so the split costs milliseconds. The points keep the server's order of the ids (its
    collation's, which the chunks' `>` and `<=` compare by), never Python's."""
    if not cuts:
        return []
    rows = await _product_count(conn)
    if rows < max(min_products, 1):
        return []
    share = min(100.0, 100.0 * 20_000 / rows)
    sample = list((await conn.execute(text(
        f"SELECT product_id FROM credit.product_credit TABLESAMPLE SYSTEM ({share:.4f}) "
        "WHERE product_id > :after ORDER BY product_id"), {"after": after})).scalars())
    if len(sample) < (len(cuts) + 1) * 10:
        return []
    points: list[str] = []
    for at in (sample[int(len(sample) * c)] for c in cuts):  # ascending, as the cuts are
        if not points or at != points[-1]:
            points.append(at)
    return points


async def _product_count(conn: AsyncConnection) -> float:
    """The product table's row estimate; counted when the table was never analysed
    (`reltuples` -1 since PostgreSQL 14: a table just loaded, before autovacuum's first
    ANALYZE), so a first month-end on fresh data still runs in lanes. The count is an index-
    only scan, ~0.1 s at a million products, once a pass."""
    estimate = float((await conn.execute(text(
        "SELECT reltuples FROM pg_class WHERE oid = 'credit.product_credit'::regclass"
    ))).scalar_one() or 0)
    if estimate >= 0:
        return estimate
    return float((await conn.execute(text(
        "SELECT count(*) FROM credit.product_credit"))).scalar_one())


# A product the suspension rows may suspend: in a state one suspends from, owing on its own.
# Every exact match (`_match`, decision suspend) is one of these: the guard's upper bound.
_GUARD_CANDIDATE = "{p}state = ANY(:guard_from) AND {p}product_amount_due_fen > 0"


def _guard_from(steps: Sequence[tuple[int, SweepStep]]) -> list[str]:
    return sorted({s.value for _, step in steps for s in step.from_states})


async def guard_bound(conn: AsyncConnection, steps: Sequence[tuple[int, SweepStep]]
                      ) -> tuple[int, int]:
    """The active products, and at most how many the suspension rows `steps` could suspend
    (`_GUARD_CANDIDATE`). One bare scan, parallel: when even this bound keeps within the
    guard's share, the exact count (`guard_counts`) is not needed."""
    row = (await conn.execute(text(_typed(
        f"SELECT count(*) FILTER (WHERE state NOT IN ({_INACTIVE})) AS active, "
        f"count(*) FILTER (WHERE {_GUARD_CANDIDATE.format(p='')}) AS bound "
        "FROM credit.product_credit")), {"guard_from": _guard_from(steps)})).one()
    return int(row.active), int(row.bound)


async def guard_counts(conn: AsyncConnection, steps: Sequence[tuple[int, SweepStep]],
                       values: dict[str, Any]) -> tuple[int, int]:
    """The mass-suspension guard's two numbers: the products the suspension rows `steps`
    would suspend now, and the active products. The active count is a bare scan (parallel);
    the exact match runs only on the products the scan itself finds in a state a row
    suspends from and owing on their own: the facts (joins, freezes, the ladder's notice)
    cost per product they are computed for, and a re-run's table is mostly elsewhere."""
    # One suspension row per family × tier: the join doubles no product.
    sql = _typed(f"""WITH {_DUE_SQL}, {_FREEZES_SQL}, {_PROMISES_SQL}
SELECT (SELECT count(*) FROM credit.product_credit WHERE state NOT IN ({_INACTIVE})) AS active,
       (SELECT count(*) FROM credit.product_credit pc
        JOIN due r ON r.family = pc.family AND r.tier = pc.tier
        LEFT JOIN credit.credit_profiles cp ON cp.customer_id = pc.customer_id
        {_FACTS}
        WHERE {_GUARD_CANDIDATE.format(p='pc.')} AND {_match('r', guard=True)}) AS would""")
    used = {k: v for k, v in {**values, **_due_values(steps), **_policy_values(steps),
                              "guard_from": _guard_from(steps)}.items()
            if f":{k} " in sql}
    row = (await conn.execute(text(sql), used)).one()
    return int(row.would), int(row.active)


async def held_by_freezes(conn: AsyncConnection, steps: Sequence[tuple[int, SweepStep]],
                          values: dict[str, Any]) -> list[Any]:
    """The products a freeze in force holds back today: those the suspension (and suspension
    warning) rows `steps` would decide on were no freeze standing, and a freeze covers, with
    the facts the freezes' scopes look at (domain/freezes.Covered). One pass over the table,
    as the guard's count; asked only while a freeze is in force."""
    sql = _typed(f"""WITH {_DUE_SQL}, {_FREEZES_SQL}, {_PROMISES_SQL}
SELECT pc.product_id, pc.account_id, pc.family, pc.tier, f.star, pc.product->>'vendor' AS vendor,
       pc.product->>'channel' AS channel, pc.customer_id, pc.region, r.decision,
       pc.product_amount_due_fen
FROM credit.product_credit pc
LEFT JOIN credit.credit_profiles cp ON cp.customer_id = pc.customer_id
JOIN due r ON r.family = pc.family AND r.tier = pc.tier
{_FACTS}
WHERE {_match('r', guard=True, freezes=False)}
  AND CASE WHEN r.decision = 'suspend' THEN f.frozen ELSE f.frozen_warn END
ORDER BY pc.product_id""")
    used = {k: v for k, v in {**values, **_due_values(steps), **_policy_values(steps)}.items()
            if f":{k} " in sql}
    return list(await conn.execute(text(sql), used))
