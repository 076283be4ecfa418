"""Late fees (滞纳金, docs/billing.md "Late fees"): posted by a bill run as their own lines, a
late-fee charge per overdue (product, bill month) on the bill the run closes; waived by a
credit-admin with a reason (an adjustment of that line's bill, published like any other);
never on a disputed bill nor for a customer credit-control's decisions say is exempt from
suspension (red list, emergency no-suspension). Arithmetic in domain/late_fees.py."""

import hashlib
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date
from common.contracts.billing import BalanceCause
from common.errors import Conflict, NotFound, Unprocessable

from ..adapters import ledger as led
from ..adapters import tables as t
from ..domain.late_fees import Bill, Line, lines_for
from .balances import current_states
from .context import BillingContext

LATE_FEE_PREFIX = "LF-"


def line_id(account_id: str, product_id: str, bill_month: date, bill_run_id: str) -> str:
    key = f"{account_id}|{product_id}|{bill_month.isoformat()}|{bill_run_id}"
    return LATE_FEE_PREFIX + hashlib.md5(key.encode()).hexdigest()[:20]


# The accounts that may owe on a bill month before `month`: a charge or an adjustment there.
_CANDIDATES = text("""
    SELECT account_id FROM billing.charges WHERE bill_month < :month
    UNION SELECT account_id FROM billing.adjustments WHERE bill_month < :month""")

# Per overdue bill: the late fees posted for it (net of waivers: the cap counts what is
# charged) and the last day charged; per bill: the late-fee lines billed on it (a fee is
# never charged on a fee).
_POSTED = text("""
    SELECT account_id, product_id, bill_month, sum(fee_fen - waived_fen)::bigint AS fen,
           max(last_day) AS through
    FROM billing.late_fees WHERE account_id = ANY(:ids)
    GROUP BY account_id, product_id, bill_month""")
_FEES_ON = text("""
    SELECT account_id, product_id, posted_bill_month, sum(fee_fen - waived_fen)::bigint AS fen
    FROM billing.late_fees WHERE account_id = ANY(:ids)
    GROUP BY account_id, product_id, posted_bill_month""")
_DISPUTED = text("""
    SELECT DISTINCT account_id, product_id, bill_month FROM billing.disputes
    WHERE account_id = ANY(:ids) AND resolved_at IS NULL""")


async def post_for_bill_run(ctx: BillingContext, conn: AsyncConnection, month: date,
                            bill_run_id: str, at: datetime) -> int:
    """In the bill run's transaction, before the month closes: the late-fee lines of every
    account owing on an earlier bill. Returns the number of lines written. Nothing at all
    (not one statement) while late fees are off."""
    policy = ctx.late_fees
    if not policy.enabled:
        return 0
    ids = sorted(r[0] for r in await conn.execute(_CANDIDATES, {"month": month}))
    if not ids:
        return 0
    await led.lock_accounts(conn, ids)
    states = await current_states(conn, ids)
    params = {"ids": ids}
    posted = {(r.account_id, r.product_id, r.bill_month): (int(r.fen), r.through)
              for r in await conn.execute(_POSTED, params)}
    fees_on = {(r.account_id, r.product_id, r.posted_bill_month): int(r.fen)
               for r in await conn.execute(_FEES_ON, params)}
    disputed = {(r.account_id, r.product_id, r.bill_month)
                for r in await conn.execute(_DISPUTED, params)}
    exempt = {r.account_id for r in await conn.execute(
        select(t.credit_exemption_facts.c.account_id).where(
            t.credit_exemption_facts.c.account_id.in_(ids), t.credit_exemption_facts.c.exempt))}
    run_day, written = business_date(at), 0
    for account_id, state in states.items():
        bills = []
        for p in state.products:
            for due in p.dues:
                key = (account_id, p.product_id, due.bill_month)
                fen, through = posted.get(key, (0, None))
                owed = max(0, due.amount_due_fen - fees_on.get(key, 0))
                bills.append(Bill(p.product_id, due.bill_month, owed, fen, through,
                                  key in disputed))
        for line in lines_for(bills, policy, run_day, account_id in exempt):
            await _write(conn, account_id, line, month, bill_run_id, policy.rate_bp_per_day,
                         at)
            written += 1
    return written


