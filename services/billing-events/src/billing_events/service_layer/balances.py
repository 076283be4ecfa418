"""Balance events, written to the outbox set-wise: one code path for one account (a payment)
and for 100,000 (a bill run), so both say exactly the same thing."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.billing import (
    BALANCE_TOPIC,
    BalanceCause,
    BalanceChanged,
    BillMonthDue,
    ProductDue,
)
from common.contracts.bounds import FEN_LIMIT
from common.contracts.snapshots import CustomerSnapshot, ProductSnapshot
from common.envelope import to_builtins, to_bytes, wrap
from common.errors import Unprocessable
from common.ids import new_event_id
from common.logging import correlation_id
from common.outbox import COPY_FROM, Outbox, OutboxRow

from ..adapters import ledger as led
from ..adapters import tables as t
from ..domain.allocation import ProductPosition, product_positions
from ..domain.model import AccountPosition, position


class AccountState(NamedTuple):
    """An account's position plus what is held apart from it (a NamedTuple: a bill run makes
    100,000 of them)."""

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
    bills: dict[tuple[date, str], int] = {}  # closed months' bills
    open_bills: dict[str, int] = {}  # per product, open months
    billed: dict[date, int] = {}  # per closed month
    for bill, fen in ledger.bills.items():  # one pass: a bill run does this 100,000 times
        month, product_id = bill
        if month in closed:
            bills[bill] = fen
            billed[month] = billed.get(month, 0) + fen
        else:
            open_bills[product_id] = open_bills.get(product_id, 0) + fen
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
    conn: AsyncConnection, accounts: list[str], cause: BalanceCause, as_of: datetime, *,
    source: str, occurred_at: datetime, extra: dict[str, Any] | None = None,
    outbox: Outbox, topic: str = BALANCE_TOPIC,
) -> dict[str, AccountState]:
    """Bump each account's sequence and write its balance event to the outbox, in the
    caller's transaction; the accounts' states, for the caller's answer. `extra` adds
    contract fields (closed_bill_month, deduction)."""
    states: dict[str, AccountState] = {}
    ids = sorted(set(accounts))
    with gc_paused(len(ids) >= BULK):  # a customer's master data may reach many accounts
        await _publish(conn, led.listed(ids), cause, as_of,
                       _EnvelopeParts(source, occurred_at, correlation_id.get(), topic),
                       extra or {}, outbox, states)
    return states


async def publish_many(
    conn: AsyncConnection, accounts: list[str] | led.Accounts, cause: BalanceCause,
    as_of: datetime, *, source: str, occurred_at: datetime,
    extra: dict[str, Any] | None = None, outbox: Outbox, topic: str = BALANCE_TOPIC,
) -> int:
    """`publish_balances` for many accounts (a bill run's selection, a CSV chunk's ids),
    without keeping their states: how many events were written.

    For a selection (a bill run) or `BULK` ids and more, the cyclic garbage collector is
    paused throughout (`gc_paused`): the pass makes millions of objects that stay alive
    until it ends (ledgers, customers, states, rows), and every collection would rescan
    them for nothing, since reference counting frees them. They are all gone when
    `_publish` returns, so the collection that follows the pause finds little."""
    scope = led.listed(sorted(set(accounts))) if isinstance(accounts, list) else accounts
    with gc_paused(not isinstance(accounts, list) or len(accounts) >= BULK):
        return await _publish(conn, scope, cause, as_of,
                              _EnvelopeParts(source, occurred_at, correlation_id.get(), topic),
                              extra or {}, outbox, None)


async def _publish(
    conn: AsyncConnection, scope: led.Accounts, cause: BalanceCause, as_of: datetime,
    envelope: "_EnvelopeParts", extra: dict[str, Any], outbox: Outbox,
    states: dict[str, AccountState] | None,
) -> int:
    """The one builder of balance events, for one account or a bill run of 100,000: the
    database hands over rows (ledgers, products, customers: five reads whatever the number
    of accounts), Python allocates the credits (domain/) and writes each event whole
    (`balance_payload`, `_EnvelopeParts`), and the rows go in through the one outbox writer
    (one INSERT, or a COPY for many, streamed while they are built), which wakes the relay
    after commit. `states`, if given, receives each account's state."""
    ledgers = await led.lock_and_bump(conn, scope)
    await led.fill(conn, ledgers, scope)
    closed = await closed_months(conn)
    customers = await led.customers(conn, scope)

    def build() -> Iterator[OutboxRow]:
        for account_id, lg in ledgers.items():
            state = state_of(lg, closed)
            if states is not None:
                states[account_id] = state
            yield envelope.row(account_id, balance_payload(
                state, cause, as_of, customers[lg.customer_id], tuple(lg.products),
                billed(lg, extra)))

    # Many rows are streamed to the outbox's COPY as they are built (PostgreSQL inserts
    # while Python builds).
    await outbox.add_rows(conn, build() if len(ledgers) >= COPY_FROM else list(build()))
    return len(ledgers)


