"""notifier's SQL: set-wise statements, a few per batch of messages, never one per message."""

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

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


_MESSAGE_TYPES = {
    "segments": "int", "template_version": "int", "reminder": "boolean",
    "next_attempt_at": "timestamptz", "decided_at": "timestamptz",
}
_MESSAGE_COLUMNS = [f.name for f in fields(MessageColumns)]
# One statement per batch, whatever its size: arrays bind as 18 parameters, where a
# multi-row VALUES would bind 18 per message and be rendered anew for every batch size.
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


# --- sending ----------------------------------------------------------------------------

_CLAIM = sql(
    "UPDATE notifier.messages m SET status = 'sending', attempts = m.attempts + 1, "
    "claimed_at = :at "
    "WHERE m.message_id IN (SELECT message_id FROM notifier.messages "
    f"  WHERE {t.IN_SEND_QUEUE} AND role = ANY(CAST(:roles AS text[])) AND ("
    "    (status IN ('pending', 'held') AND (next_attempt_at IS NULL OR next_attempt_at <= :at))"
    "    OR (status = 'sending' AND claimed_at < :stale)) "
    "  ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "RETURNING m.message_id, m.recipient, m.text, m.segments, m.attempts, m.created_at"
)


async def claim_batch(
    conn: AsyncConnection, at: datetime, roles: list[str], limit: int, claim_timeout_s: float,
) -> list[Any]:
    rows = (await conn.execute(_CLAIM, {
        "at": at, "roles": roles, "limit": limit,
        "stale": at - timedelta(seconds=claim_timeout_s)})).all()
    # RETURNING has no order; keep a recipient's notices in the order they were created.
    return sorted(rows, key=lambda r: (r.created_at, r.message_id))


# `attempts` fences each outcome to its claim: if this sender was slower than the claim
# timeout and another claimed the row again, the stale outcome must not overwrite the newer.
# A receipt that arrived before the submit was recorded (crash in between) is applied in
# the same statement: one write per message.
_SUBMITTED = sql(
    "UPDATE notifier.messages m SET provider_message_id = v.pid, submitted_at = :at, "
    "next_attempt_at = NULL, status = coalesce(r.status, 'submitted'), "
    "receipt_status = coalesce(r.status, m.receipt_status), "
    "delivered_at = CASE WHEN r.status = 'delivered' THEN r.receipt_at ELSE m.delivered_at END, "
    "status_reason = coalesce(r.error, m.status_reason) "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:pids AS text[])) "
    "  AS v(id, attempts, pid) "
    "LEFT JOIN notifier.receipts r ON r.provider_message_id = v.pid "
    "WHERE m.message_id = v.id AND m.status = 'sending' AND m.attempts = v.attempts "
    "RETURNING m.status"
)
_RETRY = sql(
    "UPDATE notifier.messages m SET status = 'pending', last_error = v.error, "
    "next_attempt_at = v.next_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:errors AS text[]), "
    "  CAST(:next_ats AS timestamptz[])) AS v(id, attempts, error, next_at) "
    "WHERE m.message_id = v.id AND m.status = 'sending' AND m.attempts = v.attempts"
)
_DEAD = sql(
    "UPDATE notifier.messages m SET status = 'dead_lettered', last_error = v.error, "
    "status_reason = 'gave up after ' || m.attempts || ' attempts: ' || v.error "
    "FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:errors AS text[])) "
    "  AS v(id, attempts, error) "
    "WHERE m.message_id = v.id AND m.status = 'sending' AND m.attempts = v.attempts "
    "RETURNING m.status"
)
async def record_submitted(
    conn: AsyncConnection, at: datetime, done: Sequence[tuple[str, int, str]]
) -> int:
    if not done:
        return 0
    statuses = list((await conn.execute(_SUBMITTED, {
        "at": at, "ids": [d[0] for d in done], "attempts": [d[1] for d in done],
        "pids": [d[2] for d in done]})).scalars())
    count_sms(conn, statuses)
    return len(statuses)


async def record_retry(
    conn: AsyncConnection, retry: Sequence[tuple[str, int, str, datetime]]
) -> None:
    if retry:
        moved = await conn.execute(_RETRY, {"ids": [r[0] for r in retry],
                                            "attempts": [r[1] for r in retry],
                                            "errors": [r[2] for r in retry],
                                            "next_ats": [r[3] for r in retry]})
        count_sms(conn, ["retry"] * moved.rowcount)


async def record_dead(conn: AsyncConnection, dead: Sequence[tuple[str, int, str]]) -> None:
    if dead:
        gone = await conn.execute(_DEAD, {"ids": [d[0] for d in dead],
                                          "attempts": [d[1] for d in dead],
                                          "errors": [d[2] for d in dead]})
        count_sms(conn, gone.scalars())


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
    "RETURNING m.status"
)


async def apply_receipts(conn: AsyncConnection, receipts: Sequence[Receipt]) -> int:
    """Store the receipts (the first per message wins) and move the messages they name."""
    if not receipts:
        return 0
    params = {"pids": [r.provider_message_id for r in receipts],
              "statuses": [r.status for r in receipts], "errors": [r.error for r in receipts],
              "ats": [r.at for r in receipts]}
    await conn.execute(_STORE_RECEIPTS, params)
    statuses = list((await conn.execute(_APPLY_RECEIPTS, params)).scalars())
    count_sms(conn, statuses)
    return len(statuses)


# --- reading ----------------------------------------------------------------------------

LOG_COLUMNS = {"product_id": t.messages.c.product_id, "recipient": t.messages.c.recipient,
               "type": t.messages.c.template, "status": t.messages.c.status,
               "trigger": t.messages.c.trigger}


async def list_messages(
    conn: AsyncConnection, filters: dict[str, str | None], limit: int
) -> list[dict[str, Any]]:
    m = t.messages
    query = select(m).order_by(m.c.created_at, m.c.message_id).limit(limit)
    for name, value in filters.items():
        if value is not None:
            query = query.where(LOG_COLUMNS[name] == value)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def smsc_received(
    conn: AsyncConnection, recipient: str | None, limit: int
) -> list[dict[str, Any]]:
    s, m = t.smsc_received, t.messages
    # The recipient's name rides along so an answer masked for a read-only caller can mask it
    # in the text too (client_ref is the message id).
    query = (select(s, m.c.recipient_name)
             .join(m, m.c.message_id == s.c.client_ref, isouter=True)
             .order_by(s.c.received_at, s.c.smsc_message_id).limit(limit))
    if recipient is not None:
        query = query.where(s.c.recipient == recipient)
    return [dict(r._mapping) for r in await conn.execute(query)]


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
