"""Set-based reads of many accounts' money at once: a fixed handful of statements whatever
the number of accounts, so a bill run over 100,000 accounts is not 100,000 round trips."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.db import driver

S = "billing"
# Enum members by value: a bill run looks up 100,000s of them, and `Enum(value)` is a
# Python-level call each time.
_FAMILY = {f.value: f for f in ProductFamily}
_TIER = {t.value: t for t in Tier}

@dataclass(frozen=True)
class Accounts:
    """Which accounts a set-wise statement covers, as a predicate on an account_id column.

    A handful of ids travel as an array; a bill run's accounts are selected in the database
    by the month's charges and adjustments (both indexed by bill month), so no statement
    carries a 100,000-element array to plan and match row by row. The predicate's one
    parameter is `$1` (the reads go straight to asyncpg, see `_driver`)."""

    predicate: str  # with {col} for the account_id column it restricts
    arg: Any

    def where(self, col: str) -> str:
        return self.predicate.format(col=col)


def listed(account_ids: list[str]) -> Accounts:
    return Accounts("{col} = ANY($1::text[])", account_ids)


def billed_in(month: date) -> Accounts:
    """Every account with a charge or an adjustment in the bill month."""
    return Accounts(
        f"{{col}} IN (SELECT account_id FROM {S}.charges WHERE bill_month = $1"
        f" UNION SELECT account_id FROM {S}.adjustments WHERE bill_month = $1)", month)


@dataclass
class Ledger:
    """One account's raw money, before allocation (domain.model.position and
    domain.allocation do that), and its products as the balance event shows them."""

    account_id: str
    customer_id: str
    sequence: int = 0
    # charges + adjustments per (bill month, product id)
    bills: dict[tuple[date, str], int] = field(default_factory=dict)
    credits_fen: int = 0  # payments not reversed + write-offs standing (less their lapses)
    standing_write_offs_fen: int = 0  # write-offs less their lapses (domain.write_off_lapse)
    deposit_fen: int = 0
    last_payment_at: datetime | None = None
    product_ids: list[str] = field(default_factory=list)  # every product of the account
    products: list[ProductSnapshot] = field(default_factory=list)  # product id order

    @property
    def by_month(self) -> dict[date, int]:
        months: dict[date, int] = {}
        for (month, _), fen in self.bills.items():
            months[month] = months.get(month, 0) + fen
        return months


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, inside the caller's transaction. The reads of a
    bill run return ~500,000 rows: asyncpg's records, without SQLAlchemy's row objects on
    top, halve the Python time spent on them."""
    return await driver(conn)


async def lock_and_bump(conn: AsyncConnection, accounts: Accounts) -> dict[str, Ledger]:
    """Bump each account's event sequence. The row locks (taken in account order, so two
    multi-account writers cannot deadlock) serialise every writer of an account until commit."""
    rows = await (await _driver(conn)).fetch(f"""
        UPDATE {S}.accounts a SET sequence = a.sequence + 1
        FROM (SELECT account_id FROM {S}.accounts WHERE {accounts.where("account_id")}
              ORDER BY account_id FOR UPDATE) locked
        WHERE a.account_id = locked.account_id
        RETURNING a.account_id, a.customer_id, a.sequence""", accounts.arg)
    return {r[0]: Ledger(r[0], r[1], r[2]) for r in rows}


async def read_ledgers(conn: AsyncConnection, account_ids: list[str]) -> dict[str, Ledger]:
    """The ledgers without touching the sequence (read-only views)."""
    rows = await (await _driver(conn)).fetch(
        f"SELECT account_id, customer_id, sequence FROM {S}.accounts "
        "WHERE account_id = ANY($1::text[])", account_ids)
    ledgers = {r[0]: Ledger(r[0], r[1], r[2]) for r in rows}
    await fill(conn, ledgers, listed(account_ids))
    return ledgers


