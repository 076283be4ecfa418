"""Collections worklists (欠费催缴): refresh the call and visit lists as of a moment, record
contact attempts with a promised payment date or a refusal reason, classify the arrears
cause, and the monthly cause analysis. Rules in domain.collections; SQL in worklist_sql."""

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row

from common.clock import business_date, ensure_aware
from common.errors import NotFound, Unprocessable
from common.idempotency import StoredResponse, run_once

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from ..adapters import worklist_sql as sql
from ..domain.collections import (
    ArrearsCause,
    Attempt,
    EntryStatus,
    Outcome,
    WorklistError,
    WorklistKind,
    WorklistRules,
    after_attempt,
    bp_text,
    cause_analysis,
)
from ..domain.worklist_commands import AttemptRequest, ClassifyCause, RecordAttempt

log = logging.getLogger(__name__)


def rules_of(ctx: CreditContext) -> WorklistRules:
    s = ctx.settings
    return WorklistRules(call_threshold_fen=s.worklist_call_threshold_fen,
                         visit_from_day=s.worklist_visit_from_day)


# How far ahead of the service's clock a staff-given moment may be (clocks drift a little). A
# later one would stamp entries in the future: a refresh's `refreshed_at` then keeps every
# daily refresh from updating them, and the lists would show entries opened on a day to come.
MAX_AHEAD = timedelta(minutes=5)


def not_ahead(ctx: CreditContext, at: datetime, field: str) -> datetime:
    """`at` (made aware), or 422 if it is later than the service's clock plus `MAX_AHEAD`."""
    at = ensure_aware(at)
    now = ctx.clock.now()
    if at > now + MAX_AHEAD:
        raise Unprocessable(f"{field} {at.isoformat()} is in the future: at most "
                            f"{int(MAX_AHEAD.total_seconds() // 60)} minutes after the "
                            "service's clock", field=field, now=now.isoformat())
    return at


async def refresh(ctx: CreditContext, as_of: datetime) -> dict[str, Any]:
    """One transaction; re-running it for the same moment adds and changes nothing."""
    as_of = not_ahead(ctx, as_of, "as_of")
    today = business_date(as_of)
    async with ctx.engine.begin() as conn:
        counts = await sql.refresh(conn, rules_of(ctx), as_of, today)
    log.info("worklists refreshed as of %s: %s", as_of.isoformat(), counts)
    return {"as_of": as_of.isoformat(), "business_date": today.isoformat(), **counts}


# --- reading ---------------------------------------------------------------------------------

