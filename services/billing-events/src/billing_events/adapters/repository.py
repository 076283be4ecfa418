"""Reads and writes of billing's tables; one place for the SQL."""

from datetime import date
from typing import Any

from sqlalchemy import exists as sql_exists
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.snapshots import CustomerSnapshot, Person, ProductSnapshot

from . import tables as t


async def exists(conn: AsyncConnection, column: Any, value: str) -> bool:
    return bool(await conn.scalar(select(sql_exists().where(column == value))))


async def lock_bill_month(conn: AsyncConnection, month: date, *, shared: bool) -> None:
    """Transaction-scoped advisory lock on one bill month, released at commit or rollback.

    Charges take it shared (they may run side by side); the bill run takes it exclusive, so it
    waits for every charge of that month still in flight and no new one starts until it ends.
    """
    lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await conn.execute(
        text(f"SELECT {lock}(hashtext(:key))"),
        {"key": f"billing.bill_month:{month.strftime('%Y-%m')}"},
    )


async def closed_months(conn: AsyncConnection) -> set[date]:
    return set((await conn.execute(select(t.bill_runs.c.bill_month))).scalars())


async def next_sequence(conn: AsyncConnection, account_id: str) -> int:
    """Bump the account's event sequence; the row lock also serialises writers per account."""
    seq = await conn.scalar(
        update(t.accounts)
        .where(t.accounts.c.account_id == account_id)
        .values(sequence=t.accounts.c.sequence + 1)
        .returning(t.accounts.c.sequence)
    )
    assert seq is not None
    return int(seq)


async def customer_of(conn: AsyncConnection, account_id: str) -> CustomerSnapshot:
    c = t.customers
    row = (
        await conn.execute(
            select(c).join(t.accounts, t.accounts.c.customer_id == c.c.customer_id)
            .where(t.accounts.c.account_id == account_id)
        )
    ).one()
    return CustomerSnapshot(
        customer_id=row.customer_id, name=row.name, tier=row.tier, star_level=row.star_level,
        account_manager=Person(**row.account_manager),
        contacts=tuple(Person(**p) for p in row.contacts),
    )


async def products_of(conn: AsyncConnection, account_id: str) -> tuple[ProductSnapshot, ...]:
    p = t.products
    rows = await conn.execute(
        select(p.c.product_id, p.c.cpno, p.c.name, p.c.family, p.c.vendor)
        .where(p.c.account_id == account_id).order_by(p.c.product_id)
    )
    return tuple(ProductSnapshot(**r._mapping) for r in rows)


async def charges_by_month(conn: AsyncConnection, account_id: str) -> dict[date, int]:
    c = t.charges
    rows = await conn.execute(
        select(c.c.bill_month, func.sum(c.c.amount_fen))
        .where(c.c.account_id == account_id).group_by(c.c.bill_month)
    )
    return {month: int(total) for month, total in rows}


async def paid_total(conn: AsyncConnection, account_id: str) -> int:
    p = t.payments
    total = await conn.scalar(
        select(func.coalesce(func.sum(p.c.amount_fen), 0)).where(p.c.account_id == account_id)
    )
    return int(total or 0)


async def accounts_billed_in(conn: AsyncConnection, month: date) -> list[str]:
    c = t.charges
    rows = await conn.execute(
        select(c.c.account_id).where(c.c.bill_month == month).distinct().order_by(c.c.account_id)
    )
    return list(rows.scalars())


async def account_of_product(conn: AsyncConnection, product_id: str) -> str | None:
    p = t.products
    return await conn.scalar(select(p.c.account_id).where(p.c.product_id == product_id))
