"""Balance events, written to the outbox set-wise: one code path for one account (a payment)
and for 100,000 (a bill run), so both say exactly the same thing."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.billing import (
    BALANCE_TOPIC,
    BalanceCause,
    BalanceChanged,
    BillMonthDue,
    ProductDue,
)
from common.contracts.snapshots import CustomerSnapshot, ProductSnapshot
from common.envelope import to_builtins, to_bytes, wrap
from common.logging import correlation_id

from ..adapters import ledger as led
from ..adapters import tables as t
from ..domain.allocation import ProductPosition, product_positions
from ..domain.model import AccountPosition, position


@dataclass(frozen=True)
class AccountState:
    """An account's position plus what is held apart from it."""

    account_id: str
    sequence: int
    position: AccountPosition
    deposit_fen: int
    last_payment_at: datetime | None
    products: tuple[ProductPosition, ...] = ()  # each product's share, product id order


async def closed_months(conn: AsyncConnection) -> set[date]:
    return set((await conn.execute(select(t.bill_runs.c.bill_month))).scalars())


def state_of(ledger: led.Ledger, closed: set[date]) -> AccountState:
    """The account's position and its products' shares, from the same totals: the products'
    dues add up to the account's per month (the allocation is the same oldest-first walk,
    only finer: domain/allocation.py)."""
    bills = {b: v for b, v in ledger.bills.items() if b[0] in closed}
    open_bills: dict[str, int] = {}
    for (month, product_id), fen in ledger.bills.items():
        if month not in closed:
            open_bills[product_id] = open_bills.get(product_id, 0) + fen
    billed: dict[date, int] = {}
    for (month, _), fen in bills.items():
        billed[month] = billed.get(month, 0) + fen
    return AccountState(ledger.account_id, ledger.sequence,
                        position(billed, sum(open_bills.values()), ledger.credits_fen),
                        ledger.deposit_fen, ledger.last_payment_at,
                        product_positions(bills, open_bills, ledger.credits_fen,
                                          ledger.product_ids))


async def current_states(conn: AsyncConnection, account_ids: list[str]) -> dict[str, AccountState]:
    """Positions without publishing (views, checks before a write)."""
    closed = await closed_months(conn)
    ledgers = await led.read_ledgers(conn, account_ids)
    return {a: state_of(lg, closed) for a, lg in ledgers.items()}


async def publish_balances(
    conn: AsyncConnection, accounts: list[str] | led.Accounts, cause: BalanceCause,
    as_of: datetime, *,
    source: str, occurred_at: datetime, extra: dict[str, Any] | None = None,
) -> dict[str, AccountState]:
    """Bump each account's sequence and write its balance event to the outbox, in the
    caller's transaction. `accounts`: a few ids, or a selection the database makes (a bill
    run's). `extra` adds contract fields (closed_bill_month, deduction)."""
    scope = led.listed(sorted(set(accounts))) if isinstance(accounts, list) else accounts
    ledgers = await led.lock_and_bump(conn, scope)
    await led.fill(conn, ledgers, scope)
    closed = await closed_months(conn)
    customers = await led.customers_json(conn, scope)
    products = await led.products_json(conn, scope)
    envelope = _EnvelopeParts(source, occurred_at, correlation_id.get())
    states: dict[str, AccountState] = {}
    rows: list[led.OutboxRow] = []
    for account_id, lg in ledgers.items():
        state = states[account_id] = state_of(lg, closed)
        payload = balance_payload(state, cause, as_of, customers[lg.customer_id],
                                  products.get(account_id, _NO_PRODUCTS), extra or {})
        rows.append(envelope.row(account_id, payload))
    await led.insert_outbox(conn, rows)
    return states


_NO_PRODUCTS = msgspec.Raw(b"[]")
# A snapshot as the contract's struct, or as the JSON PostgreSQL already wrote for it
# (adapters/ledger.py): decoding 100,000 JSONB values in Python was most of a bill run, so
# a bill run's snapshots go into the event's encoding as they are.
Snapshot = CustomerSnapshot | msgspec.Raw
Snapshots = tuple[ProductSnapshot, ...] | msgspec.Raw


def balance_payload(
    state: AccountState, cause: BalanceCause, as_of: datetime, customer: Snapshot,
    products: Snapshots, extra: dict[str, Any],
) -> BalanceChanged:
    """The account's BalanceChanged (the contract's struct, encoded by `to_bytes`). `extra`
    adds contract fields (closed_bill_month, deduction)."""
    pos = state.position
    return BalanceChanged(
        account_id=state.account_id, sequence=state.sequence, cause=cause, as_of=as_of,
        balance_fen=pos.balance_fen, amount_due_fen=pos.amount_due_fen,
        dues=tuple(BillMonthDue(bill_month=month_text(d.bill_month),
                                amount_due_fen=d.amount_due_fen) for d in pos.dues),
        unbilled_fen=pos.unbilled_fen,
        # Raw JSON is encoded verbatim: the struct only ever goes to `to_bytes` from here.
        customer=cast(CustomerSnapshot, customer),
        products=cast(tuple[ProductSnapshot, ...], products),
        deposit_fen=state.deposit_fen, last_payment_at=state.last_payment_at,
        product_dues=tuple(product_due(p) for p in state.products), **extra,
    )


def product_due(p: ProductPosition) -> ProductDue:
    """One ProductDue of the contract."""
    return ProductDue(
        product_id=p.product_id, amount_due_fen=p.amount_due_fen,
        dues=tuple(BillMonthDue(bill_month=month_text(d.bill_month),
                                amount_due_fen=d.amount_due_fen) for d in p.dues),
        unbilled_fen=p.unbilled_fen)


def product_due_json(p: ProductPosition) -> dict[str, Any]:
    """One ProductDue of the contract, as JSON (the HTTP views)."""
    json: dict[str, Any] = to_builtins(product_due(p))
    return json


@dataclass(frozen=True)
class _EnvelopeParts:
    source: str
    occurred_at: datetime
    correlation_id: str | None

    def row(self, key: str, payload: BalanceChanged) -> led.OutboxRow:
        envelope = wrap(payload, key=key, source=self.source, occurred_at=self.occurred_at,
                        correlation_id=self.correlation_id)
        return (envelope.event_id, BALANCE_TOPIC, key, BalanceChanged.event_type,
                to_bytes(envelope).decode())


def month_text(month: date) -> str:
    return month.strftime("%Y-%m")
