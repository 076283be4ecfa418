"""Promises to pay (承诺缴费) on a worklist entry: recorded within the policy's limits
(audited, idempotent), checked daily (kept: the entry closes; broken: the ladder resumes),
and reported per account manager. What a promise holds back is the sweep's and the balance
path's business (credit/adapters/sweep_sql.py `_PROMISES_SQL`, `ProductFacts.promised`)."""

import logging
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from common.auth import Principal, Role
from common.clock import business_date, ensure_aware
from common.contracts.credit_control import SuspensionDeferred
from common.errors import Conflict, NotFound, Unprocessable
from common.idempotency import StoredResponse, run_once

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext, publish
from ..adapters import case_sql, worklist_sql
from ..adapters import promise_sql as sql
from ..domain import promises as domain
from ..domain.promise_commands import PromiseRequest, RecordPromise
from ..domain.promises import PromisePolicy, PromiseStatus
from .collections import not_ahead

log = logging.getLogger(__name__)
_ACTIVE = ("open", "contacted", "promised", "refused")


def policy(ctx: CreditContext) -> PromisePolicy:
    s = ctx.settings
    return PromisePolicy(s.promise_max_days, s.promise_admin_max_days, s.promise_per_year,
                         s.promise_max_instalments)


async def record(ctx: CreditContext, entry_id: str, cmd: RecordPromise,
                 caller: Principal) -> StoredResponse:
    """201 with the promise; the same id and body again answer it again, another body 409.
    Refused (4xx, nothing written, the key released with the transaction) as
    domain.problems says, or when the account has an open promise or its year's quota."""
    at = not_ahead(ctx, cmd.at, "at") if cmd.at else ctx.clock.now()
    async with ctx.engine.begin() as conn:
        async def work() -> dict[str, Any]:
            return await _record(ctx, conn, entry_id, cmd, caller, at)

        return await run_once(ctx.keys, conn, "promise", cmd.promise_id,
                              PromiseRequest(entry_id=entry_id, promise=cmd), work)


async def _record(ctx: CreditContext, conn: AsyncConnection, entry_id: str,
                  cmd: RecordPromise, caller: Principal, at: datetime) -> dict[str, Any]:
    entry = await worklist_sql.entry(conn, entry_id, lock=True)
    if entry is None:
        raise NotFound(f"no worklist entry {entry_id!r}", id=entry_id)
    if entry.status not in _ACTIVE:
        raise Unprocessable(f"entry {entry_id} is {entry.status}: no promise on it",
                            id=entry_id, status=entry.status)
    await sql.lock_account(conn, entry.account_id)
    today, pol = business_date(at), policy(ctx)
    covered = max((d["bill_month"] for d in entry.dues),
                  default=entry.oldest_month.strftime("%Y-%m"))
    baseline = sum(f for m, f in await sql.dues(conn, entry.account_id) if m <= covered and f > 0)
    parts = [(i.due_on, i.amount_fen) for i in cmd.instalments]
    admin = caller.may(Role.CREDIT_ADMIN)
    found = domain.problems(pol, today, cmd.promised_date, cmd.amount_fen, parts, baseline,
                            admin)
    if found:
        raise Unprocessable("the promise cannot be recorded: " + "; ".join(found.values()),
                            problems=found)
    await _quota(conn, entry.account_id, today, pol)
    steps = domain.schedule(cmd.promised_date, cmd.amount_fen, parts)
    beyond = (cmd.promised_date - today).days > pol.max_days
    values = {
        "promise_id": cmd.promise_id, "entry_id": entry_id, "account_id": entry.account_id,
        "customer_id": entry.customer_id, "manager": entry.manager, "status": "open",
        "promised_date": cmd.promised_date, "amount_fen": cmd.amount_fen,
        "schedule": sql.schedule_json(steps), "instalments": bool(parts),
        "covered_through": covered, "baseline_fen": baseline, "recorded_by": caller.subject,
        "recorded_role": caller.role.value, "approved_by": caller.subject if beyond else None,
        "reason": cmd.reason, "note": cmd.note, "recorded_at": at, "recorded_on": today,
        "created_at": ctx.clock.now(), "request": orjson.dumps(cmd.model_dump(mode="json"))
        .decode()}
    await sql.insert(conn, values)
    await sql.mark_entry_promised(conn, entry_id, steps[0].due_on)
    await _announce_deferral(ctx, conn, entry.account_id, cmd.promise_id, at,
                             cmd.promised_date)
    await admin_repo.audit(conn, values["created_at"], caller.subject, "promise",
                           cmd.promise_id, "record", None,
                           {**cmd.model_dump(mode="json"), "entry_id": entry_id,
                            "account_id": entry.account_id, "baseline_fen": baseline,
                            "approved_by": values["approved_by"]})
    return promise_json(await sql.get(conn, cmd.promise_id))


async def _announce_deferral(ctx: CreditContext, conn: AsyncConnection, account_id: str,
                             promise_id: str, at: datetime, promised_date: date) -> None:
    """Each suspension-warned product of the account: its suspension is deferred
    (`credit.suspension_deferred`), so the notifier does not send a suspension warning still
    waiting (held by the quiet hours) that names a date no suspension will follow on
    (docs/notifier.md "No empty threats"). Its own transaction's outbox: told only if the
    promise is recorded."""
    for p in await case_sql.account_products(conn, account_id, ["suspension_warned"]):
        await publish(ctx, conn, account_id, SuspensionDeferred(
            account_id=account_id, product_id=p.product_id, promise_id=promise_id, as_of=at,
            promised_date=promised_date))