async def _write(conn: AsyncConnection, account_id: str, line: Line, month: date,
                 bill_run_id: str, rate: int, at: datetime) -> None:
    lid = line_id(account_id, line.product_id, line.bill_month, bill_run_id)
    charge = lid if line.fee_fen > 0 else None
    await conn.execute(insert(t.late_fees).values(
        line_id=lid, account_id=account_id, product_id=line.product_id,
        bill_month=line.bill_month, posted_bill_month=month, bill_run_id=bill_run_id,
        base_fen=line.base_fen, first_day=line.first_day, last_day=line.last_day,
        days=line.days, rate_bp_per_day=rate, fee_fen=line.fee_fen, note=line.note,
        charge_id=charge, posted_at=at))
    if charge is not None:  # its own line on the bill: a charge of the product, this month
        # Its moment is the bill run's own (every charge keeps one: domain/bill_month.py).
        await conn.execute(insert(t.charges).values(
            charge_id=charge, account_id=account_id, product_id=line.product_id,
            bill_month=month, amount_fen=line.fee_fen, charged_at=at))


# --- waiver ----------------------------------------------------------------------------------

async def waive(ctx: BillingContext, lid: str, reason: str, by: str,
                at: datetime) -> dict[str, Any]:
    """A credit-admin waives what is left of a line: an adjustment of its bill by minus
    that amount (published as any adjustment), and the line says who, when and why. Once:
    a waived line answers 409 and changes nothing."""
    async with ctx.engine.begin() as conn:
        return await waive_in(ctx, conn, lid, reason, by, at)


async def waive_in(ctx: BillingContext, conn: AsyncConnection, lid: str, reason: str, by: str,
                   at: datetime) -> dict[str, Any]:
    """`waive` in the caller's transaction."""
    from .handlers import publish_account

    lf = t.late_fees
    row = (await conn.execute(select(lf).where(lf.c.line_id == lid)
                              .with_for_update())).first()
    if row is None:
        raise NotFound(f"unknown late-fee line {lid!r}", id=lid)
    left = row.fee_fen - row.waived_fen
    if left <= 0:
        raise Conflict(f"late-fee line {lid} has nothing to waive "
                       f"({'waived' if row.waived_fen else 'no fee'})", id=lid)
    await led.lock_accounts(conn, [row.account_id])
    await conn.execute(insert(t.adjustments).values(
        adjustment_id=f"WV-{lid}", account_id=row.account_id, product_id=row.product_id,
        bill_month=row.posted_bill_month, amount_fen=-left,
        reason=f"滞纳金减免 {lid}: {reason}", adjusted_at=at))
    await conn.execute(update(lf).where(lf.c.line_id == lid).values(
        waived_fen=row.fee_fen, waived_by=by, waived_at=at, waive_reason=reason))
    account = await publish_account(ctx, conn, row.account_id, BalanceCause.ADJUSTMENT, at)
    line = await _line(conn, lid)
    return {"line": line, "account": account}


async def _line(conn: AsyncConnection, lid: str) -> dict[str, Any]:
    row = (await conn.execute(select(t.late_fees).where(t.late_fees.c.line_id == lid))).first()
    assert row is not None
    return _json(dict(row._mapping))


def _json(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in r.items()}
    for k in ("bill_month", "posted_bill_month"):
        if k in r:
            out[k] = r[k].strftime("%Y-%m")
    return out


async def lines(ctx: BillingContext, account_id: str) -> list[dict[str, Any]]:
    lf = t.late_fees
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(select(lf).where(lf.c.account_id == account_id)
                                  .order_by(lf.c.posted_bill_month, lf.c.bill_month,
                                            lf.c.product_id))
        return [_json(dict(r._mapping)) for r in rows]


