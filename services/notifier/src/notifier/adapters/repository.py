"""notifier's SQL: set-wise statements, a few per batch of messages, never one per message."""

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.notices import EXEMPT_VARIANTS
from ..domain.recheck import RULES, ExemptRule, ProductFacts, Recheck, Rule, SinceRule
from ..domain.revision import exempt_note
from ..domain.templates import DEFAULT_TEMPLATES, TemplateName
from ..metrics import count_sms
from . import tables as t
from .providers import Receipt

# --- templates --------------------------------------------------------------------------


async def current_templates(conn: AsyncConnection) -> dict[TemplateName, tuple[int, str]]:
    """Each template's newest (version, text); version 1 is the shipped default."""
    current = {name: (1, text) for name, text in DEFAULT_TEMPLATES.items()}
    rows = await conn.execute(sql(
        "SELECT DISTINCT ON (name) name, version, text FROM notifier.templates "
        "ORDER BY name, version DESC"))
    for r in rows:
        if r.name in current:
            current[TemplateName(r.name)] = (r.version, r.text)
    return current


async def template_versions(conn: AsyncConnection, name: TemplateName) -> list[dict[str, Any]]:
    tt = t.templates
    rows = await conn.execute(select(tt).where(tt.c.name == name.value).order_by(tt.c.version))
    return [dict(r._mapping) for r in rows]


async def add_template_versions(
    conn: AsyncConnection, changes: dict[TemplateName, str], changed_by: str | None
) -> None:
    # One writer at a time, so two concurrent PUTs cannot both take version n + 1.
    await conn.execute(sql("SELECT pg_advisory_xact_lock(hashtext('notifier.templates'))"))
    current = await current_templates(conn)
    rows = [{"name": name.value, "version": current[name][0] + 1, "text": text,
             "changed_by": changed_by}
            for name, text in changes.items() if current[name][1] != text]
    if rows:
        await conn.execute(insert(t.templates), rows)


# --- messages in ------------------------------------------------------------------------


@dataclass
class MessageColumns:
    """A batch of new messages, one list per column (no object per message)."""

    message_id: list[str] = field(default_factory=list)
    source_id: list[str] = field(default_factory=list)
    product_id: list[str] = field(default_factory=list)
    account_id: list[str] = field(default_factory=list)
    template: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    recipient_name: list[str] = field(default_factory=list)
    recipient: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    status_reason: list[str | None] = field(default_factory=list)
    next_attempt_at: list[datetime | None] = field(default_factory=list)
    template_version: list[int] = field(default_factory=list)
    trigger: list[str] = field(default_factory=list)
    reminder: list[bool] = field(default_factory=list)
    bill_month: list[str | None] = field(default_factory=list)
    decided_at: list[datetime] = field(default_factory=list)
    event_seq: list[int] = field(default_factory=list)
    decision_as_of: list[datetime] = field(default_factory=list)
    recheck: list[str] = field(default_factory=list)
    cancelled_at: list[datetime | None] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)  # NoticeFields as JSON (domain/revision)


_MESSAGE_TYPES = {
    "segments": "int", "template_version": "int", "reminder": "boolean",
    "next_attempt_at": "timestamptz", "decided_at": "timestamptz", "event_seq": "bigint",
    "decision_as_of": "timestamptz", "cancelled_at": "timestamptz", "fields": "jsonb",
}
_MESSAGE_COLUMNS = [f.name for f in fields(MessageColumns)]
# One statement per batch, whatever its size: arrays bind as one parameter per column, where a
# multi-row VALUES would bind 22 per message and be rendered anew for every batch size.
_INSERT_MESSAGES = sql(
    f"INSERT INTO notifier.messages ({', '.join(_MESSAGE_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {_MESSAGE_TYPES.get(c, 'text')}[])" for c in _MESSAGE_COLUMNS)
    + ") ON CONFLICT (message_id) DO NOTHING RETURNING status"
)


async def insert_messages(conn: AsyncConnection, cols: MessageColumns) -> None:
    """A redelivered or re-published decision makes the same message ids: nothing new."""
    if cols.message_id:
        made = await conn.execute(_INSERT_MESSAGES,
                                  {c: getattr(cols, c) for c in _MESSAGE_COLUMNS})
        count_sms(conn, made.scalars())


# --- amounts revised, threats withdrawn (domain/revision.py) ------------------------------

# A message's template and version, or those a revision pending while it is claimed for
# sending renders it as (an exempt variant, migration 0010).
_TEMPLATE = "coalesce(m.pending_template, m.template)"
_VERSION = "coalesce(m.pending_template_version, m.template_version)"
# The messages a batch's amount changes (or exemptions) may revise: of the changed products,
# made by an earlier event (event_seq below the newest change's), not sent yet — held,
# pending or waiting for a retry, or claimed for sending ('sending': its submit is out, so it
# only gets a pending revision, see _REVISE) — of the given templates (quoting the amount
# due; or threatening suspension), with stored fields (made before migration 0008: none,
# never revised). A 'sending' row is read with the revision it is already owed (a newer
# change replaces it, built on it). With the text of the template version each was made
# with (version 1, the shipped default, is not stored: NULL here). Locked, in id order, so
# the claim cannot take one between this read and the update (the claim skips locked rows;
# the update re-checks the status).
_WAITING_TO_REVISE = sql(
    "SELECT m.message_id, m.product_id, coalesce(m.pending_fields, m.fields) AS fields, "
    f"  m.pending_reason IS NOT NULL AS cancelling, {_TEMPLATE} AS template, "
    "  v.text AS template_text "
    "FROM unnest(CAST(:products AS text[]), CAST(:seqs AS bigint[])) AS c(product_id, seq) "
    "JOIN notifier.messages m ON m.product_id = c.product_id AND m.event_seq < c.seq "
    f"LEFT JOIN notifier.templates v ON v.name = {_TEMPLATE} AND v.version = {_VERSION} "
    f"WHERE m.{t.IN_SEND_QUEUE} "
    f"  AND {_TEMPLATE} = ANY(CAST(:templates AS text[])) AND m.fields IS NOT NULL "
    "ORDER BY m.message_id FOR UPDATE OF m"
)