async def _quota(conn: AsyncConnection, account_id: str, today: date,
                 pol: PromisePolicy) -> None:
    open_id = await sql.has_open(conn, account_id)
    if open_id is not None:
        raise Conflict(f"account {account_id} has an open promise {open_id}",
                       id=open_id, account_id=account_id)
    made = await sql.count_since(conn, account_id, domain.year_window(today))
    if made >= pol.per_year:
        raise Unprocessable(
            f"account {account_id} made {made} promises in the 365 days to {today}: at most "
            f"{pol.per_year}", field="promise_id", account_id=account_id)


async def check(ctx: CreditContext, as_of: datetime) -> dict[str, Any]:
    """Marks the open promises made by `as_of` kept (paid: the entry closes) or broken (a
    date passed unpaid: the ladder resumes at the next sweep); audited. Idempotent: a closed
    promise is not looked at again. Run before every sweep and on demand."""
    as_of = ensure_aware(as_of)
    today, now = business_date(as_of), ctx.clock.now()
    closed: dict[str, list[str]] = {"kept": [], "broken": []}
    async with ctx.engine.begin() as conn:
        for row, dues in await sql.open_with_dues(conn, as_of):
            p = sql.to_promise(row)
            paid = p.paid_fen((d["bill_month"], int(d["amount_due_fen"])) for d in dues)
            outcome = p.outcome(paid, today)
            if outcome is PromiseStatus.OPEN:
                continue
            await sql.close(conn, p.promise_id, outcome.value, today, as_of, paid)
            await admin_repo.audit(conn, now, ctx.source, "promise", p.promise_id,
                                   outcome.value, None, {"as_of": as_of.isoformat(),
                                                         "paid_fen": paid,
                                                         "manager": row.manager})
            if outcome is PromiseStatus.KEPT:
                await sql.close_entry_kept(conn, row.entry_id, as_of, p.promise_id)
            else:
                # The account manager's notice: the entry stays on their list (status
                # `promised`, a past date: the dashboard's broken promises) and this line.
                log.warning("promise %s of account %s (manager %s) broken as of %s: %d of %d "
                            "fen paid; the suspension ladder resumes", p.promise_id,
                            p.account_id, row.manager, today, paid, p.amount_fen)
            closed[outcome.value].append(p.promise_id)
    return {"as_of": as_of.isoformat(), "business_date": today.isoformat(), **closed}


async def get(ctx: CreditContext, promise_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await sql.get(conn, promise_id)
        if row is None:
            raise NotFound(f"no promise {promise_id!r}", id=promise_id)
        dues = await sql.dues(conn, row.account_id)
    p = sql.to_promise(row)
    paid = p.paid_fen(dues)
    return {**promise_json(row), "paid_fen_now": paid,
            "deferred_until": (None if p.status is not PromiseStatus.OPEN else
                               _iso(p.deferred_until(paid)))}


async def listed(ctx: CreditContext, status: str | None, manager: str | None,
                 account_id: str | None, entry_id: str | None,
                 limit: int) -> list[dict[str, Any]]:
    if status is not None and status not in {s.value for s in PromiseStatus}:
        raise Unprocessable(f"unknown status {status!r}", field="status")
    async with ctx.engine.connect() as conn:
        rows = await sql.listed(conn, status, manager, account_id, entry_id, limit)
    return [promise_json(r) for r in rows]


async def report(ctx: CreditContext, since: date, until: date) -> dict[str, Any]:
    """Promises made in [since, until] per account manager: made, kept, broken, open."""
    if until < since:
        raise Unprocessable("`to` is before `from`", field="to")
    async with ctx.engine.connect() as conn:
        rows = [dict(r._mapping) for r in await sql.report(conn, since, until)]
    total = {k: sum(r[k] for r in rows) for k in ("made", "kept", "broken", "open",
                                                   "promised_fen", "kept_fen")}
    return {"from": since.isoformat(), "to": until.isoformat(),
            "rows": [{"manager_name": r.pop("manager"), **r} for r in rows], "total": total}


def _iso(d: date | datetime | None) -> str | None:
    return None if d is None else d.isoformat()


def promise_json(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    return {"promise_id": m["promise_id"], "entry_id": m["entry_id"],
            "account_id": m["account_id"], "customer_id": m["customer_id"],
            "manager_name": m["manager"], "status": m["status"],
            "promised_date": _iso(m["promised_date"]), "amount_fen": m["amount_fen"],
            "instalments": m["schedule"] if m["instalments"] else [],
            "covered_through": m["covered_through"], "baseline_fen": m["baseline_fen"],
            "recorded_by": m["recorded_by"], "recorded_role": m["recorded_role"],
            "approved_by": m["approved_by"], "reason": m["reason"], "note": m["note"],
            "recorded_at": _iso(m["recorded_at"]), "recorded_on": _iso(m["recorded_on"]),
            "closed_on": _iso(m["closed_on"]), "paid_fen": m["paid_fen"]}