def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def entry_json(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    """An entry as plain JSON (also what an attempt id's stored answer holds)."""
    r = row if isinstance(row, dict) else dict(row._mapping)
    customer = r["customer"]
    cause = r["cause"]
    return {
        "entry_id": r["entry_id"], "kind": r["kind"], "kind_label": WorklistKind(r["kind"]).label,
        "account_id": r["account_id"], "bill_month": f"{r['bill_month']:%Y-%m}",
        "customer_id": r["customer_id"], "customer_name": customer.get("name"),
        "tier": customer.get("tier"), "manager_name": r["manager"],
        "manager_phone": (customer.get("account_manager") or {}).get("phone"),
        "contacts": customer.get("contacts", []),
        "status": r["status"], "arrears_fen": r["arrears_fen"],
        "oldest_month": f"{r['oldest_month']:%Y-%m}", "months": r["months"], "dues": r["dues"],
        "opened_on": _iso(r["opened_on"]), "refreshed_at": _iso(r["refreshed_at"]),
        "attempts": r["attempts"], "last_attempt": r["last_attempt"],
        "promised_date": _iso(r["promised_date"]), "refusal_reason": r["refusal_reason"],
        "cause": cause, "cause_label": ArrearsCause(cause).label if cause else None,
        "cause_note": r["cause_note"], "cause_by": r["cause_by"], "cause_at": _iso(r["cause_at"]),
        "closed_at": _iso(r["closed_at"]), "closed_reason": r["closed_reason"],
        "reopened": r["reopened"],
    }


def attempt_json(r: dict[str, Any]) -> dict[str, Any]:
    return {"attempt_id": r["attempt_id"], "entry_id": r["entry_id"], "at": _iso(r["at"]),
            "channel": r["channel"], "outcome": r["outcome"], "by": r["by"], "note": r["note"],
            "promised_date": _iso(r["promised_date"]), "refusal_reason": r["refusal_reason"],
            "status_after": r["status_after"]}


def statuses_for(status: str | None) -> list[str] | None:
    """`active` (the default) → the four working statuses; `all` → no filter."""
    if status in (None, "", "active"):
        return sorted(s.value for s in EntryStatus if s not in (EntryStatus.PAID,
                                                                 EntryStatus.CLOSED))
    if status == "all":
        return None
    try:
        return [EntryStatus(status).value]
    except ValueError:
        raise Unprocessable(f"unknown status {status!r}", allowed=[
            "active", "all", *(s.value for s in EntryStatus)]) from None


async def list_entries(ctx: CreditContext, kind: WorklistKind | None, manager: str | None,
                       status: str | None, as_of: datetime | None, account_id: str | None,
                       limit: int) -> list[dict[str, Any]]:
    statuses = statuses_for(status)
    async with ctx.engine.connect() as conn:
        rows = await sql.entries(conn, kind.value if kind else None, manager, statuses,
                                 ensure_aware(as_of) if as_of else None, account_id, limit)
    return [entry_json(r) for r in rows]


async def get_entry(ctx: CreditContext, entry_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await sql.entry(conn, entry_id)
        if row is None:
            raise NotFound(f"no worklist entry {entry_id!r}", id=entry_id)
        attempts = await sql.attempts(conn, entry_id)
    return {**entry_json(row), "attempt_log": [attempt_json(a) for a in attempts]}


# --- writing ---------------------------------------------------------------------------------

async def record_attempt(ctx: CreditContext, entry_id: str, cmd: RecordAttempt,
                         who: str) -> StoredResponse:
    """Record a contact attempt and move the entry; the same attempt id again returns the
    first answer, and a bad one writes nothing (the key is reserved in this transaction)."""
    at = not_ahead(ctx, cmd.at, "at") if cmd.at else ctx.clock.now()
    async with ctx.engine.begin() as conn:
        async def work() -> dict[str, Any]:
            row = await sql.entry(conn, entry_id, lock=True)
            if row is None:
                raise NotFound(f"no worklist entry {entry_id!r}", id=entry_id)
            try:
                attempt = Attempt(business_date(at), cmd.channel, cmd.outcome, cmd.promised_date,
                                  cmd.refusal_reason, cmd.note,
                                  promise_horizon_days=ctx.settings.promise_admin_max_days)
                status = after_attempt(EntryStatus(row.status), attempt)
            except WorklistError as e:
                named = {"field": "promised_date"} if "promised_date" in str(e) else {}
                raise Unprocessable(str(e), id=entry_id, status=row.status, **named) from None
            return await _write_attempt(ctx, conn, row, cmd, attempt, status, at, who)

        return await run_once(ctx.keys, conn, "worklist_attempt", cmd.attempt_id,
                              AttemptRequest(entry_id=entry_id, attempt=cmd), work)


async def _write_attempt(ctx: CreditContext, conn: Any, row: Row[Any], cmd: RecordAttempt,
                         attempt: Attempt, status: EntryStatus, at: datetime,
                         who: str) -> dict[str, Any]:
    values = {"attempt_id": cmd.attempt_id, "entry_id": row.entry_id, "at": at,
              "channel": cmd.channel.value, "outcome": cmd.outcome.value, "by": who,
              "note": cmd.note, "promised_date": cmd.promised_date,
              "refusal_reason": cmd.refusal_reason, "status_after": status.value,
              "created_at": ctx.clock.now()}
    await sql.insert_attempt(conn, values)
    last = attempt_json(values)
    changes: dict[str, Any] = {"status": status.value, "attempts": row.attempts + 1,
                               "last_attempt": last}
    if attempt.outcome is Outcome.PROMISED:
        changes.update(promised_date=attempt.promised_date, refusal_reason=None)
    elif attempt.outcome is Outcome.REFUSED:
        changes.update(refusal_reason=attempt.refusal_reason, promised_date=None)
    elif attempt.outcome is Outcome.CLOSE:
        changes.update(closed_at=at, closed_reason=f"closed by {who}: {attempt.note}")
    await sql.update_entry(conn, row.entry_id, **changes)
    entry = {**dict(row._mapping), **changes}
    return {"attempt": last, "entry": entry_json(entry)}


async def classify(ctx: CreditContext, entry_id: str, cmd: ClassifyCause,
                   who: str) -> dict[str, Any]:
    """Set (or correct) the arrears cause; setting the same cause again changes nothing."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await sql.entry(conn, entry_id, lock=True)
        if row is None:
            raise NotFound(f"no worklist entry {entry_id!r}", id=entry_id)
        if (row.cause, row.cause_note or "") != (cmd.cause.value, cmd.note):
            changes = {"cause": cmd.cause.value, "cause_note": cmd.note, "cause_by": who,
                       "cause_at": now}
            await sql.update_entry(conn, entry_id, **changes)
            await admin_repo.audit(conn, now, who, "worklist_entry", entry_id, "classify_cause",
                                   {"cause": row.cause, "note": row.cause_note},
                                   {"cause": cmd.cause.value, "note": cmd.note})
            row = await sql.entry(conn, entry_id)
            assert row is not None
    return entry_json(row)


# --- the monthly cause analysis and the dashboard's summary ----------------------------------

async def cause_report(ctx: CreditContext, month: date) -> dict[str, Any]:
    """欠费原因分析 for one bill month: amount per cause, share and cumulative share, largest
    first (the seed's Pareto table); arrears not yet classified are reported beside it."""
    async with ctx.engine.connect() as conn:
        rows = await sql.cause_amounts(conn, month)
    amounts = {ArrearsCause(r.cause): (int(r.fen), int(r.accounts)) for r in rows if r.cause}
    unclassified = next(((int(r.fen), int(r.accounts)) for r in rows if not r.cause), (0, 0))
    analysis = cause_analysis(amounts)
    return {
        "month": f"{month:%Y-%m}",
        "rows": [{"cause": r.cause.value, "label": r.label, "amount_fen": r.amount_fen,
                  "accounts": r.accounts, "share_bp": r.share_bp,
                  "share_pct": bp_text(r.share_bp), "cumulative_bp": r.cumulative_bp,
                  "cumulative_pct": bp_text(r.cumulative_bp)} for r in analysis.rows],
        "total_fen": analysis.total_fen,
        "unclassified": {"amount_fen": unclassified[0], "accounts": unclassified[1]},
    }


async def worklist_summary(ctx: CreditContext, as_of: datetime, top: int = 10) -> dict[str, Any]:
    """For the dashboard: entries on the lists at `as_of` counted per kind and status (the
    status is the current one), the active arrears per kind, promises past their date, and
    the `top` active entries by arrears."""
    as_of = ensure_aware(as_of)
    day = business_date(as_of)
    async with ctx.engine.connect() as conn:
        counted = await sql.counts(conn, as_of, day)
        broken = await sql.broken_promises(conn, day)
        biggest = await sql.entries(conn, None, None, statuses_for("active"), as_of, None, top)
    counts = {k.value: {s.value: 0 for s in EntryStatus} for k in WorklistKind}
    active = {k.value: {"entries": 0, "arrears_fen": 0} for k in WorklistKind}
    for r in counted:
        counts[r.kind][r.status] = int(r.n)
        if r.status not in (EntryStatus.PAID, EntryStatus.CLOSED):
            active[r.kind]["entries"] += int(r.n)
            active[r.kind]["arrears_fen"] += int(r.fen)
    return {
        "as_of": as_of.isoformat(), "counts": counts, "active": active,
        "broken_promises": broken,
        "top": [{k: e[k] for k in ("entry_id", "kind", "account_id", "customer_id",
                                   "customer_name", "manager_name", "arrears_fen", "oldest_month",
                                   "months", "status", "attempts", "last_attempt",
                                   "promised_date", "cause")}
                for e in map(entry_json, biggest)],
    }
