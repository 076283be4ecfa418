"""Bulk load from CSV (docs/billing.md, "CSV format"): each row is checked with the same
command models as the HTTP API, references are checked set-wise, good rows are written a
chunk at a time with one statement per table, and every rejected row is reported with its
row number and reason. Ids already loaded are skipped, so an import can be run again."""

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import parse_bill_month
from common.contracts.billing import BalanceCause

from ..adapters.ledger import lock_accounts
from ..adapters.repository import lock_bill_month
from ..domain import commands as c
from ..domain.bill_month import charge_moment, closed_month_refusal
from . import write_off_lapses as lapses
from .context import BillingContext, publish_many

S = "billing"
CHUNK = 5_000

HEADERS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "tier", "star_level", "manager_name", "manager_phone",
                  "contacts", "region"),
    "accounts": ("account_id", "customer_id"),
    "products": ("product_id", "account_id", "cpno", "name", "family", "vendor", "channel"),
    "charges": ("charge_id", "account_id", "product_id", "bill_month", "amount_fen"),
    "payments": ("payment_id", "account_id", "amount_fen", "paid_at"),
}


# Columns added after a kind's first version, last in its header: a file without them
# (written before they existed) still loads, as if they were empty.
ADDED: dict[str, tuple[str, ...]] = {"customers": ("region",)}


@dataclass
class ImportReport:
    kind: str
    loaded: int = 0
    skipped: int = 0  # already there (same id): a re-run
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)


def kind_of(header: list[str]) -> str:
    for kind, columns in HEADERS.items():
        if tuple(header) in (columns, columns[:len(columns) - len(ADDED.get(kind, ()))]):
            return kind
    known = "; ".join(f"{k}: {','.join(v)}" for k, v in HEADERS.items())
    raise ValueError(f"unknown CSV header {','.join(header)!r}; expected one of {known}")


def _int(value: str) -> int | str:
    """Only plain integer text becomes an int: '12.50' stays text and fails as fen."""
    stripped = value.strip()
    return int(stripped) if stripped.lstrip("-").isdigit() and stripped.isascii() else value


def _none(value: str) -> str | None:
    return value if value != "" else None


def _contacts(value: str) -> list[dict[str, str]]:
    people = []
    for part in value.split("|"):
        name, _, phone = part.partition(":")
        people.append({"name": name, "phone": phone})
    return people


def to_command(kind: str, row: dict[str, str]) -> c.Command:
    if kind == "customers":
        return c.CreateCustomer.model_validate({
            "customer_id": row["customer_id"], "name": row["name"], "tier": row["tier"],
            "star_level": _int(row["star_level"]) if row["star_level"] else None,
            "account_manager": {"name": row["manager_name"], "phone": row["manager_phone"]},
            "contacts": _contacts(row["contacts"]),
            "region": _none(row.get("region", ""))})
    if kind == "accounts":
        return c.OpenAccount.model_validate(row)
    if kind == "products":
        return c.AddProduct.model_validate({**row, "vendor": _none(row["vendor"]),
                                            "channel": _none(row["channel"])})
    if kind == "charges":
        return c.PostCharge.model_validate({**row, "amount_fen": _int(row["amount_fen"])})
    if not row["paid_at"]:
        raise ValueError("paid_at: a bulk-loaded payment needs its date")
    return c.RecordPayment.model_validate({**row, "amount_fen": _int(row["amount_fen"])})


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}"
                     for e in exc.errors())


def read_rows(path: Path) -> tuple[str, Iterator[tuple[int, dict[str, str]]]]:
    """The kind from the header, and (row number, row) with the header as row 1."""
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.reader(handle)
    header = next(reader, [])
    kind = kind_of(header)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            for number, values in enumerate(reader, start=2):
                if len(values) != len(header):
                    yield number, {"__error__": f"{len(values)} columns, expected {len(header)}"}
                else:
                    yield number, dict(zip(header, values, strict=True))

    return kind, rows()


async def import_file(
    ctx: BillingContext, path: Path, progress: Callable[[int], None] = lambda _: None,
) -> ImportReport:
    kind, rows = read_rows(path)
    report = ImportReport(kind)
    chunk: list[tuple[int, c.Command]] = []
    for number, row in rows:
        progress(1)
        if "__error__" in row:
            report.rejected.append((number, row["__error__"]))
            continue
        try:
            chunk.append((number, to_command(kind, row)))
        except ValidationError as exc:
            report.rejected.append((number, _reason(exc)))
        except ValueError as exc:
            report.rejected.append((number, str(exc)))
        if len(chunk) >= CHUNK:
            await _load_chunk(ctx, kind, chunk, report)
            chunk = []
    if chunk:
        await _load_chunk(ctx, kind, chunk, report)
    if report.loaded:
        await _analyze(ctx, kind)
    report.rejected.sort()
    return report


async def _analyze(ctx: BillingContext, kind: str) -> None:
    """Fresh planner statistics right after a bulk load: autovacuum gets to them later, and
    until then the next bill run is planned for tables a fraction of their size."""
    async with ctx.engine.connect() as conn:
        await conn.execute(text(f"ANALYZE billing.{kind}, billing.accounts"))
        await conn.commit()