async def fill(conn: AsyncConnection, ledgers: dict[str, Ledger], accounts: Accounts) -> None:
    """Debits, products, credits and deposits of `accounts` (the accounts `ledgers` holds):
    three statements whatever the number of accounts."""
    pg = await _driver(conn)
    ids = accounts.where("account_id")
    for account_id, month, product_id, fen in await pg.fetch(f"""
        SELECT account_id, bill_month, product_id, sum(amount_fen)::bigint FROM (
            SELECT account_id, bill_month, product_id, amount_fen FROM {S}.charges
             WHERE {ids}
            UNION ALL
            SELECT account_id, bill_month, product_id, amount_fen FROM {S}.adjustments
             WHERE {ids}) d
        GROUP BY account_id, bill_month, product_id""", accounts.arg):
        ledgers[account_id].bills[(month, product_id)] = fen
    for account_id, product_id, cpno, name, family, vendor, channel in await pg.fetch(f"""
        SELECT account_id, product_id, cpno, name, family, vendor, channel FROM {S}.products
         WHERE {ids} ORDER BY account_id, product_id""", accounts.arg):
        lg = ledgers.get(account_id)
        if lg is not None:
            lg.product_ids.append(product_id)
            lg.products.append(ProductSnapshot(
                product_id=product_id, cpno=cpno, name=name, family=_FAMILY[family],
                vendor=vendor, channel=channel))
    # Credits (payments not reversed, write-offs less their lapses) and the deposit held, in
    # one pass.
    for account_id, credits, last_paid, deposit, written_off in await pg.fetch(f"""
        SELECT account_id, sum(credit)::bigint, max(paid_at), sum(deposit)::bigint,
               sum(written_off)::bigint FROM (
            SELECT p.account_id, p.amount_fen AS credit, p.paid_at, 0 AS deposit,
                   0 AS written_off
              FROM {S}.payments p
             WHERE {accounts.where("p.account_id")} AND NOT EXISTS (
                   SELECT 1 FROM {S}.reversals r WHERE r.payment_id = p.payment_id)
            UNION ALL
            SELECT account_id, amount_fen, NULL, 0, amount_fen FROM {S}.write_offs
             WHERE {ids}
            UNION ALL
            SELECT account_id, -amount_fen, NULL, 0, -amount_fen FROM {S}.write_off_lapses
             WHERE {ids}
            UNION ALL
            SELECT account_id, 0, NULL, amount_fen, 0 FROM {S}.deposit_movements
             WHERE {ids}) c
        GROUP BY account_id""", accounts.arg):
        lg = ledgers[account_id]
        lg.credits_fen, lg.last_payment_at, lg.deposit_fen = credits, last_paid, deposit
        lg.standing_write_offs_fen = written_off


async def customers(conn: AsyncConnection, accounts: Accounts) -> dict[str, CustomerSnapshot]:
    """CustomerSnapshot of the accounts' customers. Manager and contacts are JSONB: their
    text goes into the event's encoding as it is (`msgspec.Raw`), never decoded in Python
    (decoding 100,000 JSONB values was most of a bill run once)."""
    rows = await (await _driver(conn)).fetch(f"""
        SELECT customer_id, name, tier, star_level, account_manager::text, contacts::text,
               (created_at AT TIME ZONE 'Asia/Shanghai')::date, region
          FROM {S}.customers WHERE customer_id IN (
               SELECT customer_id FROM {S}.accounts WHERE {accounts.where("account_id")})""",
        accounts.arg)
    return {r[0]: CustomerSnapshot(
        customer_id=r[0], name=r[1], tier=_TIER[r[2]], star_level=r[3],
        account_manager=cast(Person, msgspec.Raw(r[4].encode())),
        contacts=cast(tuple[Person, ...], msgspec.Raw(r[5].encode())),
        opened_on=r[6], region=r[7],  # opened_on: the rating's tenure (docs/rating.md)
    ) for r in rows}


async def lock_accounts(conn: AsyncConnection, account_ids: list[str]) -> None:
    """Row locks in account order: a check-then-write (write-off, deduction) sees no
    concurrent change of the same account until it commits."""
    await conn.execute(text(
        f"SELECT 1 FROM {S}.accounts WHERE account_id = ANY(:ids) ORDER BY account_id "
        "FOR UPDATE"), {"ids": sorted(account_ids)})