@dataclass(frozen=True)
class ToRevise:
    message_id: str
    product_id: str
    template: TemplateName  # or the one a pending revision renders it as
    fields: dict[str, Any]  # as stored (NoticeFields' JSON), or as a pending revision has them
    template_text: str  # of the version the message was made with (or is to be rendered as)
    cancelling: bool  # claimed for sending, to be cancelled if its submit fails


async def waiting_to_revise(
    conn: AsyncConnection, newest: dict[str, int], templates: Sequence[TemplateName],
) -> list[ToRevise]:
    """product → the event number of its newest amount change in the batch: the messages
    that change may revise (one read for the batch)."""
    if not newest:
        return []
    # Before any 'sending' row is locked: the sender's recording takes the same lock first
    # (record_*), so the two never wait for each other's rows in opposite orders.
    await conn.execute(_RECORD_LOCK)
    items = sorted(newest.items())
    rows = await conn.execute(_WAITING_TO_REVISE, {
        "products": [p for p, _ in items], "seqs": [s for _, s in items],
        "templates": sorted(t.value for t in templates)})
    return [ToRevise(r.message_id, r.product_id, TemplateName(r.template), r.fields,
                     r.template_text or DEFAULT_TEMPLATES[TemplateName(r.template)],
                     r.cancelling)
            for r in rows]


def _with_note(note: str) -> str:
    """The message's reason with `note` (an SQL expression) after it; unchanged when the
    note is NULL (concat_ws alone would make a NULL reason '')."""
    return (f"CASE WHEN {note} IS NULL THEN m.status_reason "
            f"ELSE concat_ws('; ', m.status_reason, {note}) END")


def _noted(alias: str) -> str:
    """A 'sending' row's reason once the revision it is owed is applied: with the note of a
    template it is rendered as (the exempt variant's, domain/revision.exempt_note)."""
    a = alias
    notes = " ".join(f"WHEN {_quote(v.value)} THEN {_quote(exempt_note(v))}"
                     for v in sorted(set(EXEMPT_VARIANTS.values())))
    return (f"CASE WHEN {a}.pending_template IS NULL THEN {a}.status_reason "
            f"ELSE concat_ws('; ', {a}.status_reason, CASE {a}.pending_template {notes} END) "
            "END")


# In one statement: a waiting message revised (text, segments, fields, revised_at; and for
# a threat withdrawn its template, version and a note in its reason) or cancelled (reason)
# now; a message claimed for sending ('sending': it may be at the SMSC already) given the
# revision as pending instead, replacing any older one (a template it is owed stays owed) —
# applied if its submit fails (_RETRY, _DEAD) or its claim is retaken (the claim), cleared
# once accepted (_SUBMITTED). Each row by its status as the update finds it.
_SENDING = "m.status = 'sending'"
_NOW = "m.status <> 'sending'"
_REVISE = sql(
    "UPDATE notifier.messages m SET "
    f"  text = CASE WHEN {_NOW} THEN coalesce(v.text, m.text) ELSE m.text END, "
    f"  segments = CASE WHEN {_NOW} THEN coalesce(v.segments, m.segments) ELSE m.segments END, "
    f"  fields = CASE WHEN {_NOW} THEN coalesce(v.fields, m.fields) ELSE m.fields END, "
    f"  template = CASE WHEN {_NOW} THEN coalesce(v.template, m.template) ELSE m.template END, "
    f"  template_version = CASE WHEN {_NOW} THEN coalesce(v.version, m.template_version) "
    "    ELSE m.template_version END, "
    f"  revised_at = CASE WHEN {_NOW} AND v.reason IS NULL THEN :at ELSE m.revised_at END, "
    f"  status = CASE WHEN {_NOW} AND v.reason IS NOT NULL THEN 'cancelled' ELSE m.status END, "
    f"  status_reason = CASE WHEN {_NOW} THEN coalesce(v.reason, {_with_note('v.note')}) "
    "    ELSE m.status_reason END, "
    f"  next_attempt_at = CASE WHEN {_NOW} AND v.reason IS NOT NULL THEN NULL "
    "    ELSE m.next_attempt_at END, "
    f"  cancelled_at = CASE WHEN {_NOW} AND v.reason IS NOT NULL THEN :at "
    "    ELSE m.cancelled_at END, "
    f"  pending_text = CASE WHEN {_SENDING} THEN v.text END, "
    f"  pending_segments = CASE WHEN {_SENDING} THEN v.segments END, "
    f"  pending_fields = CASE WHEN {_SENDING} THEN v.fields END, "
    f"  pending_reason = CASE WHEN {_SENDING} THEN v.reason END, "
    f"  pending_template = CASE WHEN {_SENDING} THEN coalesce(v.template, m.pending_template) "
    "    END, "
    f"  pending_template_version = CASE WHEN {_SENDING} "
    "    THEN coalesce(v.version, m.pending_template_version) END "
    "FROM unnest(CAST(:ids AS text[]), CAST(:texts AS text[]), CAST(:segments AS int[]), "
    "  CAST(:fields AS jsonb[]), CAST(:reasons AS text[]), CAST(:templates AS text[]), "
    "  CAST(:versions AS int[]), CAST(:notes AS text[])) "
    "  AS v(id, text, segments, fields, reason, template, version, note) "
    f"WHERE m.message_id = v.id AND m.{t.IN_SEND_QUEUE} "
    "RETURNING m.status, m.source_id, m.template"
)