async def _load_chunk(
    ctx: BillingContext, kind: str, chunk: list[tuple[int, c.Command]], report: ImportReport
) -> None:
    seen: set[str] = set()
    unique: list[tuple[int, c.Command]] = []
    cpnos: set[str] = set()
    for number, cmd in chunk:  # the same id twice in one chunk: the first one wins
        key, cpno = _id(cmd), getattr(cmd, "cpno", None)
        if key in seen:
            report.rejected.append((number, f"id {key!r} appears earlier in the file"))
        elif cpno is not None and cpno in cpnos:
            report.rejected.append((number, f"product number (CPNO) {cpno!r} appears earlier"))
        else:
            seen.add(key)
            cpnos.add(cpno or "")
            unique.append((number, cmd))
    # The chunk's one moment: its charges' (charges.charged_at, checked by a later bill run
    # of their month: domain/bill_month.py) and its balance events'.
    moment = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        if kind == "charges":
            await _lock_months(conn, [cmd for _, cmd in unique])
        good = await _check_references(conn, kind, unique, report)
        cmds = [cmd for _, cmd in good]
        written = await (_charges(conn, cmds, moment) if kind == "charges"
                         else _LOADERS[kind](conn, cmds))
        report.loaded += len(written)
        report.skipped += len(good) - len(written)
        touched = sorted({getattr(cmd, "account_id", "") for _, cmd in good
                          if _id(cmd) in written and kind in _CAUSES})
        if kind == "payments" and touched:
            await _lapse_write_offs(conn, touched, [cmd for _, cmd in good
                                                    if _id(cmd) in written])
        if touched:  # one event per account for the whole chunk
            await publish_many(ctx, conn, touched, _CAUSES[kind], moment)


async def _lock_months(conn: AsyncConnection, charges: list[c.Command]) -> None:
    """As POST /v1/charges does: each month of the chunk's charges locked shared (in month
    order), so a bill run of one waits for the chunk to commit (and sees its charges and
    their moment), and a bill run under way is waited for (its month then reads closed)."""
    for month in sorted({parse_bill_month(_field(cmd, "bill_month")) for cmd in charges}):
        await lock_bill_month(conn, month, shared=True)


async def _lapse_write_offs(conn: AsyncConnection, accounts: list[str],
                            payments: list[c.Command]) -> None:
    """As POST /v1/payments does, set-wise: what the chunk's payments make lapse of the
    accounts' write-offs (service_layer/write_off_lapses.py), the accounts locked first."""
    await lock_accounts(conn, accounts)
    await lapses.after_payments(conn, (
        (p.payment_id, p.account_id, p.amount_fen, p.paid_at)
        for p in payments if isinstance(p, c.RecordPayment) and p.paid_at is not None))


# Charges and payments change balances; new products must reach credit-control even when
# their account owes nothing new (as POST /v1/products does).
_CAUSES = {"charges": BalanceCause.CHARGE, "payments": BalanceCause.PAYMENT,
           "products": BalanceCause.MASTER_DATA}


def _id(cmd: c.Command) -> str:
    return _field(cmd, _ID_FIELD[type(cmd).__name__])


def _field(cmd: c.Command, name: str) -> str:
    return str(getattr(cmd, name))


_ID_FIELD = {"CreateCustomer": "customer_id", "OpenAccount": "account_id",
             "AddProduct": "product_id", "PostCharge": "charge_id",
             "RecordPayment": "payment_id"}


async def _existing(conn: AsyncConnection, table: str, column: str, ids: set[str]) -> set[str]:
    rows = await conn.execute(text(
        f"SELECT {column} FROM {S}.{table} WHERE {column} = ANY(:ids)"), {"ids": list(ids)})
    return set(rows.scalars())


