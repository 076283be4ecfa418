"""What every billing use case shares: the context, the idempotent transaction, checks."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock, ensure_aware
from common.contracts.billing import BALANCE_TOPIC, BalanceCause
from common.errors import Conflict, NotFound
from common.idempotency import IdempotencyKeys, StoredResponse, run_once
from common.outbox import Outbox

from ..adapters import ledger as led
from ..adapters import repository as repo
from ..domain import commands as c
from ..domain.late_fees import LateFeePolicy
from . import balances
from .balances import AccountState, publish_balances

Work = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


@dataclass
class BillingContext:
    engine: AsyncEngine
    outbox: Outbox
    keys: IdempotencyKeys
    clock: Clock
    source: str = "billing-events"
    # Where balance events go: the contract's topic; the bench writes to a topic of its own.
    balance_topic: str = BALANCE_TOPIC
    # Late fees (domain/late_fees.py): off by default; bootstrap sets them from the settings.
    late_fees: LateFeePolicy = field(default_factory=LateFeePolicy)


async def publish(
    ctx: BillingContext, conn: AsyncConnection, accounts: list[str],
    cause: BalanceCause, as_of: datetime, **extra: Any,
) -> dict[str, AccountState]:
    """Balance events for a few accounts, with their states (for the answer)."""
    return await publish_balances(conn, accounts, cause, as_of, source=ctx.source,
                                  occurred_at=ctx.clock.now(), extra=extra,
                                  outbox=ctx.outbox, topic=ctx.balance_topic)


async def publish_many(
    ctx: BillingContext, conn: AsyncConnection, accounts: list[str] | led.Accounts,
    cause: BalanceCause, as_of: datetime, **extra: Any,
) -> int:
    """Balance events for many accounts (a bill run's selection, a CSV chunk): how many."""
    return await balances.publish_many(conn, accounts, cause, as_of, source=ctx.source,
                                       occurred_at=ctx.clock.now(), extra=extra,
                                       outbox=ctx.outbox, topic=ctx.balance_topic)


async def once(
    ctx: BillingContext, scope: str, key: str, cmd: c.Command, work: Work,
    status_code: int = 201,
) -> StoredResponse:
    try:
        async with ctx.engine.begin() as conn:
            return await run_once(ctx.keys, conn, scope, key, cmd, lambda: work(conn),
                                  status_code=status_code)
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
    "reversals_payment_id_key": "the payment was already reversed",
}


def _constraint_name(exc: IntegrityError) -> str | None:
    """asyncpg's UniqueViolationError, wrapped by SQLAlchemy's adapter, names the constraint."""
    for err in (exc.orig, getattr(exc.orig, "orig", None), getattr(exc.orig, "__cause__", None)):
        name = getattr(err, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


async def require(conn: AsyncConnection, column: Any, value: str, what: str) -> None:
    if not await repo.exists(conn, column, value):
        raise NotFound(f"unknown {what} {value!r}", id=value)


async def require_product_of(conn: AsyncConnection, product_id: str, account_id: str) -> None:
    owner = await repo.account_of_product(conn, product_id)
    if owner is None:
        raise NotFound(f"unknown product {product_id!r}", id=product_id)
    if owner != account_id:
        raise Conflict(f"product {product_id!r} is not on account {account_id!r}",
                       product_id=product_id, account_id=account_id)


def as_of(ctx: BillingContext, given: datetime | None) -> datetime:
    return ensure_aware(given) if given is not None else ctx.clock.now()
