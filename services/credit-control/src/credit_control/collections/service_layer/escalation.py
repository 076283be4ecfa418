"""Collections escalation (docs/collections.md "Escalation"): open a case per account in
arrears past suspension, move it through the three phases on a schedule (`run(as_of)`,
idempotent), suspend the customer's other products by association once a credit-admin
approved it for the case, disconnect and refer for legal collection in phase 3, and restore
every associated product and close the case when the arrears are paid. Every step is
recorded with its reason (`credit.collection_steps`) and audited."""

import asyncio
import hashlib
import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date, ensure_aware
from common.contracts.credit_control import DecisionType
from common.errors import Conflict, NotFound, Unprocessable
from common.poll_loop import PollLoop

from ...admin.adapters import admin_repository as admin_repo
from ...credit.domain.rules import Intent
from ...service_layer.context import CreditContext
from ..adapters import case_sql as sql
from ..adapters import promise_sql
from ..domain import escalation as domain
from ..domain.escalation import (
    Candidate,
    CaseStatus,
    EscalationError,
    Phase,
    PhasePlan,
    Step,
)
from .product_decisions import decide, exempt

log = logging.getLogger(__name__)
SYSTEM = "collections-scheduler"


def plan_of(ctx: CreditContext) -> PhasePlan:
    s = ctx.settings
    return PhasePlan((s.collections_phase1_days, s.collections_phase2_days,
                      s.collections_phase3_days))


def _step_id(case_id: str, step: Step, key: str) -> str:
    return "CS-" + hashlib.md5(f"{case_id}|{step.value}|{key}".encode()).hexdigest()[:20]


async def _record(conn: AsyncConnection, case_id: str, step: Step, phase: int, reason: str,
                  by: str, at: datetime, key: str = "", product_id: str | None = None,
                  decision_id: str | None = None, details: Any = None) -> bool:
    """One step of the case's log, and its audit entry; a replayed step records nothing."""
    added = await sql.add_step(conn, {
        "step_id": _step_id(case_id, step, key or product_id or ""), "case_id": case_id,
        "step": step.value, "phase": phase, "reason": reason, "by": by, "at": at,
        "product_id": product_id, "decision_id": decision_id, "details": details})
    if added:
        await admin_repo.audit(conn, at, by, "collection_case", case_id, step.value, None,
                               {"phase": phase, "reason": reason, "product_id": product_id,
                                "decision_id": decision_id})
    return added


# --- the scheduled run ---------------------------------------------------------------------

async def run(ctx: CreditContext, as_of: datetime,
              accounts: list[str] | None = None) -> dict[str, Any]:
    """Open, settle and advance, as of `as_of`. Re-running it for the same moment (or an
    older one) opens, moves and decides nothing more. `accounts`: only these (a re-run for
    some accounts, a drill); None: every account (the scheduler)."""
    as_of = ensure_aware(as_of)  # BusinessTime: the bounds of business time were checked
    today = business_date(as_of)
    async with ctx.engine.begin() as conn:
        await sql.lock(conn)
        opened = await sql.open_cases(conn, today, as_of, accounts)
        for row in opened:
            await _record(conn, row.case_id, Step.OPEN, Phase.INVESTIGATE,
                          f"account {row.account_id} in arrears past suspension "
                          f"({row.arrears_fen} fen)", SYSTEM, as_of)
        await sql.update_figures(conn, as_of, accounts)
    settled = await settle(ctx, accounts)
    advanced = await _advance(ctx, as_of, today, accounts)
    log.info("collections run as of %s: opened %d, settled %d, advanced %s",
             as_of.isoformat(), len(opened), len(settled), advanced)
    return {"as_of": as_of.isoformat(), "business_date": today.isoformat(),
            "opened": [r.case_id for r in opened], "settled": settled, "advanced": advanced}