async def _check_references(
    conn: AsyncConnection, kind: str, rows: list[tuple[int, c.Command]], report: ImportReport
) -> list[tuple[int, c.Command]]:
    """Unknown customer, account or product, a product on another account, a closed month."""
    if kind == "customers":
        return rows
    if kind == "accounts":
        known = await _existing(conn, "customers", "customer_id",
                                {_field(cmd, "customer_id") for _, cmd in rows})
        return _keep(rows, report, lambda cmd: None if cmd.customer_id in known
                     else f"unknown customer {cmd.customer_id!r}")
    accounts = await _existing(conn, "accounts", "account_id",
                               {_field(cmd, "account_id") for _, cmd in rows})
    if kind == "payments":
        return _keep(rows, report, lambda cmd: None if cmd.account_id in accounts
                     else f"unknown account {cmd.account_id!r}")
    if kind == "products":
        holders: dict[str, str] = dict((await conn.execute(text(
            f"SELECT cpno, product_id FROM {S}.products WHERE cpno = ANY(:c)"),
            {"c": [_field(cmd, "cpno") for _, cmd in rows]})).all())

        def product_problem(cmd: Any) -> str | None:
            if cmd.account_id not in accounts:
                return f"unknown account {cmd.account_id!r}"
            if holders.get(cmd.cpno, cmd.product_id) != cmd.product_id:
                return f"product number (CPNO) {cmd.cpno!r} is taken"
            return None

        return _keep(rows, report, product_problem)
    owners: dict[str, str] = dict((await conn.execute(text(
        f"SELECT product_id, account_id FROM {S}.products WHERE product_id = ANY(:ids)"),
        {"ids": [_field(cmd, "product_id") for _, cmd in rows]})).all())
    closed = {m.strftime("%Y-%m") for m in (await conn.execute(text(
        f"SELECT bill_month FROM {S}.bill_runs"))).scalars()}

    def charge_problem(cmd: Any) -> str | None:
        if cmd.account_id not in accounts:
            return f"unknown account {cmd.account_id!r}"
        if owners.get(cmd.product_id) != cmd.account_id:
            return (f"unknown product {cmd.product_id!r}" if cmd.product_id not in owners
                    else f"product {cmd.product_id!r} is not on account {cmd.account_id!r}")
        return closed_month_refusal(cmd.bill_month, cmd.bill_month in closed)

    return _keep(rows, report, charge_problem)


def _keep(
    rows: list[tuple[int, c.Command]], report: ImportReport,
    problem: Callable[[Any], str | None],
) -> list[tuple[int, c.Command]]:
    kept = []
    for number, cmd in rows:
        reason = problem(cmd)
        if reason:
            report.rejected.append((number, reason))
        else:
            kept.append((number, cmd))
    return kept


async def _insert(
    conn: AsyncConnection, table: str, key: str, columns: dict[str, tuple[str, list[Any]]],
) -> set[str]:
    """INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING; returns the ids written."""
    names = ", ".join(columns)
    arrays = ", ".join(f"CAST(:{n} AS {sqltype}[])" for n, (sqltype, _) in columns.items())
    rows = await conn.execute(text(
        f"INSERT INTO {S}.{table} ({names}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT DO NOTHING RETURNING {key}"),
        {n: values for n, (_, values) in columns.items()})
    return set(rows.scalars())


async def _customers(conn: AsyncConnection, cmds: list[Any]) -> set[str]:
    import orjson

    return await _insert(conn, "customers", "customer_id", {
        "customer_id": ("text", [x.customer_id for x in cmds]),
        "name": ("text", [x.name for x in cmds]),
        "tier": ("text", [x.tier.value for x in cmds]),
        "star_level": ("int", [x.star_level for x in cmds]),
        "account_manager": ("jsonb", [orjson.dumps(x.account_manager.model_dump()).decode()
                                      for x in cmds]),
        "contacts": ("jsonb", [orjson.dumps([p.model_dump() for p in x.contacts]).decode()
                               for x in cmds]),
        "region": ("text", [x.region for x in cmds]),
    })


async def _accounts(conn: AsyncConnection, cmds: list[Any]) -> set[str]:
    return await _insert(conn, "accounts", "account_id", {
        "account_id": ("text", [x.account_id for x in cmds]),
        "customer_id": ("text", [x.customer_id for x in cmds])})


async def _products(conn: AsyncConnection, cmds: list[Any]) -> set[str]:
    return await _insert(conn, "products", "product_id", {
        "product_id": ("text", [x.product_id for x in cmds]),
        "account_id": ("text", [x.account_id for x in cmds]),
        "cpno": ("text", [x.cpno for x in cmds]),
        "name": ("text", [x.name for x in cmds]),
        "family": ("text", [x.family.value for x in cmds]),
        "vendor": ("text", [x.vendor.value if x.vendor else None for x in cmds]),
        "channel": ("text", [x.channel for x in cmds])})


async def _charges(conn: AsyncConnection, cmds: list[Any], at: datetime) -> set[str]:
    """A CSV row claims no moment of its own: it is the chunk's (domain/bill_month.py)."""
    return await _insert(conn, "charges", "charge_id", {
        "charge_id": ("text", [x.charge_id for x in cmds]),
        "account_id": ("text", [x.account_id for x in cmds]),
        "product_id": ("text", [x.product_id for x in cmds]),
        "bill_month": ("date", [parse_bill_month(x.bill_month) for x in cmds]),
        "amount_fen": ("bigint", [x.amount_fen for x in cmds]),
        "charged_at": ("timestamptz", [charge_moment(None, at)] * len(cmds))})


async def _payments(conn: AsyncConnection, cmds: list[Any]) -> set[str]:
    return await _insert(conn, "payments", "payment_id", {
        "payment_id": ("text", [x.payment_id for x in cmds]),
        "account_id": ("text", [x.account_id for x in cmds]),
        "amount_fen": ("bigint", [x.amount_fen for x in cmds]),
        "paid_at": ("timestamptz", [x.paid_at for x in cmds])})


# Charges take the chunk's moment too: loaded apart (_load_chunk).
_LOADERS = {"customers": _customers, "accounts": _accounts, "products": _products,
            "payments": _payments}