# --- disputes and exemption facts -----------------------------------------------------------

async def open_dispute(ctx: BillingContext, values: dict[str, Any]) -> dict[str, Any]:
    async with ctx.engine.begin() as conn:
        owner = await conn.scalar(select(t.products.c.account_id).where(
            t.products.c.product_id == values["product_id"]))
        if owner != values["account_id"]:
            raise NotFound(f"no product {values['product_id']!r} on account "
                           f"{values['account_id']!r}", id=values["product_id"])
        month, c, a = values["bill_month"], t.charges, t.adjustments
        # A bill of that month: a charge, or a positive adjustment (补收) billed the product.
        billed = select(c.c.charge_id).where(
            c.c.account_id == owner, c.c.product_id == values["product_id"],
            c.c.bill_month == month).union_all(select(a.c.adjustment_id).where(
                a.c.account_id == owner, a.c.product_id == values["product_id"],
                a.c.bill_month == month, a.c.amount_fen > 0)).limit(1)
        if not await conn.scalar(billed):
            raise Unprocessable(
                f"product {values['product_id']!r} was not billed for {month:%Y-%m} (no "
                "charge, no positive adjustment): there is no bill of that month to dispute",
                field="bill_month")
        done = await conn.execute(pg_insert(t.disputes).values(**values)
                                  .on_conflict_do_nothing())
        row = (await conn.execute(select(t.disputes).where(
            t.disputes.c.dispute_id == values["dispute_id"]))).first()
        assert row is not None
        if not done.rowcount and any(row._mapping[k] != values[k] for k in (
                "account_id", "product_id", "bill_month", "reason")):
            raise Conflict(f"dispute {values['dispute_id']} exists with other values",
                           id=values["dispute_id"])
        return _json(dict(row._mapping))


async def resolve_dispute(ctx: BillingContext, dispute_id: str, resolution: str, by: str,
                          at: datetime) -> dict[str, Any]:
    async with ctx.engine.begin() as conn:
        d = t.disputes
        row = (await conn.execute(select(d).where(d.c.dispute_id == dispute_id)
                                  .with_for_update())).first()
        if row is None:
            raise NotFound(f"unknown dispute {dispute_id!r}", id=dispute_id)
        if row.resolved_at is not None:
            raise Conflict(f"dispute {dispute_id} is resolved already", id=dispute_id)
        if at < row.opened_at:
            # Its open period says which days of late fees are never charged: a window that
            # ends before it begins means nothing (as a reversal before its payment).
            raise Unprocessable(
                f"as_of {at.isoformat()} is before dispute {dispute_id} was opened "
                f"({row.opened_at.isoformat()}): a dispute is resolved after it is opened",
                field="as_of", id=dispute_id, opened_at=row.opened_at.isoformat())
        await conn.execute(update(d).where(d.c.dispute_id == dispute_id).values(
            resolved_by=by, resolved_at=at, resolution=resolution))
        row = (await conn.execute(select(d).where(d.c.dispute_id == dispute_id))).first()
        assert row is not None
        return _json(dict(row._mapping))


_FACT = text("""
    INSERT INTO billing.credit_exemption_facts (account_id, exempt, as_of, decision_id)
    VALUES (:account_id, :exempt, :as_of, :decision_id)
    ON CONFLICT (account_id) DO UPDATE SET exempt = excluded.exempt, as_of = excluded.as_of,
        decision_id = excluded.decision_id
    WHERE billing.credit_exemption_facts.as_of <= excluded.as_of""")


async def record_exemption_fact(conn: AsyncConnection, account_id: str, exempt: bool,
                                as_of: datetime, decision_id: str) -> None:
    """What credit-control's newest decision on the account said: whether the customer is
    exempt from suspension (red list or emergency no-suspension). A late decision never
    overwrites a newer one."""
    await conn.execute(_FACT, {"account_id": account_id, "exempt": exempt, "as_of": as_of,
                               "decision_id": decision_id})