async def _advance(ctx: CreditContext, as_of: datetime, today: date,
                   accounts: list[str] | None) -> dict[str, list[int]]:
    plan, moved = plan_of(ctx), dict[str, list[int]]()
    async with ctx.engine.connect() as conn:
        candidates = await sql.open_to_advance(conn, accounts)
    for case in candidates:
        entered = plan.phases_entered(case.opened_on, Phase(case.phase), today)
        if not entered:
            continue
        async with ctx.engine.begin() as conn:
            await sql.lock(conn)
            fresh = await sql.case(conn, case.case_id, lock=True)
            if fresh is None or fresh.status != CaseStatus.OPEN.value:
                continue
            for phase in entered:
                if await sql.advance_phase(conn, case.case_id, phase):
                    await _enter(ctx, conn, fresh, phase, plan, as_of)
                    moved.setdefault(case.case_id, []).append(int(phase))
    return moved


async def _enter(ctx: CreditContext, conn: AsyncConnection, case: Any, phase: Phase,
                 plan: PhasePlan, as_of: datetime) -> None:
    start = plan.starts(case.opened_on)[phase]
    await _record(conn, case.case_id, Step.PHASE, phase,
                  f"{phase.label}: day {(start - case.opened_on).days + 1} of the case "
                  f"(phases {'/'.join(map(str, plan.days))} days)", SYSTEM, as_of,
                  key=str(int(phase)))
    if phase is Phase.DISCONNECT:
        await _disconnect(ctx, conn, case, start, as_of)


async def _disconnect(ctx: CreditContext, conn: AsyncConnection, case: Any, start: date,
                      as_of: datetime) -> None:
    """拆机 via pre-cancellation of the case account's suspended products, and the referral
    for legal collection (法律清缴). A customer exempt by now is not disconnected."""
    if await exempt(conn, case.customer_id, as_of):
        await _record(conn, case.case_id, Step.DISCONNECTION_SKIPPED, Phase.DISCONNECT,
                      "the customer is on the red list or under emergency no-suspension",
                      SYSTEM, as_of)
    else:
        own = await sql.account_products(conn, case.account_id, ["suspended"])
        held = await sql.held_products(conn, [p.product_id for p in own])
        for p in own:
            if p.product_id in held or p.product_amount_due_fen <= 0:
                continue  # suspended by association, or owing nothing: never disconnected
            done = await decide(ctx, conn, p.product_id, Intent(
                DecisionType.PRE_CANCEL, domain.DISCONNECT_RULE_ID,
                domain.disconnect_reason(case.case_id, start),
                period=f"case:{case.case_id}:disconnect"), as_of, case.case_id)
            if done.decision_id:
                await _record(conn, case.case_id, Step.DISCONNECTION, Phase.DISCONNECT,
                              f"拆机 (pre-cancellation): {done.before} → {done.after}",
                              SYSTEM, as_of, product_id=p.product_id,
                              decision_id=done.decision_id)
    await _record(conn, case.case_id, Step.LEGAL_REFERRAL, Phase.DISCONNECT,
                  f"referred for legal collection (法律清缴): {case.arrears_fen} fen unpaid",
                  SYSTEM, as_of)
    await sql.update_case(conn, case.case_id, legal_referred_on=business_date(as_of))


# --- payment: restore the associations and close -------------------------------------------

async def settle(ctx: CreditContext, accounts: list[str] | None = None) -> list[str]:
    """Every open case whose account owes nothing now: restore each product it suspended by
    association (with the restore notice), and close it as paid. Also the ticker's step."""
    async with ctx.engine.connect() as conn:
        found = await sql.cleared(conn, accounts)
    done = []
    for case in found:
        async with ctx.engine.begin() as conn:
            await sql.lock(conn)
            fresh = await sql.case(conn, case.case_id, lock=True)
            if fresh is None or fresh.status != CaseStatus.OPEN.value:
                continue
            if await sql.arrears(conn, case.account_id) > 0:
                continue  # owed again meanwhile
            at = case.paid_as_of
            await _restore_all(ctx, conn, case, at)
            reason = f"arrears cleared ({case.paid_cause})"
            await _record(conn, case.case_id, Step.CLOSE, case.phase, reason, SYSTEM, at)
            await sql.update_case(conn, case.case_id, status=CaseStatus.PAID.value,
                                  closed_at=at, closed_reason=reason, arrears_fen=0)
            done.append(case.case_id)
    return done