def _apply_pending(alias: str) -> str:
    """SET items giving a 'sending' row the revision it is owed (none: no change), and
    clearing it; :at is the revision's time. Its status and reason are the caller's: a
    pending cancellation (`pending_reason`) turns it 'cancelled', a template it is owed
    is noted (`_noted`)."""
    a = alias
    return (f"text = coalesce({a}.pending_text, {a}.text), "
            f"segments = coalesce({a}.pending_segments, {a}.segments), "
            f"fields = coalesce({a}.pending_fields, {a}.fields), "
            # A pending cancellation keeps the text it was claimed with, so its template too.
            f"template = CASE WHEN {a}.pending_reason IS NULL "
            f"  THEN coalesce({a}.pending_template, {a}.template) ELSE {a}.template END, "
            f"template_version = CASE WHEN {a}.pending_reason IS NULL "
            f"  THEN coalesce({a}.pending_template_version, {a}.template_version) "
            f"  ELSE {a}.template_version END, "
            f"revised_at = CASE WHEN {a}.pending_fields IS NULL THEN {a}.revised_at "
            "  ELSE :at END, "
            f"cancelled_at = CASE WHEN {a}.pending_reason IS NULL THEN {a}.cancelled_at "
            "  ELSE :at END, " + _CLEAR_PENDING)


_CLEAR_PENDING = ("pending_text = NULL, pending_segments = NULL, pending_fields = NULL, "
                  "pending_reason = NULL, pending_template = NULL, "
                  "pending_template_version = NULL")


@dataclass
class RevisedColumns:
    """A batch's revisions, one list per column: text, segments and fields None and a
    reason: cancelled."""

    ids: list[str] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    segments: list[int | None] = field(default_factory=list)
    fields: list[str | None] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    # Rendered as another template (a threat withdrawn), and why; None: its own.
    templates: list[str | None] = field(default_factory=list)
    versions: list[int | None] = field(default_factory=list)
    notes: list[str | None] = field(default_factory=list)


async def revise_messages(conn: AsyncConnection, at: datetime, cols: RevisedColumns,
                          touched: list[tuple[str, str]] | None = None) -> int:
    """Returns how many were revised, cancelled or given a pending revision; the cancelled
    are `touched`."""
    if not cols.ids:
        return 0
    rows = (await conn.execute(_REVISE, {"at": at, **{
        f.name: getattr(cols, f.name) for f in fields(RevisedColumns)}})).all()
    gone = [r for r in rows if r.status == "cancelled"]
    count_sms(conn, [r.status for r in gone])
    _touch(touched, gone)
    return len(rows)


# --- sending ----------------------------------------------------------------------------

# The re-check (domain/recheck.py RULES) as one SQL expression over a waiting message `m` and
# its product's facts `p`: the first rule that applies gives the reason, NULL: still holds.
# COALESCE stops at the first non-NULL, as cancel_reason stops at the first rule.


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kinds(kinds: frozenset[Recheck]) -> str:
    return ", ".join(_quote(k.value) for k in sorted(kinds))


def _templates(names: frozenset[TemplateName]) -> str:
    return ", ".join(_quote(t.value) for t in sorted(names))


def _rule_sql(rule: Rule) -> str:
    if isinstance(rule, SinceRule):
        which = (f"m.template IN ({_templates(rule.templates)})" if rule.templates
                 else f"m.recheck IN ({_kinds(rule.kinds)})")
        return (f"CASE WHEN {which} AND p.{rule.fact} > m.event_seq "
                f"THEN {_quote(rule.reason)} END")
    if isinstance(rule, ExemptRule):
        return (f"CASE WHEN m.template IN ({_templates(rule.templates)}) AND p.suspension_exempt "
                f"THEN {_quote(rule.reason)} END")
    return (f"CASE WHEN m.recheck IN ({_kinds(rule.kinds)}) THEN ("
            f"SELECT {_quote(rule.reason)} || n.template FROM notifier.messages n "
            "WHERE n.product_id = m.product_id AND n.recipient = m.recipient "
            f"AND n.event_seq > m.event_seq AND n.recheck IN ({_kinds(rule.by)}) "
            "AND n.status <> 'cancelled' ORDER BY n.event_seq DESC, n.template LIMIT 1) END")


CANCEL_REASON_SQL = "COALESCE(" + ", ".join(_rule_sql(r) for r in RULES) + ")"

