"""billing's use cases: one function per command, each one transaction.

A change of balance and its balance event are written in the same transaction (outbox).
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock, business_date, ensure_aware, parse_bill_month
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.envelope import wrap
from common.errors import Conflict, NotFound, Unprocessable
from common.idempotency import IdempotencyKeys, StoredResponse, run_once
from common.logging import correlation_id
from common.outbox import Outbox

from ..adapters import repository as repo
from ..adapters import tables as t
from ..domain import commands as c
from ..domain.model import AccountPosition, position


@dataclass
class BillingContext:
    engine: AsyncEngine
    outbox: Outbox
    keys: IdempotencyKeys
    clock: Clock
    source: str = "billing-events"


async def create_customer(ctx: BillingContext, cmd: c.CreateCustomer) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        if await repo.exists(conn, t.customers.c.customer_id, cmd.customer_id):
            raise Conflict(f"customer {cmd.customer_id} already exists", id=cmd.customer_id)
        row = cmd.model_dump(mode="json")
        await conn.execute(insert(t.customers).values(**row))
        return row

    return await _once(ctx, "customer", cmd.customer_id, cmd, work)


async def open_account(ctx: BillingContext, cmd: c.OpenAccount) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await _require(conn, t.customers.c.customer_id, cmd.customer_id, "customer")
        if await repo.exists(conn, t.accounts.c.account_id, cmd.account_id):
            raise Conflict(f"account {cmd.account_id} already exists", id=cmd.account_id)
        await conn.execute(insert(t.accounts).values(**cmd.model_dump()))
        return cmd.model_dump(mode="json")

    return await _once(ctx, "account", cmd.account_id, cmd, work)


async def add_product(ctx: BillingContext, cmd: c.AddProduct) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await _require(conn, t.accounts.c.account_id, cmd.account_id, "account")
        if await repo.exists(conn, t.products.c.product_id, cmd.product_id):
            raise Conflict(f"product {cmd.product_id} already exists", id=cmd.product_id)
        if await repo.exists(conn, t.products.c.cpno, cmd.cpno):
            raise Conflict(f"product number (CPNO) {cmd.cpno} is taken", cpno=cmd.cpno)
        await conn.execute(insert(t.products).values(**cmd.model_dump(mode="json")))
        return cmd.model_dump(mode="json")

    return await _once(ctx, "product", cmd.product_id, cmd, work)


async def post_charge(ctx: BillingContext, cmd: c.PostCharge) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await _require(conn, t.accounts.c.account_id, cmd.account_id, "account")
        await _require_product_of(conn, cmd.product_id, cmd.account_id)
        month = parse_bill_month(cmd.bill_month)
        # Shared: charges of one month run side by side, but a bill run of that month waits
        # for this one to commit (and this one waits for a bill run already under way).
        await repo.lock_bill_month(conn, month, shared=True)
        if month in await repo.closed_months(conn):
            raise Conflict(f"bill month {cmd.bill_month} is closed by its bill run",
                           bill_month=cmd.bill_month)
        await conn.execute(insert(t.charges).values(
            charge_id=cmd.charge_id, account_id=cmd.account_id, product_id=cmd.product_id,
            bill_month=month, amount_fen=cmd.amount_fen))
        pos = await publish_balance(ctx, conn, cmd.account_id, BalanceCause.CHARGE,
                                    _as_of(ctx, cmd.as_of))
        return {**cmd.model_dump(mode="json"), "account": _position_body(cmd.account_id, pos)}

    return await _once(ctx, "charge", cmd.charge_id, cmd, work)


async def run_bill(ctx: BillingContext, cmd: c.RunBill) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        month = parse_bill_month(cmd.bill_month)
        as_of = _as_of(ctx, cmd.as_of)
        today = business_date(as_of)
        if month >= today.replace(day=1):
            raise Unprocessable(
                f"bill month {cmd.bill_month} has not ended as of {as_of.isoformat()} "
                f"(business date {today.isoformat()}, Asia/Shanghai); a bill run can only "
                "close a month that is over",
                bill_month=cmd.bill_month, as_of=as_of.isoformat())
        # Exclusive: wait for the month's charges still in flight, keep new ones out.
        await repo.lock_bill_month(conn, month, shared=False)
        if month in await repo.closed_months(conn):
            raise Conflict(f"bill month {cmd.bill_month} already had its bill run",
                           bill_month=cmd.bill_month)
        accounts = await repo.accounts_billed_in(conn, month)
        await conn.execute(insert(t.bill_runs).values(
            bill_run_id=cmd.bill_run_id, bill_month=month, as_of=as_of,
            accounts_billed=len(accounts)))
        for account_id in accounts:
            await publish_balance(ctx, conn, account_id, BalanceCause.BILL_RUN, as_of,
                                  closed_bill_month=cmd.bill_month)
        return {**cmd.model_dump(mode="json"), "as_of": as_of.isoformat(),
                "accounts_billed": len(accounts)}

    return await _once(ctx, "bill_run", cmd.bill_run_id, cmd, work)


async def record_payment(ctx: BillingContext, cmd: c.RecordPayment) -> StoredResponse:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await _require(conn, t.accounts.c.account_id, cmd.account_id, "account")
        paid_at = _as_of(ctx, cmd.paid_at)
        await conn.execute(insert(t.payments).values(
            payment_id=cmd.payment_id, account_id=cmd.account_id, amount_fen=cmd.amount_fen,
            paid_at=paid_at))
        pos = await publish_balance(ctx, conn, cmd.account_id, BalanceCause.PAYMENT, paid_at)
        return {**cmd.model_dump(mode="json"), "paid_at": paid_at.isoformat(),
                "account": _position_body(cmd.account_id, pos)}

    return await _once(ctx, "payment", cmd.payment_id, cmd, work)


async def account_view(ctx: BillingContext, account_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        await _require(conn, t.accounts.c.account_id, account_id, "account")
        return _position_body(account_id, await _position(conn, account_id))


async def publish_balance(
    ctx: BillingContext, conn: AsyncConnection, account_id: str, cause: BalanceCause,
    as_of: datetime, closed_bill_month: str | None = None,
) -> AccountPosition:
    """Write the account's balance event to the outbox, in the caller's transaction."""
    sequence = await repo.next_sequence(conn, account_id)  # locks the account row first
    pos = await _position(conn, account_id)
    event = BalanceChanged(
        account_id=account_id, sequence=sequence, cause=cause, as_of=as_of,
        balance_fen=pos.balance_fen, amount_due_fen=pos.amount_due_fen,
        dues=tuple(BillMonthDue(bill_month=_month_text(d.bill_month),
                                amount_due_fen=d.amount_due_fen) for d in pos.dues),
        unbilled_fen=pos.unbilled_fen, closed_bill_month=closed_bill_month,
        customer=await repo.customer_of(conn, account_id),
        products=await repo.products_of(conn, account_id),
    )
    await ctx.outbox.add(conn, event.topic, wrap(
        event, key=account_id, source=ctx.source, occurred_at=ctx.clock.now(),
        correlation_id=correlation_id.get()))
    return pos


async def _position(conn: AsyncConnection, account_id: str) -> AccountPosition:
    closed = await repo.closed_months(conn)
    by_month = await repo.charges_by_month(conn, account_id)
    billed = {m: v for m, v in by_month.items() if m in closed}
    unbilled = sum(v for m, v in by_month.items() if m not in closed)
    return position(billed, unbilled, await repo.paid_total(conn, account_id))


def _position_body(account_id: str, pos: AccountPosition) -> dict[str, Any]:
    return {
        "account_id": account_id, "balance_fen": pos.balance_fen,
        "amount_due_fen": pos.amount_due_fen, "unbilled_fen": pos.unbilled_fen,
        "dues": [{"bill_month": _month_text(d.bill_month), "amount_due_fen": d.amount_due_fen}
                 for d in pos.dues],
    }


async def _once(
    ctx: BillingContext, scope: str, key: str, cmd: c.Command, work: Any
) -> StoredResponse:
    try:
        async with ctx.engine.begin() as conn:
            return await run_once(ctx.keys, conn, scope, key, cmd, lambda: work(conn))
    except IntegrityError as exc:
        # A concurrent request got past the `exists` checks too and committed first; the
        # transaction is rolled back, so nothing of this one is written.
        if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        constraint = _constraint_name(exc)
        what = _UNIQUE_CLASHES.get(constraint or "", f"{scope} {key!r} already exists")
        raise Conflict(f"{what} (written by a concurrent request); nothing was changed",
                       id=key, constraint=constraint) from exc


_UNIQUE_VIOLATION = "23505"
_UNIQUE_CLASHES = {
    "products_cpno_key": "the product number (CPNO) is taken",
    "bill_runs_bill_month_key": "the bill month already had its bill run",
}


def _constraint_name(exc: IntegrityError) -> str | None:
    """asyncpg's UniqueViolationError, wrapped by SQLAlchemy's adapter, names the constraint."""
    for err in (exc.orig, getattr(exc.orig, "orig", None), getattr(exc.orig, "__cause__", None)):
        name = getattr(err, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


async def _require(conn: AsyncConnection, column: Any, value: str, what: str) -> None:
    if not await repo.exists(conn, column, value):
        raise NotFound(f"unknown {what} {value!r}", id=value)


async def _require_product_of(conn: AsyncConnection, product_id: str, account_id: str) -> None:
    owner = await repo.account_of_product(conn, product_id)
    if owner is None:
        raise NotFound(f"unknown product {product_id!r}", id=product_id)
    if owner != account_id:
        raise Conflict(f"product {product_id!r} is not on account {account_id!r}",
                       product_id=product_id, account_id=account_id)


def _as_of(ctx: BillingContext, given: datetime | None) -> datetime:
    return ensure_aware(given) if given is not None else ctx.clock.now()


def _month_text(month: date) -> str:
    return month.strftime("%Y-%m")
