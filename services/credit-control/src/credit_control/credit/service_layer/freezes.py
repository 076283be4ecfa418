"""Scoped emergency freezes (domain/freezes.py): made and ended by a credit-admin, audited;
obeyed by the sweep (its statement, adapters/sweep_sql.py) and the balance path's threshold
suspension (`rules.on_balance`); what each held back recorded by the sweeps; its held-back
products sent through the notice period again when it ends or expires."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date, ensure_aware
from common.contracts.credit_control import DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from common.errors import Conflict, NotFound, Unprocessable

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from ..adapters import balance_sql, freeze_sql, sweep_sql
from ..adapters.product_credits import SqlProductCredits
from ..domain import freezes as fz
from ..domain import rules
from ..domain.commands import AddFreeze, EndFreeze

_STORED = ("scope", "value", "covers_warnings", "reason", "approver", "until")


async def add_freeze(ctx: CreditContext, cmd: AddFreeze) -> dict[str, Any]:
    """201 with the freeze; the same id again with the same values answers it again, with
    other values 409. Refused (422, nothing stored) as domain/freezes.problems says."""
    now = ctx.clock.now()
    starts_at = ensure_aware(cmd.starts_at) if cmd.starts_at else now
    until = ensure_aware(cmd.until)
    found = fz.problems(cmd.scope, cmd.value, cmd.reason, cmd.approver, cmd.created_by,
                        starts_at, until)
    if until <= now:
        found.setdefault("until", "`until` is in the past")
    if found:
        raise Unprocessable("the freeze cannot be made: " + "; ".join(found.values()),
                            problems=found)
    values = {**cmd.model_dump(), "scope": cmd.scope.value, "starts_at": starts_at,
              "until": until, "created_at": now}
    async with ctx.engine.begin() as conn:
        if not await freeze_sql.add(conn, values):
            earlier = await freeze_sql.get(conn, cmd.freeze_id)
            assert earlier is not None
            if any(getattr(earlier, k) != values[k] for k in _STORED):
                raise Conflict(f"freeze {cmd.freeze_id} exists with other values",
                               id=cmd.freeze_id)
            return dict(earlier._mapping)
        await admin_repo.audit(conn, now, cmd.created_by, "freeze", cmd.freeze_id, "add", None,
                               cmd.model_dump(mode="json"))
        row = await freeze_sql.get(conn, cmd.freeze_id)
    return dict(row._mapping)


async def end_freeze(ctx: CreditContext, freeze_id: str, cmd: EndFreeze) -> dict[str, Any]:
    """Ends it at `cmd.at` (business time; now if not given) and sends what it held back
    from suspension through the notice period again. Ending an ended freeze changes
    nothing."""
    now = ctx.clock.now()
    at = ensure_aware(cmd.at) if cmd.at else now
    async with ctx.engine.begin() as conn:
        row = await freeze_sql.get(conn, freeze_id, lock=True)
        if row is None:
            raise NotFound(f"no freeze {freeze_id!r}", id=freeze_id)
        if row.ended_at is None:
            await freeze_sql.end(conn, freeze_id, at, cmd.ended_by, cmd.reason)
            await admin_repo.audit(conn, now, cmd.ended_by, "freeze", freeze_id, "end",
                                   None, {"reason": cmd.reason, "at": at.isoformat()})
            await _release(conn, ctx, freeze_id, at)
    return await freeze(ctx, freeze_id)


async def release_due(ctx: CreditContext, as_of: datetime) -> None:
    """Before a sweep as of `as_of`: every freeze over by then (ended, or expired) sends the
    products it held back through the notice period again, once."""
    async with ctx.engine.connect() as conn:
        due = await freeze_sql.due_for_release(conn, as_of)
    for freeze_id in due:
        async with ctx.engine.begin() as conn:
            row = await freeze_sql.get(conn, freeze_id, lock=True)
            if row is not None and row.released_at is None:
                await _release(conn, ctx, freeze_id, row.ended_at or row.until)


async def _release(conn: AsyncConnection, ctx: CreditContext, freeze_id: str,
                   at: datetime) -> None:
    """Each product it held back from suspension, still suspension-warned, is warned again:
    back to warned with the warning dropped, so the next sweep sends a new suspension warning
    with a full notice period (`ProductCredit.warn_again`)."""
    held = await freeze_sql.held_products(conn, freeze_id)
    products = SqlProductCredits(conn)
    loaded = await products.load(held)
    history = balance_sql.HistoryRows()
    reason = f"freeze {freeze_id} over: the suspension warning is given again before any " \
             "suspension"
    for product in loaded.values():
        change = product.warn_again(max(at, product.changed_at or at), reason)
        if change is not None:
            history.product_id.append(product.product_id)
            history.state_before.append(change.before.value)
            history.state_after.append(change.after.value)
            history.cause.append(change.cause)
            history.decision_id.append(None)
            history.at.append(change.at)
    await products.save(loaded.values())
    await balance_sql.insert_history(conn, history)
    await freeze_sql.mark_released(conn, freeze_id, ctx.clock.now(), {
        "held": len(held), "warned_again": len(history.product_id)})


async def record_holds(ctx: CreditContext, as_of: datetime,
                       plan: list[rules.SweepStep]) -> None:
    """After a sweep's pass: the products a freeze in force held back from the plan's
    suspensions and suspension warnings, each with the freezes that cover it."""
    async with ctx.engine.connect() as conn:
        active = [f for f in await freeze_sql.open_freezes(conn) if f.active(as_of)]
    steps = [(n, s) for n, s in enumerate(plan)
             if s.row.decision in (DecisionType.SUSPEND, DecisionType.SUSPENSION_WARNING)]
    if not active or not steps:
        return
    today = business_date(as_of)
    values = sweep_sql.params([], as_of, as_of, 0, "", 0, ctx.source, None, as_of, today)
    async with ctx.engine.begin() as conn:
        await sweep_sql.tune(conn)
        rows = await sweep_sql.held_by_freezes(conn, steps, values)
        held = []
        for r in rows:
            covered = fz.Covered(ProductFamily(r.family), Tier(r.tier), r.star, r.vendor,
                                 r.channel, r.customer_id, r.region)
            warning = r.decision == DecisionType.SUSPENSION_WARNING.value
            held += [(f.freeze_id, r.product_id, r.decision, r.account_id,
                      int(r.product_amount_due_fen))
                     for f in active if (f.covers_warnings or not warning) and f.covers(covered)]
        await freeze_sql.record(conn, today, sorted(set(held)))


async def freeze(ctx: CreditContext, freeze_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await freeze_sql.get(conn, freeze_id)
        if row is None:
            raise NotFound(f"no freeze {freeze_id!r}", id=freeze_id)
        return {**row._mapping, "held": await freeze_sql.hold_counts(conn, freeze_id)}


async def freezes_list(ctx: CreditContext, active_at: datetime | None,
                       limit: int) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await freeze_sql.listed(conn, active_at, limit)


async def freezes_with_counts(ctx: CreditContext, limit: int) -> list[dict[str, Any]]:
    """The newest freezes, each with how many products it held back per decision."""
    async with ctx.engine.connect() as conn:
        listed = await freeze_sql.listed(conn, None, limit)
        counts = await freeze_sql.hold_counts_of(conn, [f["freeze_id"] for f in listed])
    return [{**f, "held": counts.get(f["freeze_id"], {})} for f in listed]


async def holds(ctx: CreditContext, freeze_id: str, limit: int) -> list[dict[str, Any]]:
    await freeze(ctx, freeze_id)  # 404 for an unknown one
    async with ctx.engine.connect() as conn:
        return await freeze_sql.holds(conn, freeze_id, limit)