def billed(lg: led.Ledger, extra: dict[str, Any]) -> dict[str, Any]:
    """A bill run's event also says what the closed month billed the account (the rating
    model's monthly spend, docs/rating.md)."""
    month = extra.get("closed_bill_month")
    if not month:
        return extra
    first = date.fromisoformat(f"{month}-01")
    return {**extra, "billed_fen": sum(f for (m, _), f in lg.bills.items() if m == first)}


BULK = 1_000  # accounts from which a publish is a bulk one (a bill run, a CSV chunk)


@contextmanager
def gc_paused(bulk: bool) -> Iterator[None]:
    """No cyclic garbage collection while a bulk publish runs (`publish_many`): with the
    collector paused the build took half the CPU (20,000 accounts, measured under load).
    Other work of the process only defers its collections by these seconds."""
    if not bulk or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def balance_payload(
    state: AccountState, cause: BalanceCause, as_of: datetime, customer: CustomerSnapshot,
    products: tuple[ProductSnapshot, ...], extra: dict[str, Any],
) -> BalanceChanged:
    """The account's BalanceChanged (the contract's struct, encoded by `to_bytes`). `extra`
    adds contract fields (closed_bill_month, deduction). The snapshots come from
    adapters/ledger.py, the customer's JSONB parts as `msgspec.Raw` (encoded verbatim)."""
    pos = state.position
    _within_contract(state)
    return BalanceChanged(
        account_id=state.account_id, sequence=state.sequence, cause=cause, as_of=as_of,
        balance_fen=pos.balance_fen, amount_due_fen=pos.amount_due_fen,
        dues=tuple(BillMonthDue(bill_month=month_text(d.bill_month),
                                amount_due_fen=d.amount_due_fen) for d in pos.dues),
        unbilled_fen=pos.unbilled_fen,
        customer=customer, products=products,
        deposit_fen=state.deposit_fen, last_payment_at=state.last_payment_at,
        product_dues=tuple(product_due(p) for p in state.products), **extra,
    )


def _within_contract(state: AccountState) -> None:
    """Every figure of the event within the contract's ±FEN_LIMIT: beyond it every consumer
    would dead-letter the account's events, and the account (its new products too) would drop
    out of credit control unnoticed. The write that would take it there is refused (422,
    rolled back) instead."""
    pos = state.position
    figures = (pos.balance_fen, pos.amount_due_fen, pos.unbilled_fen, state.deposit_fen)
    if (max(figures) > FEN_LIMIT or min(figures) < -FEN_LIMIT
            or any(abs(p.unbilled_fen) > FEN_LIMIT or abs(p.amount_due_fen) > FEN_LIMIT
                   for p in state.products)):
        raise Unprocessable(
            f"account {state.account_id} would owe or hold more than {FEN_LIMIT} fen "
            f"(balance {pos.balance_fen}, amount due {pos.amount_due_fen}, unbilled "
            f"{pos.unbilled_fen}, deposit {state.deposit_fen}): beyond what balance events "
            "carry", account_id=state.account_id, limit_fen=FEN_LIMIT)


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
    topic: str = BALANCE_TOPIC

    def row(self, key: str, payload: BalanceChanged) -> OutboxRow:
        envelope = wrap(payload, key=key, source=self.source, occurred_at=self.occurred_at,
                        correlation_id=self.correlation_id, event_id=new_event_id())
        return OutboxRow(envelope.event_id, self.topic, key, BalanceChanged.event_type,
                         to_bytes(envelope))


@cache
def month_text(month: date) -> str:
    """YYYY-MM; cached: a bill run writes the same few months 100,000s of times."""
    return month.strftime("%Y-%m")


