"""Reads and writes of billing's tables; one place for the SQL."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy import exists as sql_exists
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.bill_month import ChargeMoment
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


async def is_closed(conn: AsyncConnection, month: date) -> bool:
    return await exists(conn, t.bill_runs.c.bill_month, month)  # type: ignore[arg-type]


async def last_charge_of(conn: AsyncConnection, month: date) -> ChargeMoment | None:
    """The charge of a bill month recorded last (id, business moment), if any has one."""
    c = t.charges
    row = (await conn.execute(
        select(c.c.charge_id, c.c.charged_at)
        .where(c.c.bill_month == month, c.c.charged_at.is_not(None))
        .order_by(c.c.charged_at.desc()).limit(1))).first()
    return None if row is None else ChargeMoment(row[0], row[1])


async def tune_for_bill_run(conn: AsyncConnection) -> None:
    """For this transaction only: room for the sorts and hashes over a month's accounts
    (the default 4 MB spilled them to disk). No JIT either, as on every connection of ours
    (`common.db.SERVER_SETTINGS`): its compile time grows with the tables' estimated cost
    but is never won back by statements that run once."""
    await conn.execute(text("SET LOCAL work_mem = '64MB'"))


async def account_of_product(conn: AsyncConnection, product_id: str) -> str | None:
    p = t.products
    return await conn.scalar(select(p.c.account_id).where(p.c.product_id == product_id))


async def accounts_of_customer(conn: AsyncConnection, customer_id: str) -> list[str]:
    a = t.accounts
    rows = await conn.execute(select(a.c.account_id).where(a.c.customer_id == customer_id)
                              .order_by(a.c.account_id))
    return list(rows.scalars())


async def payment(conn: AsyncConnection, payment_id: str) -> Row[Any] | None:
    p = t.payments
    return (await conn.execute(select(p).where(p.c.payment_id == payment_id))).first()


async def product_month_total(
    conn: AsyncConnection, account_id: str, product_id: str, month: date
) -> int:
    """What one product was billed for one month so far: charges plus adjustments."""
    c, a = t.charges, t.adjustments
    charged = await conn.scalar(select(func.coalesce(func.sum(c.c.amount_fen), 0)).where(
        c.c.account_id == account_id, c.c.product_id == product_id, c.c.bill_month == month))
    adjusted = await conn.scalar(select(func.coalesce(func.sum(a.c.amount_fen), 0)).where(
        a.c.account_id == account_id, a.c.product_id == product_id, a.c.bill_month == month))
    return int(charged or 0) + int(adjusted or 0)


async def row_of(conn: AsyncConnection, column: Any, value: str,
                 for_update: bool = False) -> Row[Any] | None:
    query = select(column.table).where(column == value)
    return (await conn.execute(query.with_for_update() if for_update else query)).first()


async def standing_write_offs(
    conn: AsyncConnection, account_ids: list[str]
) -> dict[str, tuple[int, datetime]]:
    """Each account's write-offs less their lapses, where some stand (> 0), with its latest
    write-off's moment: the only accounts a payment or a credit note can make lapse."""
    rows = await conn.execute(text("""
        SELECT account_id, sum(fen)::bigint, max(written_off_at) FROM (
            SELECT account_id, amount_fen AS fen, written_off_at FROM billing.write_offs
             WHERE account_id = ANY(:ids)
            UNION ALL
            SELECT account_id, -amount_fen, NULL FROM billing.write_off_lapses
             WHERE account_id = ANY(:ids)) w
        GROUP BY account_id HAVING sum(fen) > 0"""), {"ids": account_ids})
    return {r[0]: (int(r[1]), r[2]) for r in rows}


async def lapsed_by_payment(conn: AsyncConnection, payment_id: str) -> int:
    """What the payment's arrival made the write-offs lapse (net of lapses undone since)."""
    found = await conn.scalar(text(
        "SELECT coalesce(sum(amount_fen), 0)::bigint FROM billing.write_off_lapses "
        "WHERE payment_id = :p"), {"p": payment_id})
    return int(found or 0)