# Per recipient, messages leave in decision order (the decision's business time, then the
# order the events came in): a message waits while an earlier one to the same number about
# the same account waits outside this claim; inside one claim they are submitted in that
# order. Event order exists per account (the topic's key), so the order is kept per
# (recipient, account); across accounts a number's messages do not hold each other up.
_EARLIER_WAITING = (
    "SELECT 1 FROM notifier.messages e WHERE e.recipient = {q}.recipient "
    "  AND e.account_id = {q}.account_id "
    f"  AND e.{t.IN_SEND_QUEUE} "
    "  AND (e.decision_as_of, e.event_seq, e.message_id) "
    "    < ({q}.decision_as_of, {q}.event_seq, {q}.message_id)"
)
# A backlog released at the end of quiet hours is paced: a held message leaves only as the
# first waiting one to its number, and not within the minimum gap after the last claim for
# that number (the number of them per claim is the release budget, domain/pacing.py).
_HELD_PACED = f"NOT EXISTS ({_EARLIER_WAITING.format(q='q')})"
_GAP = (
    " AND NOT EXISTS (SELECT 1 FROM notifier.messages g WHERE g.recipient = q.recipient "
    "  AND g.claimed_at > :gap_since AND g.claimed_at <= :at AND g.message_id <> q.message_id)"
)
# One statement: lock what is due (pending rows and stale claims up to :limit, held rows up to
# the release budget), cancel those whose reason has gone, claim the rest that no earlier
# waiting message to the same number holds back. A stale 'sending' claim is not re-checked:
# it may already be at the SMSC, and the SMSC dedupes its resubmission. But the revision it
# was given while claimed (an amount change, _REVISE) is applied before it goes again: the
# new text, or cancelled when its product owes nothing of its own (if the dead sender's
# submit did reach the SMSC, the SMSC keeps what it got and dedupes this one).
_CLAIM_SQL = (
    "WITH due AS ("
    "  SELECT q.message_id FROM notifier.messages q "
    f"  WHERE q.{t.IN_SEND_QUEUE} AND ("
    "    (q.status = 'pending' AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= :at))"
    "    OR (q.status = 'sending' AND q.claimed_at < :stale)) "
    # Decision order, the order `ready` keeps: each number's first waiting message comes
    # before its later ones, so a batch full of held-back messages cannot shut out the
    # one they wait for (messages of one consumer batch share created_at).
    "  ORDER BY q.decision_as_of, q.event_seq, q.message_id LIMIT :limit "
    "  FOR UPDATE SKIP LOCKED"
    "), due_held AS ("
    "  SELECT q.message_id FROM notifier.messages q "
    f"  WHERE q.{t.IN_SEND_QUEUE} AND q.status = 'held' AND q.next_attempt_at <= :at "
    f"   AND {_HELD_PACED} {{gap}}"
    "  ORDER BY q.next_attempt_at, q.created_at LIMIT :held_limit FOR UPDATE SKIP LOCKED"
    "), cand AS ("
    "  SELECT m.message_id, m.recipient, m.account_id, m.status, m.decision_as_of, m.event_seq, "
    f"    CASE WHEN m.status = 'sending' THEN m.pending_reason ELSE {CANCEL_REASON_SQL} END "
    "      AS reason "
    "  FROM (SELECT message_id FROM due UNION ALL SELECT message_id FROM due_held) d "
    "  JOIN notifier.messages m ON m.message_id = d.message_id "
    "  LEFT JOIN notifier.product_states p ON p.product_id = m.product_id"
    "), cancelled AS ("
    "  UPDATE notifier.messages x SET status = 'cancelled', status_reason = c.reason, "
    f"    next_attempt_at = NULL, cancelled_at = :at, {_CLEAR_PENDING} "
    "  FROM cand c WHERE x.message_id = c.message_id AND c.reason IS NOT NULL "
    "  RETURNING x.message_id, x.source_id, x.template"
    "), ready AS ("
    "  SELECT c.message_id, c.status FROM cand c WHERE c.reason IS NULL "
    f"  AND NOT EXISTS ({_EARLIER_WAITING.format(q='c')} "
    "    AND e.message_id NOT IN (SELECT message_id FROM cand))"
    "), claimed AS ("
    "  UPDATE notifier.messages m SET status = 'sending', attempts = m.attempts + 1, "
    f"    claimed_at = :at, status_reason = {_noted('m')}, {_apply_pending('m')} "
    "  FROM ready r WHERE m.message_id = r.message_id "
    "  RETURNING m.message_id, m.recipient, m.text, m.segments, m.attempts, m.created_at, "
    "    m.decision_as_of, m.event_seq, r.status AS was"
    ") "
    "SELECT message_id, recipient, text, segments, attempts, created_at, decision_as_of, "
    "  event_seq, was, NULL AS source_id, NULL AS template FROM claimed "
    "UNION ALL SELECT message_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'cancelled', "
    "  source_id, template FROM cancelled"
)
# With and without the per-recipient gap (a setting): two fixed statements.
_CLAIM = {True: sql(_CLAIM_SQL.replace("{gap}", _GAP)), False: sql(_CLAIM_SQL.replace("{gap}", ""))}


@dataclass(frozen=True)
class ClaimResult:
    rows: list[Any]  # claimed: to submit, in decision order
    released: int  # of them, held by quiet hours until now (the release budget)
    cancelled: int  # re-checked and cancelled: their reason no longer held