async def _restore_all(ctx: CreditContext, conn: AsyncConnection, case: Any,
                       at: datetime) -> None:
    mine = await sql.associations(conn, case.case_id, "suspended")
    others = await sql.holding_associations(conn, [a["product_id"] for a in mine],
                                            besides=case.case_id)
    for a in mine:
        other = others.get(a["product_id"])
        if other is not None:  # another open case still holds it for its own arrears
            text = f"released: still held by collections case {other['case_id']}"
            await sql.update_association(conn, case.case_id, a["product_id"],
                                         status="released", restored_at=at,
                                         restore_outcome=text)
            await _record(conn, case.case_id, Step.ASSOCIATED_RESTORE, case.phase, text,
                          SYSTEM, at, product_id=a["product_id"])
            continue
        outcome = await decide(ctx, conn, a["product_id"], Intent(
            DecisionType.RESTORE, domain.RESTORE_RULE_ID,
            domain.restore_reason(case.case_id, case.account_id),
            period=f"case:{case.case_id}:restore"), at, case.case_id)
        text = (f"restored: {outcome.before} → {outcome.after}" if outcome.decision_id
                else f"nothing to restore: the product is {outcome.before}")
        await sql.update_association(conn, case.case_id, a["product_id"], status="restored",
                                     restore_decision_id=outcome.decision_id, restored_at=at,
                                     restore_outcome=text)
        await _record(conn, case.case_id, Step.ASSOCIATED_RESTORE, case.phase, text, SYSTEM,
                      at, product_id=a["product_id"], decision_id=outcome.decision_id)


def settler(ctx: CreditContext) -> Any:
    """Every `collections_settle_tick_s`: settle the paid cases, so an associated product is
    restored seconds after the payment that cleared the arrears, not at the next daily run."""

    async def collections_settle(stop: asyncio.Event) -> None:
        async def step() -> bool:
            await settle(ctx)
            return False

        await PollLoop("collections settle", step, idle_s=ctx.settings.collections_settle_tick_s,
                       backoff_min_s=1.0, backoff_max_s=30.0).run(stop)

    return collections_settle


# --- a credit-admin approves associated suspension for a case -----------------------------

async def approve_association(ctx: CreditContext, case_id: str, note: str, by: str,
                              as_of: datetime | None) -> dict[str, Any]:
    """Approve 关联停机 for this case and carry it out at once, re-checking everything at
    execution: the case open and in phase 2 or later, the arrears still unpaid, the customer
    not exempt; per product: owes nothing itself and is not sanctioned already."""
    at = ensure_aware(as_of) if as_of is not None else ctx.clock.now()
    async with ctx.engine.begin() as conn:
        await sql.lock(conn)
        case = await sql.case(conn, case_id, lock=True)
        if case is None:
            raise NotFound(f"unknown collections case {case_id!r}", id=case_id)
        if case.association_approved_by is not None:
            raise Conflict(f"associated suspension of {case_id} was already approved by "
                           f"{case.association_approved_by}", id=case_id)
        arrears = await sql.arrears(conn, case.account_id)
        # The phase on the day the decision is dated, not the case's phase now: an approval
        # dated in phase 1 is refused even once the case has reached phase 2.
        phase = min(Phase(case.phase), plan_of(ctx).phase_on(case.opened_on, business_date(at)))
        refusal = domain.association_refusal(CaseStatus(case.status), phase, True,
                                             arrears, await exempt(conn, case.customer_id, at),
                                             await _standing_promise(conn, case.account_id, at))
        if refusal is not None:
            raise Unprocessable(f"associated suspension refused: {refusal}", id=case_id)
        await sql.update_case(conn, case_id, association_approved_by=by,
                              association_approved_at=at, association_note=note)
        await _record(conn, case_id, Step.APPROVE_ASSOCIATION, case.phase,
                      f"关联停机 approved: {note}", by, at)
        await _associate(ctx, conn, case, arrears, by, note, at)
        return await _case_json(conn, case_id)


async def _standing_promise(conn: AsyncConnection, account_id: str,
                            at: datetime) -> tuple[str, date] | None:
    """The account's promise to pay that holds its suspension back at `at`, if one does:
    open and not broken, whenever it was recorded (one standing now must not be overridden
    by an approval dated before it)."""
    promises = await promise_sql.open_promises(conn, [account_id])
    if not promises:
        return None
    dues, today = await promise_sql.dues(conn, account_id), business_date(at)
    for p in promises:
        paid = p.paid_fen(dues)
        if p.defers(paid, today):
            return p.promise_id, p.deferred_until(paid) or p.promised_date
    return None


