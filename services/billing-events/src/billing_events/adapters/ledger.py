"""Set-based reads of many accounts' money at once: a fixed handful of statements whatever
the number of accounts, so a bill run over 100,000 accounts is not 100,000 round trips."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

S = "billing"

# Above this many events the outbox rows go in by COPY (binary, ~2x an unnest insert);
# below it, one INSERT is fewer round trips.
COPY_FROM = 1_000


@dataclass(frozen=True)
class Accounts:
    """Which accounts a set-wise statement covers, as a predicate on an account_id column.

    A handful of ids travel as an array; a bill run's accounts are selected in the database
    by the month's charges and adjustments (both indexed by bill month), so no statement
    carries a 100,000-element array to plan and match row by row."""

    predicate: str  # with {col} for the account_id column it restricts
    params: dict[str, Any]

    def where(self, col: str) -> str:
        return self.predicate.format(col=col)


def listed(account_ids: list[str]) -> Accounts:
    return Accounts("{col} = ANY(CAST(:ids AS text[]))", {"ids": account_ids})


def billed_in(month: date) -> Accounts:
    """Every account with a charge or an adjustment in the bill month."""
    return Accounts(
        f"{{col}} IN (SELECT account_id FROM {S}.charges WHERE bill_month = :bill_month"
        f" UNION SELECT account_id FROM {S}.adjustments WHERE bill_month = :bill_month)",
        {"bill_month": month})


@dataclass
class Ledger:
    """One account's raw money, before allocation (domain.model.position and
    domain.allocation do that)."""

    account_id: str
    customer_id: str
    sequence: int = 0
    # charges + adjustments per (bill month, product id)
    bills: dict[tuple[date, str], int] = field(default_factory=dict)
    credits_fen: int = 0  # payments not reversed + write-offs
    deposit_fen: int = 0
    last_payment_at: datetime | None = None
    product_ids: list[str] = field(default_factory=list)  # every product of the account

    @property
    def by_month(self) -> dict[date, int]:
        months: dict[date, int] = {}
        for (month, _), fen in self.bills.items():
            months[month] = months.get(month, 0) + fen
        return months


async def lock_and_bump(conn: AsyncConnection, accounts: Accounts) -> dict[str, Ledger]:
    """Bump each account's event sequence. The row locks (taken in account order, so two
    multi-account writers cannot deadlock) serialise every writer of an account until commit."""
    rows = await conn.execute(text(f"""
        UPDATE {S}.accounts a SET sequence = a.sequence + 1
        FROM (SELECT account_id FROM {S}.accounts WHERE {accounts.where("account_id")}
              ORDER BY account_id FOR UPDATE) locked
        WHERE a.account_id = locked.account_id
        RETURNING a.account_id, a.customer_id, a.sequence"""), accounts.params)
    return {r.account_id: Ledger(r.account_id, r.customer_id, int(r.sequence)) for r in rows}


async def read_ledgers(conn: AsyncConnection, account_ids: list[str]) -> dict[str, Ledger]:
    """The ledgers without touching the sequence (read-only views)."""
    rows = await conn.execute(text(
        f"SELECT account_id, customer_id, sequence FROM {S}.accounts WHERE account_id = ANY(:ids)"
    ), {"ids": account_ids})
    ledgers = {r.account_id: Ledger(r.account_id, r.customer_id, int(r.sequence)) for r in rows}
    await fill(conn, ledgers, listed(account_ids))
    return ledgers


async def fill(conn: AsyncConnection, ledgers: dict[str, Ledger], accounts: Accounts) -> None:
    """Debits, credits and deposits of `accounts` (the accounts `ledgers` holds)."""
    ids = accounts.where("account_id")
    debits = await conn.execute(text(f"""
        SELECT account_id, bill_month, product_id, sum(amount_fen) AS fen FROM (
            SELECT account_id, bill_month, product_id, amount_fen FROM {S}.charges
             WHERE {ids}
            UNION ALL
            SELECT account_id, bill_month, product_id, amount_fen FROM {S}.adjustments
             WHERE {ids}) d
        GROUP BY account_id, bill_month, product_id"""), accounts.params)
    for r in debits:
        ledgers[r.account_id].bills[(r.bill_month, r.product_id)] = int(r.fen)
    products = await conn.execute(text(f"""
        SELECT account_id, product_id FROM {S}.products WHERE {ids}
         ORDER BY account_id, product_id"""), accounts.params)
    for r in products:
        if r.account_id in ledgers:
            ledgers[r.account_id].product_ids.append(r.product_id)
    credits = await conn.execute(text(f"""
        SELECT account_id, sum(fen) AS fen, max(paid_at) AS last_paid FROM (
            SELECT p.account_id, p.amount_fen AS fen, p.paid_at FROM {S}.payments p
             WHERE {accounts.where("p.account_id")} AND NOT EXISTS (
                   SELECT 1 FROM {S}.reversals r WHERE r.payment_id = p.payment_id)
            UNION ALL
            SELECT account_id, amount_fen, NULL FROM {S}.write_offs
             WHERE {ids}) c
        GROUP BY account_id"""), accounts.params)
    for r in credits:
        ledgers[r.account_id].credits_fen = int(r.fen)
        ledgers[r.account_id].last_payment_at = r.last_paid
    deposits = await conn.execute(text(f"""
        SELECT account_id, sum(amount_fen) AS fen FROM {S}.deposit_movements
         WHERE {ids} GROUP BY account_id"""), accounts.params)
    for r in deposits:
        ledgers[r.account_id].deposit_fen = int(r.fen)


async def customers_json(conn: AsyncConnection, accounts: Accounts) -> dict[str, msgspec.Raw]:
    """Snapshots (CustomerSnapshot JSON) of the accounts' customers, serialised by PostgreSQL
    and passed into the event untouched: decoding 100,000 JSONB values in Python was most of
    a bill run."""
    rows = await conn.execute(text(f"""
        SELECT customer_id, json_build_object(
                 'customer_id', customer_id, 'name', name, 'tier', tier,
                 'star_level', star_level, 'account_manager', account_manager,
                 'contacts', contacts)::text AS snapshot
          FROM {S}.customers WHERE customer_id IN (
               SELECT customer_id FROM {S}.accounts WHERE {accounts.where("account_id")})"""),
        accounts.params)
    return {r.customer_id: msgspec.Raw(r.snapshot.encode()) for r in rows}


async def products_json(conn: AsyncConnection, accounts: Accounts) -> dict[str, msgspec.Raw]:
    """Product snapshots (ProductSnapshot JSON list) per account, in product id order."""
    rows = await conn.execute(text(f"""
        SELECT account_id, json_agg(json_build_object(
                 'product_id', product_id, 'cpno', cpno, 'name', name, 'family', family,
                 'vendor', vendor, 'channel', channel) ORDER BY product_id)::text AS snapshot
          FROM {S}.products WHERE {accounts.where("account_id")}
         GROUP BY account_id"""), accounts.params)
    return {r.account_id: msgspec.Raw(r.snapshot.encode()) for r in rows}


OutboxRow = tuple[UUID, str, str, str, str]  # event_id, topic, key, event_type, payload


async def insert_outbox(conn: AsyncConnection, rows: list[OutboxRow]) -> None:
    """The rows in one statement, or one COPY for many (in the caller's transaction)."""
    if not rows:
        return
    if len(rows) >= COPY_FROM:
        # SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement;
        # COPY bypasses that, so without a statement first it would commit on its own,
        # outside the caller's transaction (a test that rolls back caught it).
        await conn.execute(text("SELECT 1"))
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "outbox", schema_name=S, records=rows,
            columns=["event_id", "topic", "key", "event_type", "payload"])
        return
    cols = list(zip(*rows, strict=True))
    await conn.execute(text(f"""
        INSERT INTO {S}.outbox (event_id, topic, key, event_type, payload)
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:topics AS text[]),
                             CAST(:keys AS text[]), CAST(:types AS text[]),
                             CAST(:payloads AS text[]))"""),
        {"ids": list(cols[0]), "topics": list(cols[1]), "keys": list(cols[2]),
         "types": list(cols[3]), "payloads": list(cols[4])})


async def lock_accounts(conn: AsyncConnection, account_ids: list[str]) -> None:
    """Row locks in account order: a check-then-write (write-off, deduction) sees no
    concurrent change of the same account until it commits."""
    await conn.execute(text(
        f"SELECT 1 FROM {S}.accounts WHERE account_id = ANY(:ids) ORDER BY account_id "
        "FOR UPDATE"), {"ids": sorted(account_ids)})