async def claim_batch(
    conn: AsyncConnection, at: datetime, limit: int, held_limit: int, claim_timeout_s: float,
    recipient_gap_s: float = 0.0, touched: list[tuple[str, str]] | None = None,
) -> ClaimResult:
    rows = (await conn.execute(_CLAIM[recipient_gap_s > 0], {
        "at": at, "limit": limit, "held_limit": max(0, held_limit),
        "stale": at - timedelta(seconds=claim_timeout_s),
        "gap_since": at - timedelta(seconds=recipient_gap_s)})).all()
    claimed = [r for r in rows if r.was != "cancelled"]
    cancelled = len(rows) - len(claimed)
    if cancelled:
        count_sms(conn, ["cancelled"] * cancelled)
        _touch(touched, (r for r in rows if r.was == "cancelled"))
    # RETURNING has no order; a recipient's notices leave in decision order.
    claimed.sort(key=lambda r: (r.decision_as_of or r.created_at, r.event_seq or 0,
                                r.created_at, r.message_id))
    return ClaimResult(claimed, sum(r.was == "held" for r in claimed), cancelled)


# At receipt: the same rules over a product's waiting messages, in the consumer's
# transaction, so a payment during quiet hours shows its held reminders cancelled at once
# (the claim re-checks again as they leave).
_CANCEL_STALE = sql(
    "WITH c AS ("
    f"  SELECT m.message_id, {CANCEL_REASON_SQL} AS reason FROM notifier.messages m "
    "  JOIN notifier.product_states p ON p.product_id = m.product_id "
    "  WHERE m.product_id = ANY(CAST(:products AS text[])) "
    f"    AND m.{t.IN_SEND_QUEUE} AND m.status <> 'sending'"
    ") UPDATE notifier.messages x SET status = 'cancelled', status_reason = c.reason, "
    "  next_attempt_at = NULL, cancelled_at = :at "
    "FROM c WHERE x.message_id = c.message_id AND c.reason IS NOT NULL "
    "RETURNING x.status, x.source_id, x.template"
)


def _touch(touched: list[tuple[str, str]] | None, rows: Any) -> None:
    """Collect (decision, template) of the messages a statement moved: their notice's
    outcome may have changed (service_layer/outcomes.py)."""
    if touched is not None:
        touched.extend((r.source_id, r.template) for r in rows)


async def cancel_stale(conn: AsyncConnection, products: Sequence[str], at: datetime,
                       touched: list[tuple[str, str]] | None = None) -> int:
    if not products:
        return 0
    gone = (await conn.execute(_CANCEL_STALE, {"products": list(products), "at": at})).all()
    count_sms(conn, [r.status for r in gone])
    _touch(touched, gone)
    return len(gone)


# --- what each product last heard ---------------------------------------------------------

_SET_EXEMPT = sql(
    "UPDATE notifier.product_states p SET suspension_exempt = u.exempt, updated_at = now() "
    "FROM unnest(CAST(:product_id AS text[]), CAST(:exempt AS boolean[])) "
    "  AS u(product_id, exempt) "
    "WHERE p.product_id = u.product_id")


# Seqs only grow: a deferral numbered before a withdrawal already stored changes nothing.
_SET_WITHDRAWN = sql(
    "UPDATE notifier.product_states p SET withdrawn_seq = greatest(p.withdrawn_seq, u.seq), "
    "  updated_at = now() "
    "FROM unnest(CAST(:product_id AS text[]), CAST(:seq AS bigint[])) AS u(product_id, seq) "
    "WHERE p.product_id = u.product_id")


async def set_withdrawn(conn: AsyncConnection, withdrawn: dict[str, int]) -> None:
    """Products whose suspension warnings stopped counting with no credit event of theirs in
    the batch (credit.suspension_deferred: a promise to pay): their stored facts say since
    when (event number), for the re-checks that follow."""
    if withdrawn:
        await conn.execute(_SET_WITHDRAWN, {"product_id": list(withdrawn),
                                            "seq": list(withdrawn.values())})


async def set_suspension_exempt(conn: AsyncConnection, exempt: dict[str, bool]) -> None:
    """Products whose exemption changed (credit.exemption_changed) with no newer credit event
    in the batch: their stored facts say so, for the re-checks that follow."""
    if exempt:
        await conn.execute(_SET_EXEMPT, {"product_id": list(exempt),
                                         "exempt": list(exempt.values())})


async def next_event_seqs(conn: AsyncConnection, n: int) -> list[int]:
    """n numbers for n credit events, ascending, in one round trip."""
    if n <= 0:
        return []
    rows = await conn.execute(sql(
        "SELECT nextval('notifier.credit_event_seq') FROM generate_series(1, :n)"), {"n": n})
    return sorted(rows.scalars())


# A batch's newest facts per product; seqs only grow, so a NULL (not in this batch) keeps the
# stored value.
_UPSERT_STATES = sql(
    "INSERT INTO notifier.product_states (product_id, account_id, state, event_seq, as_of, "
    "  decision_id, normal_seq, suspended_seq, cycle_seq, suspension_exempt, bill_month, "
    "  withdrawn_seq) "
    "SELECT * FROM unnest(CAST(:product_id AS text[]), CAST(:account_id AS text[]), "
    "  CAST(:state AS text[]), CAST(:event_seq AS bigint[]), CAST(:as_of AS timestamptz[]), "
    "  CAST(:decision_id AS text[]), CAST(:normal_seq AS bigint[]), "
    "  CAST(:suspended_seq AS bigint[]), CAST(:cycle_seq AS bigint[]), "
    "  CAST(:suspension_exempt AS boolean[]), CAST(:bill_month AS text[]), "
    "  CAST(:withdrawn_seq AS bigint[])) "
    "ON CONFLICT (product_id) DO UPDATE SET account_id = EXCLUDED.account_id, "
    "  state = EXCLUDED.state, event_seq = EXCLUDED.event_seq, as_of = EXCLUDED.as_of, "
    "  decision_id = EXCLUDED.decision_id, "
    "  normal_seq = coalesce(EXCLUDED.normal_seq, product_states.normal_seq), "
    "  suspended_seq = coalesce(EXCLUDED.suspended_seq, product_states.suspended_seq), "
    "  cycle_seq = coalesce(EXCLUDED.cycle_seq, product_states.cycle_seq), "
    "  suspension_exempt = EXCLUDED.suspension_exempt, "
    "  bill_month = coalesce(EXCLUDED.bill_month, product_states.bill_month), "
    "  withdrawn_seq = coalesce(EXCLUDED.withdrawn_seq, product_states.withdrawn_seq), "
    "  updated_at = now() "
    "WHERE product_states.event_seq < EXCLUDED.event_seq"
)