async def _associate(ctx: CreditContext, conn: AsyncConnection, case: Any, arrears: int,
                     by: str, note: str, at: datetime) -> None:
    reason = domain.associate_reason(case.case_id, case.account_id, arrears, by, note)
    products = await sql.customer_products(conn, case.customer_id)
    holders = await sql.holding_associations(conn, [p.product_id for p in products])
    for p in products:
        candidate = Candidate(p.product_id, p.account_id, p.state, p.product_amount_due_fen)
        refusal = domain.product_refusal(candidate)
        holder = holders.get(p.product_id)
        if refusal is not None and holder is not None and p.product_amount_due_fen <= 0:
            await _join(conn, case, p, holder, by, at)
            continue
        if refusal is None:
            outcome = await decide(ctx, conn, p.product_id, Intent(
                DecisionType.SUSPEND, domain.ASSOCIATE_RULE_ID, reason,
                period=f"case:{case.case_id}:associate"), at, case.case_id,
                own_due_fen=arrears)
            if outcome.decision_id is None:
                refusal = (outcome.refusal
                           or f"the product could not be suspended from {outcome.before}")
            else:
                await sql.add_association(conn, {
                    "case_id": case.case_id, "product_id": p.product_id,
                    "account_id": p.account_id, "status": "suspended",
                    "suspend_decision_id": outcome.decision_id, "suspended_at": at})
                await _record(conn, case.case_id, Step.ASSOCIATED_SUSPENSION, case.phase,
                              f"关联停机: {outcome.before} → {outcome.after}", by, at,
                              product_id=p.product_id, decision_id=outcome.decision_id)
                continue
        await _record(conn, case.case_id, Step.ASSOCIATION_SKIPPED, case.phase,
                          f"not suspended by association: {refusal}", by, at,
                          product_id=p.product_id)


async def _join(conn: AsyncConnection, case: Any, product: Any, holder: dict[str, Any],
                by: str, at: datetime) -> None:
    """The product is already suspended by another open case's association (the customer's
    other account in collections): this case holds it too, with no decision of its own, so
    whichever case is paid first leaves it suspended for the other's arrears."""
    await sql.add_association(conn, {
        "case_id": case.case_id, "product_id": product.product_id,
        "account_id": product.account_id, "status": "suspended",
        "suspend_decision_id": holder["suspend_decision_id"], "suspended_at": at})
    await _record(conn, case.case_id, Step.ASSOCIATED_SUSPENSION, case.phase,
                  f"关联停机: already suspended by association for collections case "
                  f"{holder['case_id']}; held for this case too", by, at,
                  product_id=product.product_id)


# --- reading -------------------------------------------------------------------------------

def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _case_json(conn: AsyncConnection, case_id: str) -> dict[str, Any]:
    case = await sql.case(conn, case_id)
    if case is None:
        raise NotFound(f"unknown collections case {case_id!r}", id=case_id)
    body = _summary(dict(case._mapping))
    body["steps"] = [{**{k: v for k, v in s.items() if k != "seq"}, "at": _iso(s["at"])}
                     for s in await sql.steps(conn, case_id)]
    body["associations"] = [
        {**a, "suspended_at": _iso(a["suspended_at"]), "restored_at": _iso(a["restored_at"])}
        for a in await sql.associations(conn, case_id)]
    return body


def _summary(c: dict[str, Any]) -> dict[str, Any]:
    return {**c, "phase_label": Phase(c["phase"]).label, "opened_on": _iso(c["opened_on"]),
            "association_approved_at": _iso(c["association_approved_at"]),
            "legal_referred_on": _iso(c["legal_referred_on"]),
            "advanced_at": _iso(c["advanced_at"]), "closed_at": _iso(c["closed_at"])}


async def get_case(ctx: CreditContext, case_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        return await _case_json(conn, case_id)


async def list_cases(ctx: CreditContext, filters: dict[str, Any],
                     limit: int) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return [_summary(c) for c in await sql.cases(conn, filters, limit)]


__all__ = ["EscalationError", "approve_association", "get_case", "list_cases", "run",
           "settle"]
