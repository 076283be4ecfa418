"""billing's use cases: one function per command, each one transaction.

A change of balance and its balance event are written in the same transaction (outbox).
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date, parse_bill_month
from common.contracts.billing import BalanceCause, DeductionOutcome, ProductCollected
from common.envelope import UnprocessableMessage
from common.errors import Conflict, NotFound, Unprocessable
from common.idempotency import StoredResponse

from ..adapters import history_sql as hsql
from ..adapters import ledger as led
from ..adapters import repository as repo
from ..adapters import tables as t
from ..domain import commands as c
from ..domain.allocation import paid_by
from ..domain.bill_month import bill_run_refusal, charge_moment, closed_month_refusal
from ..domain.history import position_at
from ..domain.model import aging, deduction_to_collect, write_off_allowed
from . import sanctions
from . import write_off_lapses as lapses
from .balances import AccountState, current_states, month_text, product_due_json
from .context import (
    BillingContext,
    as_of,
    once,
    publish,
    publish_many,
    require,
    require_product_of,
)
from .late_fees import post_for_bill_run as post_late_fees

# --- master data ---------------------------------------------------------------------------


async def create_customer(ctx: BillingContext, cmd: c.CreateCustomer) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        if await repo.exists(conn, t.customers.c.customer_id, cmd.customer_id):
            raise Conflict(f"customer {cmd.customer_id} already exists", id=cmd.customer_id)
        row = cmd.model_dump(mode="json")
        await conn.execute(insert(t.customers).values(**row))
        return row

    return await once(ctx, "customer", cmd.customer_id, cmd, work)


async def update_customer(
    ctx: BillingContext, customer_id: str, details: c.CustomerDetails
) -> StoredResponse:
    """Replace a customer's master data. A real change publishes a balance event with
    cause=master_data (same money, new snapshot) for each of its accounts; the same body
    again changes nothing and publishes nothing."""
    async with ctx.engine.begin() as conn:
        # Locked: of identical concurrent PUTs only the first sees a change (one event).
        row = await repo.row_of(conn, t.customers.c.customer_id, customer_id, for_update=True)
        if row is None:
            raise NotFound(f"unknown customer {customer_id!r}", id=customer_id)
        new = {"region": None, **details.model_dump(mode="json")}  # no region: clears it
        body = {"customer_id": customer_id, **new}
        if {k: row._mapping[k] for k in new} == new:
            return StoredResponse(200, {**body, "changed": False})
        await conn.execute(update(t.customers)
                           .where(t.customers.c.customer_id == customer_id).values(**new))
        accounts = await repo.accounts_of_customer(conn, customer_id)
        if accounts:
            await publish(ctx, conn, accounts, BalanceCause.MASTER_DATA, ctx.clock.now())
        return StoredResponse(200, {**body, "changed": True})


async def open_account(ctx: BillingContext, cmd: c.OpenAccount) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await require(conn, t.customers.c.customer_id, cmd.customer_id, "customer")
        if await repo.exists(conn, t.accounts.c.account_id, cmd.account_id):
            raise Conflict(f"account {cmd.account_id} already exists", id=cmd.account_id)
        await conn.execute(insert(t.accounts).values(**cmd.model_dump()))
        return cmd.model_dump(mode="json")

    return await once(ctx, "account", cmd.account_id, cmd, work)


async def add_product(ctx: BillingContext, cmd: c.AddProduct) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await require(conn, t.accounts.c.account_id, cmd.account_id, "account")
        if await repo.exists(conn, t.products.c.product_id, cmd.product_id):
            raise Conflict(f"product {cmd.product_id} already exists", id=cmd.product_id)
        if await repo.exists(conn, t.products.c.cpno, cmd.cpno):
            raise Conflict(f"product number (CPNO) {cmd.cpno} is taken", cpno=cmd.cpno)
        await conn.execute(insert(t.products).values(
            **cmd.model_dump(mode="json", exclude={"as_of"})))
        # No product escapes credit-control: it learns the product with the account's
        # current facts at once, so a product of an owing account is decided like its
        # siblings from the moment it exists (not only at the account's next charge).
        await publish(ctx, conn, [cmd.account_id], BalanceCause.MASTER_DATA,
                      as_of(ctx, cmd.as_of))
        return cmd.model_dump(mode="json")

    return await once(ctx, "product", cmd.product_id, cmd, work)


async def update_product(
    ctx: BillingContext, product_id: str, details: c.ProductDetails
) -> StoredResponse:
    """Replace a product's name, family, vendor and channel (its account and CPNO stay).
    A real change publishes cause=master_data on its account."""
    async with ctx.engine.begin() as conn:
        row = await repo.row_of(conn, t.products.c.product_id, product_id, for_update=True)
        if row is None:
            raise NotFound(f"unknown product {product_id!r}", id=product_id)
        new = details.model_dump(mode="json")
        body = {"product_id": product_id, "account_id": row.account_id, "cpno": row.cpno, **new}
        if {k: row._mapping[k] for k in new} == new:
            return StoredResponse(200, {**body, "changed": False})
        if new["family"] != row.family:
            await refuse_family_change_under_sanction(conn, product_id, row.family, new["family"])
        await conn.execute(update(t.products)
                           .where(t.products.c.product_id == product_id).values(**new))
        await publish(ctx, conn, [row.account_id], BalanceCause.MASTER_DATA, ctx.clock.now())
        return StoredResponse(200, {**body, "changed": True})


async def refuse_family_change_under_sanction(
    conn: AsyncConnection, product_id: str, family: str, new_family: str
) -> None:
    """credit-control's rule table is per family and the gateway suspends and restores only MAS
    and SMS-direct products: a suspended MAS product moved to ADC could never be restored by
    the chain, an ADC one moved to MAS would be "restored" at a gateway that never blocked it.
    So no family change while credit-control holds the product under a sanction (as far as
    billing has heard: a decision still on its way is not known yet): 409."""
    held = await sanctions.of_product(conn, product_id)
    if held is not None:
        raise Conflict(
            f"product {product_id!r} is {held.state} by credit-control (decision "
            f"{held.decision_id}, {held.as_of.isoformat()}): its family cannot change from "
            f"{family} to {new_family} until it is restored (after payment, or a "
            "credit-admin's review); other fields may change", product_id=product_id,
            state=held.state, decision_id=held.decision_id, as_of=held.as_of.isoformat(),
            family=family)


# --- money ---------------------------------------------------------------------------------


async def post_charge(ctx: BillingContext, cmd: c.PostCharge) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await require(conn, t.accounts.c.account_id, cmd.account_id, "account")
        await require_product_of(conn, cmd.product_id, cmd.account_id)
        month = parse_bill_month(cmd.bill_month)
        # Shared: charges of one month run side by side, but a bill run of that month waits
        # for this one to commit (and this one waits for a bill run already under way).
        await repo.lock_bill_month(conn, month, shared=True)
        await lock_account(conn, cmd.account_id)
        refused = closed_month_refusal(cmd.bill_month, await repo.is_closed(conn, month))
        if refused:
            raise Conflict(refused, bill_month=cmd.bill_month)
        at = as_of(ctx, cmd.as_of)
        # Its moment is kept even without `as_of` (then: now, its balance event's): a bill
        # run of the month dated before it is refused (domain/bill_month.py).
        await conn.execute(insert(t.charges).values(
            charge_id=cmd.charge_id, account_id=cmd.account_id, product_id=cmd.product_id,
            bill_month=month, amount_fen=cmd.amount_fen,
            charged_at=charge_moment(cmd.as_of, at)))
        account = await publish_account(ctx, conn, cmd.account_id, BalanceCause.CHARGE, at)
        return {**cmd.model_dump(mode="json"), "account": account}

    return await once(ctx, "charge", cmd.charge_id, cmd, work)


async def run_bill(ctx: BillingContext, cmd: c.RunBill) -> StoredResponse:
    return await once(ctx, "bill_run", cmd.bill_run_id, cmd,
                      lambda conn: close_month(ctx, conn, cmd))


async def close_month(
    ctx: BillingContext, conn: AsyncConnection, cmd: c.RunBill
) -> dict[str, Any]:
    """The bill run's work in the caller's transaction (the bench times it rolled back)."""
    month = parse_bill_month(cmd.bill_month)
    at = as_of(ctx, cmd.as_of)
    today = business_date(at)
    if month >= today.replace(day=1):
        raise Unprocessable(
            f"bill month {cmd.bill_month} has not ended as of {at.isoformat()} "
            f"(business date {today.isoformat()}, Asia/Shanghai); a bill run can only "
            "close a month that is over",
            bill_month=cmd.bill_month, as_of=at.isoformat())
    # Exclusive: wait for the month's charges still in flight, keep new ones out.
    await repo.lock_bill_month(conn, month, shared=False)
    if await repo.is_closed(conn, month):
        raise Conflict(f"bill month {cmd.bill_month} already had its bill run",
                       bill_month=cmd.bill_month)
    # Not before a charge of the month (domain/bill_month.py): every charge keeps its moment,
    # the one it claims or the one it was recorded at (HTTP without `as_of`, a CSV row).
    too_early = bill_run_refusal(cmd.bill_month, at, await repo.last_charge_of(conn, month))
    if too_early is not None:
        raise Unprocessable(too_early.message, field="as_of",
                            charge_id=too_early.charge.charge_id,
                            charged_at=too_early.charge.at.isoformat())
    await repo.tune_for_bill_run(conn)
    # Late fees (off by default): their lines are charges of this month, before it closes.
    await post_late_fees(ctx, conn, month, cmd.bill_run_id, at)
    # The month is closed first: the positions published below see it billed.
    await conn.execute(insert(t.bill_runs).values(
        bill_run_id=cmd.bill_run_id, bill_month=month, as_of=at, accounts_billed=0))
    # One set-wise pass: positions, sequences and outbox rows together, the accounts
    # selected in the database by the month's charges and adjustments.
    billed = await publish_many(ctx, conn, led.billed_in(month), BalanceCause.BILL_RUN, at,
                                closed_bill_month=cmd.bill_month)
    await conn.execute(update(t.bill_runs).where(t.bill_runs.c.bill_run_id == cmd.bill_run_id)
                       .values(accounts_billed=billed))
    return {**cmd.model_dump(mode="json"), "as_of": at.isoformat(), "accounts_billed": billed}


async def record_payment(ctx: BillingContext, cmd: c.RecordPayment) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await lock_account(conn, cmd.account_id)
        paid_at = as_of(ctx, cmd.paid_at)
        await conn.execute(insert(t.payments).values(
            payment_id=cmd.payment_id, account_id=cmd.account_id, amount_fen=cmd.amount_fen,
            paid_at=paid_at, source="cash"))
        await lapses.after_payment(conn, cmd.account_id, cmd.payment_id, paid_at)
        account = await publish_account(ctx, conn, cmd.account_id, BalanceCause.PAYMENT, paid_at)
        return {**cmd.model_dump(mode="json"), "paid_at": paid_at.isoformat(),
                "account": account}

    return await once(ctx, "payment", cmd.payment_id, cmd, work)


async def reverse_payment(ctx: BillingContext, cmd: c.ReversePayment) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        paid = await repo.payment(conn, cmd.payment_id)
        if paid is None:
            raise NotFound(f"unknown payment {cmd.payment_id!r}", id=cmd.payment_id)
        if paid.source != "cash":
            raise Conflict(f"payment {cmd.payment_id!r} is a deduction from the deposit; "
                           "only a customer's payment can bounce", payment_id=cmd.payment_id)
        if await repo.exists(conn, t.reversals.c.payment_id, cmd.payment_id):
            raise Conflict(f"payment {cmd.payment_id!r} was already reversed",
                           payment_id=cmd.payment_id)
        await lock_account(conn, paid.account_id)
        at = as_of(ctx, cmd.reversed_at)
        if at < paid.paid_at:  # a cheque bounces after it was paid in, never before
            raise Unprocessable(
                f"reversed_at {at.isoformat()} is before payment {cmd.payment_id!r} was made "
                f"({paid.paid_at.isoformat()})", field="reversed_at",
                paid_at=paid.paid_at.isoformat())
        await conn.execute(insert(t.reversals).values(
            reversal_id=cmd.reversal_id, payment_id=cmd.payment_id, account_id=paid.account_id,
            reason=cmd.reason, reversed_at=at))
        await lapses.after_reversal(conn, paid.account_id, cmd.reversal_id, cmd.payment_id, at)
        account = await publish_account(ctx, conn, paid.account_id, BalanceCause.REVERSAL, at)
        return {**cmd.model_dump(mode="json"), "reversed_at": at.isoformat(),
                "account_id": paid.account_id, "amount_fen": int(paid.amount_fen),
                "account": account}

    return await once(ctx, "reversal", cmd.reversal_id, cmd, work)


async def adjust_bill(ctx: BillingContext, cmd: c.AdjustBill) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await require(conn, t.accounts.c.account_id, cmd.account_id, "account")
        await require_product_of(conn, cmd.product_id, cmd.account_id)
        month = parse_bill_month(cmd.bill_month)
        await repo.lock_bill_month(conn, month, shared=True)
        await led.lock_accounts(conn, [cmd.account_id])
        billed = await repo.product_month_total(conn, cmd.account_id, cmd.product_id, month)
        if billed + cmd.amount_fen < 0:
            raise Unprocessable(
                f"product {cmd.product_id!r} was billed {billed} fen for {cmd.bill_month}; "
                f"an adjustment of {cmd.amount_fen} would make it negative",
                billed_fen=billed, amount_fen=cmd.amount_fen)
        at = as_of(ctx, cmd.as_of)
        if cmd.amount_fen < 0:  # a credit note: what it cancels may have been written off
            await lapses.before_credit_note(conn, cmd.account_id, cmd.adjustment_id, month,
                                            cmd.amount_fen, at)
        await conn.execute(insert(t.adjustments).values(
            adjustment_id=cmd.adjustment_id, account_id=cmd.account_id,
            product_id=cmd.product_id, bill_month=month, amount_fen=cmd.amount_fen,
            reason=cmd.reason, adjusted_at=at))
        account = await publish_account(ctx, conn, cmd.account_id, BalanceCause.ADJUSTMENT, at)
        return {**cmd.model_dump(mode="json"), "as_of": at.isoformat(),
                "account": account}

    return await once(ctx, "adjustment", cmd.adjustment_id, cmd, work)


async def write_off(ctx: BillingContext, cmd: c.WriteOff) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await lock_account(conn, cmd.account_id)
        due = (await current_states(conn, [cmd.account_id]))[cmd.account_id]
        if not write_off_allowed(cmd.amount_fen, due.position.amount_due_fen):
            raise Unprocessable(
                f"account {cmd.account_id!r} owes {due.position.amount_due_fen} fen on closed "
                f"bill months; {cmd.amount_fen} fen cannot be written off",
                amount_due_fen=due.position.amount_due_fen, amount_fen=cmd.amount_fen)
        at = as_of(ctx, cmd.as_of)
        await refuse_write_off_before_its_debt(conn, cmd, at, due)
        await conn.execute(insert(t.write_offs).values(
            write_off_id=cmd.write_off_id, account_id=cmd.account_id, amount_fen=cmd.amount_fen,
            reason=cmd.reason, written_off_at=at))
        account = await publish_account(ctx, conn, cmd.account_id, BalanceCause.WRITE_OFF, at)
        return {**cmd.model_dump(mode="json"), "as_of": at.isoformat(),
                "account": account}

    return await once(ctx, "write_off", cmd.write_off_id, cmd, work)


async def refuse_write_off_before_its_debt(
    conn: AsyncConnection, cmd: c.WriteOff, at: datetime, due: AccountState
) -> None:
    """Bad debt is written off after it was billed, never before: what is written off must
    have been owed on closed bill months at the write-off's own moment (the dated ledger, as
    the balance history recomputes it), not only now. Else 422 naming the dates."""
    closed = await hsql.closed_months(conn)
    head = hsql.AccountHead(cmd.account_id, "", "", None, ())
    ledger = (await hsql.ledgers(conn, [head], date.max, at))[cmd.account_id]
    owed_then = position_at(ledger, closed, at, BalanceCause.WRITE_OFF.value).amount_due_fen
    if cmd.amount_fen <= owed_then:
        return
    billed = {month_text(d.bill_month): closed[d.bill_month].isoformat()
              for d in due.position.dues if d.bill_month in closed}
    when = ", ".join(f"{m} by its bill run at {b}" for m, b in billed.items())
    raise Unprocessable(
        f"as_of {at.isoformat()} is before the debt it writes off existed: account "
        f"{cmd.account_id!r} owed {owed_then} fen on closed bill months then, "
        f"{cmd.amount_fen} fen cannot be written off as of that moment (what it owes now was "
        f"billed: {when or 'nothing'})", field="as_of", owed_fen_as_of=owed_then,
        amount_fen=cmd.amount_fen, billed_at=billed)


async def receive_deposit(ctx: BillingContext, cmd: c.ReceiveDeposit) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await lock_account(conn, cmd.account_id)
        at = as_of(ctx, cmd.received_at)
        await conn.execute(insert(t.deposit_movements).values(
            movement_id=cmd.deposit_id, account_id=cmd.account_id, amount_fen=cmd.amount_fen,
            kind="deposit", at=at))
        account = await publish_account(ctx, conn, cmd.account_id, BalanceCause.DEPOSIT, at)
        return {**cmd.model_dump(mode="json"), "received_at": at.isoformat(),
                "account": account}

    return await once(ctx, "deposit", cmd.deposit_id, cmd, work)


async def apply_deduction(
    ctx: BillingContext, conn: AsyncConnection, cmd: c.ApplyDeduction
) -> None:
    """划扣, in the consumer's transaction: collect from the deposit at most once per
    decision_id, and always answer with a balance event (collected may be 0)."""
    if not await repo.exists(conn, t.accounts.c.account_id, cmd.account_id):
        raise UnprocessableMessage(f"deduction {cmd.decision_id}: unknown account "
                                   f"{cmd.account_id!r}")
    await led.lock_accounts(conn, [cmd.account_id])
    claimed = await conn.execute(text(
        "INSERT INTO billing.deductions (decision_id, account_id, requested_fen, collected_fen, at)"
        " VALUES (:d, :a, :r, 0, :at) ON CONFLICT DO NOTHING RETURNING decision_id"),
        {"d": cmd.decision_id, "a": cmd.account_id, "r": cmd.requested_fen, "at": cmd.as_of})
    if claimed.first() is None:
        return  # the same decision again (republished under a new event id): done before
    before = (await current_states(conn, [cmd.account_id]))[cmd.account_id]
    collected = deduction_to_collect(cmd.requested_fen, before.deposit_fen,
                                     before.position.amount_due_fen)
    if collected:
        ref = f"deduction:{cmd.decision_id}"
        await conn.execute(insert(t.deposit_movements).values(
            movement_id=ref, account_id=cmd.account_id, amount_fen=-collected,
            kind="deduction", at=cmd.as_of))
        await conn.execute(insert(t.payments).values(
            payment_id=ref, account_id=cmd.account_id, amount_fen=collected,
            paid_at=cmd.as_of, source="deposit"))
        await conn.execute(update(t.deductions).where(
            t.deductions.c.decision_id == cmd.decision_id).values(collected_fen=collected))
    outcome = DeductionOutcome(
        decision_id=cmd.decision_id, requested_fen=cmd.requested_fen, collected_fen=collected,
        products=tuple(ProductCollected(product_id=p, collected_fen=f)
                       for p, f in paid_by(before.products, collected)))
    await publish(ctx, conn, [cmd.account_id], BalanceCause.DEDUCTION, cmd.as_of,
                  deduction=outcome)


async def lock_account(conn: AsyncConnection, account_id: str) -> None:
    """Lock the account row before writing anything that references it. The insert of a
    charge or payment takes a key-share lock on the account; two of them then both asking
    for the row lock in `publish` deadlock. Taking the row lock first queues them instead."""
    await require(conn, t.accounts.c.account_id, account_id, "account")
    await led.lock_accounts(conn, [account_id])


# --- views ---------------------------------------------------------------------------------


async def customer_view(ctx: BillingContext, customer_id: str) -> dict[str, Any]:
    """A group customer's master data (credit-control asks before red-listing one)."""
    async with ctx.engine.connect() as conn:
        row = await repo.row_of(conn, t.customers.c.customer_id, customer_id)
    if row is None:
        raise NotFound(f"unknown customer {customer_id!r}", id=customer_id)
    return {k: row._mapping[k] for k in (
        "customer_id", "name", "tier", "star_level", "account_manager", "contacts", "region")}