async def upsert_product_states(
    conn: AsyncConnection, facts: dict[str, tuple[str, ProductFacts]]
) -> None:
    """product id → (account id, the facts the batch leaves it with)."""
    if not facts:
        return
    items = sorted(facts.items())  # a stable lock order between concurrent consumers
    await conn.execute(_UPSERT_STATES, {
        "product_id": [p for p, _ in items], "account_id": [a for _, (a, _) in items],
        "state": [f.state.value for _, (_, f) in items],
        "event_seq": [f.event_seq for _, (_, f) in items],
        "as_of": [f.as_of for _, (_, f) in items],
        "decision_id": [f.decision_id for _, (_, f) in items],
        "normal_seq": [f.normal_seq for _, (_, f) in items],
        "suspended_seq": [f.suspended_seq for _, (_, f) in items],
        "cycle_seq": [f.cycle_seq for _, (_, f) in items],
        "suspension_exempt": [f.suspension_exempt for _, (_, f) in items],
        "bill_month": [f.bill_month for _, (_, f) in items],
        "withdrawn_seq": [f.withdrawn_seq for _, (_, f) in items],
    })


async def product_state(conn: AsyncConnection, product_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(t.product_states).where(
        t.product_states.c.product_id == product_id))).first()
    return dict(row._mapping) if row is not None else None


# `attempts` fences each outcome to its claim: if this sender was slower than the claim
# timeout and another claimed the row again, the stale outcome must not overwrite the newer.
# A receipt that arrived before the submit was recorded (crash in between) is applied in
# the same statement: one write per message. A revision the message was given while its
# submit was out is dropped: the SMSC has the text it was claimed with (the window is the
# SMSC's answer time); a failed submit applies it before the message waits again.
_SUBMITTED = sql(
    "UPDATE notifier.messages m SET provider_message_id = v.pid, submitted_at = :at, "
    f"next_attempt_at = NULL, {_CLEAR_PENDING}, status = coalesce(r.status, 'submitted'), "
    "receipt_status = coalesce(r.status, m.receipt_status), "
    "delivered_at = CASE WHEN r.status = 'delivered' THEN r.receipt_at ELSE m.delivered_at END, "
    "status_reason = coalesce(r.error, m.status_reason) "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:pids AS text[])) "
    "  AS v(id, attempts, pid) "
    "LEFT JOIN notifier.receipts r ON r.provider_message_id = v.pid "
    "WHERE m.message_id = v.id AND m.status = 'sending' AND m.attempts = v.attempts "
    "RETURNING m.status, m.source_id, m.template"
)
# A failed submit waits for its retry with the revision it was given meanwhile (an amount
# change while it was out): the new text, or cancelled when its product owes nothing of its
# own (never a 0.00 yuan reminder); so does one given up on (nothing is left to try, and a
# message not owed any more is cancelled, not lost).
_RETRY = sql(
    "UPDATE notifier.messages m SET "
    "status = CASE WHEN m.pending_reason IS NULL THEN 'pending' ELSE 'cancelled' END, "
    f"last_error = v.error, status_reason = coalesce(m.pending_reason, {_noted('m')}), "
    "next_attempt_at = CASE WHEN m.pending_reason IS NULL THEN v.next_at END, "
    f"{_apply_pending('m')} "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:errors AS text[]), "
    "  CAST(:next_ats AS timestamptz[])) AS v(id, attempts, error, next_at) "
    "WHERE m.message_id = v.id AND m.status = 'sending' AND m.attempts = v.attempts "
    "RETURNING m.status, m.source_id, m.template"
)
_DEAD = sql(
    "UPDATE notifier.messages m SET "
    "status = CASE WHEN m.pending_reason IS NULL THEN 'dead_lettered' ELSE 'cancelled' END, "
    "last_error = v.error, status_reason = coalesce(m.pending_reason, "
    "  'gave up after ' || m.attempts || ' attempts: ' || v.error), "
    f"{_apply_pending('m')} "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:errors AS text[])) "
    "  AS v(id, attempts, error) "
    "WHERE m.message_id = v.id AND m.status = 'sending' AND m.attempts = v.attempts "
    "RETURNING m.status, m.source_id, m.template"
)
# A receipt and the submit it overtakes meet under one lock: without it each transaction may
# run before the other commits, the receipt finds the message still 'sending' and the submit
# finds no receipt yet, and the message stays 'submitted' for ever (credit-control waits for
# a suspension warning's delivery). Taken by both, per batch, held to the commit. The
# consumer takes it too before it locks 'sending' rows to give them a pending revision
# (waiting_to_revise): the recording locks its batch's rows in no particular order, so
# without one lock first the two could each hold a row the other waits for. (The key keeps
# its first name, so processes of both versions share it during a rolling deploy.)
_RECORD_LOCK = sql("SELECT pg_advisory_xact_lock(hashtext('notifier.receipts'))")