async def account_view(ctx: BillingContext, account_id: str, on: date | None) -> dict[str, Any]:
    """The account position: balance, dues per bill month, aging as of a business day,
    deposit and last payment."""
    day = on or business_date(ctx.clock.now())
    async with ctx.engine.connect() as conn:
        await require(conn, t.accounts.c.account_id, account_id, "account")
        state = (await current_states(conn, [account_id]))[account_id]
    ages = aging(state.position.dues, day)
    return {**position_body(state), "as_of_date": day.isoformat(), "aging": {
        "current_fen": ages.current_fen, "one_month_fen": ages.one_month_fen,
        "two_months_fen": ages.two_months_fen,
        "three_plus_months_fen": ages.three_plus_months_fen}}


async def publish_account(ctx: BillingContext, conn: AsyncConnection, account_id: str,
                          cause: BalanceCause, at: datetime) -> dict[str, Any]:
    """One account's balance event; its new position, as the answer shows it."""
    states = await publish(ctx, conn, [account_id], cause, at)
    return position_body(states[account_id])


def position_body(state: AccountState) -> dict[str, Any]:
    pos = state.position
    return {
        "account_id": state.account_id, "balance_fen": pos.balance_fen,
        "amount_due_fen": pos.amount_due_fen, "unbilled_fen": pos.unbilled_fen,
        "dues": [{"bill_month": month_text(d.bill_month), "amount_due_fen": d.amount_due_fen}
                 for d in pos.dues],
        "deposit_fen": state.deposit_fen,
        "last_payment_at": (state.last_payment_at.isoformat()
                            if state.last_payment_at else None),
        "products": [{**product_due_json(p), "billed_fen": p.billed_fen,
                      "credited_fen": p.credited_fen} for p in state.products],
    }