async def record_submitted(
    conn: AsyncConnection, at: datetime, done: Sequence[tuple[str, int, str]],
    touched: list[tuple[str, str]] | None = None,
) -> int:
    if not done:
        return 0
    await conn.execute(_RECORD_LOCK)
    rows = (await conn.execute(_SUBMITTED, {
        "at": at, "ids": [d[0] for d in done], "attempts": [d[1] for d in done],
        "pids": [d[2] for d in done]})).all()
    count_sms(conn, [r.status for r in rows])
    _touch(touched, rows)
    return len(rows)


async def record_retry(
    conn: AsyncConnection, at: datetime, retry: Sequence[tuple[str, int, str, datetime]],
    touched: list[tuple[str, str]] | None = None,
) -> None:
    """Back to pending with their next attempt, each with the revision it was given while
    its submit was out (`at`: when); cancelled instead if that was a cancellation."""
    if retry:
        await conn.execute(_RECORD_LOCK)  # held already if anything was submitted
        moved = (await conn.execute(_RETRY, {"at": at, "ids": [r[0] for r in retry],
                                             "attempts": [r[1] for r in retry],
                                             "errors": [r[2] for r in retry],
                                             "next_ats": [r[3] for r in retry]})).all()
        count_sms(conn, ["retry" if r.status == "pending" else r.status for r in moved])
        _touch(touched, (r for r in moved if r.status == "cancelled"))


async def record_dead(conn: AsyncConnection, at: datetime, dead: Sequence[tuple[str, int, str]],
                      touched: list[tuple[str, str]] | None = None) -> None:
    if dead:
        await conn.execute(_RECORD_LOCK)
        gone = (await conn.execute(_DEAD, {"at": at, "ids": [d[0] for d in dead],
                                           "attempts": [d[1] for d in dead],
                                           "errors": [d[2] for d in dead]})).all()
        count_sms(conn, [r.status for r in gone])
        _touch(touched, gone)


# --- receipts ---------------------------------------------------------------------------

_STORE_RECEIPTS = sql(
    "INSERT INTO notifier.receipts (provider_message_id, status, error, receipt_at) "
    "SELECT * FROM unnest(CAST(:pids AS text[]), CAST(:statuses AS text[]), "
    "  CAST(:errors AS text[]), CAST(:ats AS timestamptz[])) "
    "ON CONFLICT (provider_message_id) DO NOTHING"
)
_APPLY_RECEIPTS = sql(
    "UPDATE notifier.messages m SET status = v.status, receipt_status = v.status, "
    "delivered_at = CASE WHEN v.status = 'delivered' THEN v.at END, "
    "status_reason = coalesce(v.error, m.status_reason) "
    "FROM unnest(CAST(:pids AS text[]), CAST(:statuses AS text[]), CAST(:errors AS text[]), "
    "  CAST(:ats AS timestamptz[])) AS v(pid, status, error, at) "
    "WHERE m.provider_message_id = v.pid AND m.status = 'submitted' "
    "RETURNING m.status, m.source_id, m.template"
)


async def apply_receipts(conn: AsyncConnection, receipts: Sequence[Receipt],
                         touched: list[tuple[str, str]] | None = None) -> int:
    """Store the receipts (the first per message wins) and move the messages they name."""
    if not receipts:
        return 0
    params = {"pids": [r.provider_message_id for r in receipts],
              "statuses": [r.status for r in receipts], "errors": [r.error for r in receipts],
              "ats": [r.at for r in receipts]}
    await conn.execute(_RECORD_LOCK)
    await conn.execute(_STORE_RECEIPTS, params)
    rows = (await conn.execute(_APPLY_RECEIPTS, params)).all()
    count_sms(conn, [r.status for r in rows])
    _touch(touched, rows)
    return len(rows)


# --- reading ----------------------------------------------------------------------------

# The log shows every column but the fields a text was rendered from (the text says them)
# and a revision pending while a submit is out (applied or dropped within the SMSC's answer
# time; the text shows it once applied).
LOG_FIELDS = [c for c in t.messages.c
              if c.name != "fields" and not c.name.startswith("pending_")]
LOG_COLUMNS = {"product_id": t.messages.c.product_id, "recipient": t.messages.c.recipient,
               "type": t.messages.c.template, "status": t.messages.c.status,
               "trigger": t.messages.c.trigger, "source_id": t.messages.c.source_id}


async def list_messages(
    conn: AsyncConnection, filters: dict[str, str | None], limit: int,
    after: str | None = None, newest: bool = False,
) -> list[dict[str, Any]] | None:
    """The log, oldest first, in pages of `limit`: the first page, or the one after message
    `after` (the last of the page before; None when there is no such message), or with
    `newest` the last page (a big bill run's log is reached from its end too)."""
    m = t.messages
    order = (m.c.created_at, m.c.message_id)
    query = (select(*LOG_FIELDS)
             .order_by(*(c.desc() for c in order) if newest else order).limit(limit))
    for name, value in filters.items():
        if value is not None:
            query = query.where(LOG_COLUMNS[name] == value)
    if after is not None:
        mark = (await conn.execute(select(*order).where(m.c.message_id == after))).first()
        if mark is None:
            return None
        query = query.where(tuple_(*order) > tuple_(*mark))
    rows = [dict(r._mapping) for r in await conn.execute(query)]
    return rows[::-1] if newest else rows


async def smsc_received(
    conn: AsyncConnection, recipient: str | None, limit: int
) -> list[dict[str, Any]]:
    s, m = t.smsc_received, t.messages
    # The recipient's name rides along so an answer masked for a read-only caller can mask it
    # in the text too (client_ref is the message id).
    # The newest `limit`, oldest first: a busy number's first thousand messages are not what
    # anyone looking at it wants to see.
    query = (select(s, m.c.recipient_name)
             .join(m, m.c.message_id == s.c.client_ref, isouter=True)
             .order_by(s.c.received_at.desc(), s.c.smsc_message_id.desc()).limit(limit))
    if recipient is not None:
        query = query.where(s.c.recipient == recipient)
    return [dict(r._mapping) for r in await conn.execute(query)][::-1]


async def reminder_counts(
    conn: AsyncConnection, bill_month: str, deadline: timedelta
) -> tuple[int, int]:
    """(decisions, timely): per arrears decision, did any group contact get it in time?"""
    m = t.messages
    per_decision = (
        select(func.bool_or(m.c.delivered_at.is_not(None)
                            & (m.c.delivered_at <= m.c.decided_at + deadline)).label("timely"))
        .where(m.c.reminder, m.c.bill_month == bill_month)
        .group_by(m.c.source_id).subquery()
    )
    row = (await conn.execute(select(
        func.count(), func.count().filter(per_decision.c.timely)).select_from(per_decision)
    )).one()
    return int(row[0]), int(row[1])


# --- notice outcomes (domain/outcomes.py) ------------------------------------------------

_NOTICE_MESSAGES = sql(
    "SELECT source_id, min(product_id) AS product_id, "
    "  min(account_id) AS account_id, min(template) AS template, "
    "  min(decision_as_of) AS decision_as_of, min(decided_at) AS decided_at, "
    "  count(*) AS total, min(submitted_at) AS sent_at, min(delivered_at) AS delivered_at, "
    "  count(*) FILTER (WHERE status IN ('rejected', 'dead_lettered', 'undeliverable')) "
    "    AS failed, "
    "  count(*) FILTER (WHERE status = 'undeliverable') AS undeliverable, "
    "  count(*) FILTER (WHERE status = 'cancelled') AS cancelled, "
    "  COALESCE(string_agg(DISTINCT status_reason, '; ') FILTER (WHERE status IN "
    "    ('rejected', 'dead_lettered', 'undeliverable', 'cancelled')), '') AS reasons "
    "FROM notifier.messages WHERE source_id = ANY(CAST(:ids AS text[])) "
    "  AND role = 'group_contact' AND template = ANY(CAST(:templates AS text[])) "
    "GROUP BY source_id ORDER BY source_id"
)


async def notice_messages(
    conn: AsyncConnection, decision_ids: Sequence[str], templates: Sequence[str]
) -> list[Any]:
    return list((await conn.execute(_NOTICE_MESSAGES, {
        "ids": list(decision_ids), "templates": list(templates)})).all())


_CLAIM_OUTCOMES = sql(
    "INSERT INTO notifier.notice_outcomes (decision_id, status, product_id, template, at, "
    "  wall_at, reason) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), "
    "  CAST(:products AS text[]), CAST(:templates AS text[]), CAST(:ats AS timestamptz[]), "
    "  CAST(:walls AS timestamptz[]), CAST(:reasons AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING decision_id, status"
)


async def claim_outcomes(
    conn: AsyncConnection, rows: Sequence[tuple[str, str, str, str, datetime, datetime, str]]
) -> set[tuple[str, str]]:
    """(decision, status) of the outcomes not published before: each goes out once."""
    if not rows:
        return set()
    new = await conn.execute(_CLAIM_OUTCOMES, {
        "ids": [r[0] for r in rows], "statuses": [r[1] for r in rows],
        "products": [r[2] for r in rows], "templates": [r[3] for r in rows],
        "ats": [r[4] for r in rows], "walls": [r[5] for r in rows],
        "reasons": [r[6] for r in rows]})
    return {(r.decision_id, r.status) for r in new}


# The notices whose receipt may be overdue: a followed template's group-contact message
# accepted before the cutoff and still without a receipt (ix_messages_awaiting_receipt), whose
# notice has no final outcome yet. The cutoff is wall time, looser than the business-time
# rule (domain/outcomes.py `receipt_overdue`), which decides.
_AWAITING_RECEIPT = sql(
    "SELECT DISTINCT m.source_id, m.template FROM notifier.messages m "
    "WHERE m.status = 'submitted' AND m.submitted_at <= :cutoff "
    "  AND m.role = 'group_contact' AND m.template = ANY(CAST(:templates AS text[])) "
    "  AND m.source_id LIKE 'decision:%' "
    "  AND NOT EXISTS (SELECT 1 FROM notifier.notice_outcomes o "
    "    WHERE o.decision_id = substr(m.source_id, 10) "
    "      AND o.status IN ('delivered', 'failed', 'cancelled')) "
    "ORDER BY m.source_id LIMIT :limit"
)


async def awaiting_receipt(conn: AsyncConnection, cutoff: datetime, templates: Sequence[str],
                           limit: int) -> list[tuple[str, str]]:
    """(source id, template) of notices accepted before `cutoff` (wall) still unheard of."""
    rows = await conn.execute(_AWAITING_RECEIPT, {
        "cutoff": cutoff, "templates": list(templates), "limit": limit})
    return [(r.source_id, r.template) for r in rows]
