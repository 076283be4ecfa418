"""The chain's writes, set-wise: each write takes its rows as one array per column
(`unnest`), so a batch of any size is one write, planned once, and a batch's writes go
together as one statement (`Writes`).

Why arrays: each goes as PostgreSQL's text form of the array, written by msgspec in C
(`common.db.DriverStatement`, `pg_arrays.array_text`), and the server reads a row of arrays
in about half the time it takes to read the same row from JSON objects
(`json_to_recordset`, which the chain used before: it builds a hash table of each object's
keys): 13.9 against 21.9 µs an attempt's row of 22 columns, 3.5 against 6.8 µs a product's
of 8, end to end from the client, interleaved (docs/benchmarks.md, fifteenth session). The
columns cost the client about what orjson cost for the rows (the accept path ~1 % more
instructions a command). A small batch's outbox rows ride along as one more part, the
outbox writer's own INSERT (`common.outbox.insert_part`: arrays too, the envelopes as bytes
PostgreSQL stores as they were serialised).

Every caller holds the products' locks (taken in product id order), so nobody else writes
these rows meanwhile.
"""

import asyncio
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import StageOutcome
from common.db import DriverStatement
from common.outbox import COPY_FROM, Outbox, OutboxRow, wake_after_commit

from ..domain.chain import Attempt, EmosOrder, ProductChain
from ..domain.intake import CommandState
from .tables import SCHEMA


@dataclass
class Writes:
    """A batch's writes, sent as ONE statement, each write a data-modifying WITH query: one
    round trip instead of one per table. They change different rows, none reads what another
    writes, and PostgreSQL runs every one of them exactly once. A large batch's results go
    through the outbox's writer (binary COPY) after it."""

    parts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bulk: list[tuple[Outbox, Sequence[OutboxRow]]] = field(default_factory=list)
    wake: list[asyncio.Event] = field(default_factory=list)

    def add(self, sql: str, params: dict[str, Any]) -> None:
        self.parts.append((sql, params))

    async def run(self, conn: AsyncConnection) -> None:
        if self.parts:
            sqls = tuple(sql for sql, _ in self.parts)
            await _statement(sqls).execute(conn, _renamed(self.parts))
        for outbox, rows in self.bulk:
            await outbox.add_rows(conn, rows)
        for wake in self.wake:
            # The relay (or the stage worker) of this process looks once the transaction
            # has committed: woken earlier, it would find nothing and idle.
            wake_after_commit(conn, wake)


@functools.lru_cache(maxsize=128)
def _statement(sqls: tuple[str, ...]) -> DriverStatement:
    """The batch's statement on the driver, by its parts' SQL (module constants, whose
    hashes Python keeps): a batch writes one of a few dozen combinations of parts, and
    SQLAlchemy's own work per statement (~0.3 ms of CPU) was ~10 µs a command at the
    consumer's batches of 30; combining the parts' text again for every batch (a regex
    pass over ~10 KB of SQL, and hashing the result) was ~50,000 instructions a command
    there."""
    return DriverStatement(combined_sql(sqls))


_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def combined_sql(sqls: tuple[str, ...]) -> str:
    """`WITH w0 AS (…), w1 AS (…) SELECT 1`, each part's parameters renamed apart (`w<i>_`)."""
    if len(sqls) == 1:
        return sqls[0]
    queries = []
    for i, sql in enumerate(sqls):
        renamed = _PARAM.sub(rf":w{i}_\1", sql)
        queries.append(f"w{i} AS ({renamed})")
    return f"WITH {', '.join(queries)} SELECT 1"


def _renamed(parts: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0][1]
    return {f"w{i}_{k}": v for i, (_, values) in enumerate(parts) for k, v in values.items()}


def combine(parts: Sequence[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """The parts as one statement and its parameters (`combined_sql`)."""
    return combined_sql(tuple(sql for sql, _ in parts)), _renamed(parts)


@functools.lru_cache(maxsize=64)
def names(columns: str) -> tuple[str, ...]:
    """The column names of "name type, …" (a few module constants: parsed once each, not
    for every batch's `column_values`)."""
    return tuple(c.split()[0] for c in columns.split(","))


def _typed(columns: str) -> list[tuple[str, str]]:
    return [(c.split()[0], c.split()[1]) for c in columns.split(",")]


def recordset(columns: str, param: str = "rows") -> str:
    """`unnest(CAST(:rows_<name> AS <type>[]), …) AS u(<names>)`: the rows (`columns`, "name
    type, …"), one array per column, as a relation typed by the columns."""
    arrays = ", ".join(f"CAST(:{param}_{n} AS {t}[])" for n, t in _typed(columns))
    return f"unnest({arrays}) AS u({', '.join(names(columns))})"


def column_values(columns: str, rows: Sequence[Any], param: str = "rows") -> dict[str, Any]:
    """The parameters `recordset(columns, param)` reads: each column's values, in the rows'
    order, from dataclasses (by attribute), dicts (by key) or tuples (in the columns'
    order). Transposed in C (one getter call a row, `zip`), not a Python-level call a
    cell."""
    keys = names(columns)
    if not rows:
        return {f"{param}_{n}": [] for n in keys}
    if isinstance(rows[0], tuple):
        cells: Iterable[tuple[Any, ...]] = rows
    else:
        get = (itemgetter if isinstance(rows[0], dict) else attrgetter)(*keys)
        cells = map(get, rows) if len(keys) > 1 else ((get(r),) for r in rows)
    by_column = zip(*cells, strict=True)  # every row has every column
    return {f"{param}_{n}": list(c) for n, c in zip(keys, by_column, strict=True)}


def probed(table: str, columns: str, keys: Sequence[str]) -> str:
    """`FROM …` for an UPDATE of `table` by the rows `recordset(columns)`: each row with its
    target's `tid`, found through the key's index, one key at a time (`LATERAL … OFFSET 0`);
    the UPDATE matches `WHERE <alias>.ctid = u.tid`, which PostgreSQL runs as a TID scan.
    Joined by key, the rows were planned as a hash join over the whole table while it held a
    few thousand rows (no statistics yet, or a small table): ~1–4 ms a statement at ~4,000
    rows, growing with it. A TID match does not follow a row another transaction updated
    meanwhile; every caller holds the products' locks, so none can."""
    match = " AND ".join(f"x.{k} = u.{k}" for k in keys)
    return (f"(SELECT u.*, k.tid FROM {recordset(columns)} CROSS JOIN LATERAL ("
            f"SELECT x.ctid AS tid FROM {SCHEMA}.{table} x WHERE {match} OFFSET 0) k) u")


PRODUCT_COLUMNS = """product_id text, last_sequence bigint, boss_status text,
    boss_sequence bigint, boss_updated_at timestamptz, gateway_blocked boolean,
    gateway_sequence bigint, gateway_updated_at timestamptz"""

_SAVE_PRODUCTS = (f"""
UPDATE {SCHEMA}.chain_products p SET
    {', '.join(f'{n} = u.{n}' for n in names(PRODUCT_COLUMNS)[1:])}
FROM {probed('chain_products', PRODUCT_COLUMNS, ['product_id'])}
WHERE p.ctid = u.tid""")


def save_products(w: Writes, products: Iterable[ProductChain]) -> None:
    rows = list(products)
    if rows:
        w.add(_SAVE_PRODUCTS, column_values(PRODUCT_COLUMNS, rows))


COMMAND_COLUMNS = """command_id text, product_id text, action text, sequence bigint,
    outcome text, received_at timestamptz, latest_attempt integer, applied_attempt integer,
    emos_order_id text"""

_UPSERT_COMMANDS = (f"""
INSERT INTO {SCHEMA}.commands ({', '.join(names(COMMAND_COLUMNS))})
SELECT * FROM {recordset(COMMAND_COLUMNS)}
ON CONFLICT (command_id) DO UPDATE SET latest_attempt = excluded.latest_attempt,
    outcome = excluded.outcome, applied_attempt = excluded.applied_attempt,
    emos_order_id = excluded.emos_order_id""")


def save_command_states(w: Writes, states: Sequence[CommandState]) -> None:
    """New commands inserted, known ones moved on: the whole row as the batch left it."""
    if states:
        w.add(_UPSERT_COMMANDS, column_values(COMMAND_COLUMNS, states))


_FINISHED = "command_id text, outcome text, applied_attempt integer, emos_order_id text"

_NOTE_FINISHED = (f"""
UPDATE {SCHEMA}.commands c SET
    outcome = CASE WHEN c.applied_attempt IS NOT NULL THEN :applied ELSE u.outcome END,
    applied_attempt = coalesce(c.applied_attempt, u.applied_attempt),
    emos_order_id = coalesce(c.emos_order_id, u.emos_order_id)
FROM {probed('commands', _FINISHED, ['command_id'])}
WHERE c.ctid = u.tid""")


def note_finished(w: Writes, finished: Sequence[Attempt]) -> None:
    """Each finished attempt's outcome goes on its command; an applied one stays applied.
    Several attempts of one command fold into one row first (an UPDATE … FROM applies one
    source row per target row)."""
    folded: dict[str, tuple[str, int | None, str | None]] = {}
    for a in finished:
        applied = a.outcome is StageOutcome.APPLIED
        before = folded.get(a.command_id)
        outcome = a.outcome.value if a.outcome else "pending"
        if before is not None and before[1] is not None:
            folded[a.command_id] = (StageOutcome.APPLIED.value, before[1], before[2])
        else:
            folded[a.command_id] = (outcome, a.attempt if applied else None,
                                    (before[2] if before else None)
                                    or (a.emos_order_id if applied else None))
    if folded:
        w.add(_NOTE_FINISHED, {"applied": StageOutcome.APPLIED.value, **column_values(
            _FINISHED, [{"command_id": c, "outcome": o, "applied_attempt": n,
                         "emos_order_id": e} for c, (o, n, e) in folded.items()])})


ATTEMPT_KEY = "command_id text, attempt integer"
ATTEMPT_ABOUT = """product_id text, customer_id text, cpno text, family text, vendor text,
    action text, sequence bigint, received_at timestamptz"""
ATTEMPT_STATE = """step text, fate text, due_at timestamptz, outcome text, detail text,
    emos_order_id text, vendor_command text, boss_at timestamptz, emos_at timestamptz,
    gateway_ack_at timestamptz, gateway_at timestamptz, finished_at timestamptz"""
ATTEMPT_COLUMNS = f"{ATTEMPT_KEY}, {ATTEMPT_ABOUT}, {ATTEMPT_STATE}"
_ATTEMPT_SAVED = f"{ATTEMPT_KEY}, {ATTEMPT_STATE}"

_INSERT_ATTEMPTS = (f"""
INSERT INTO {SCHEMA}.attempts ({', '.join(names(ATTEMPT_COLUMNS))})
SELECT * FROM {recordset(ATTEMPT_COLUMNS)}""")

_SAVE_ATTEMPTS = (f"""
UPDATE {SCHEMA}.attempts a SET {', '.join(f'{n} = u.{n}' for n in names(ATTEMPT_STATE))}
FROM {probed('attempts', _ATTEMPT_SAVED, ['command_id', 'attempt'])}
WHERE a.ctid = u.tid""")


def insert_attempts(w: Writes, attempts: Sequence[Attempt]) -> None:
    if attempts:
        w.add(_INSERT_ATTEMPTS, column_values(ATTEMPT_COLUMNS, attempts))


def save_attempts(w: Writes, attempts: Sequence[Attempt]) -> None:
    if attempts:
        w.add(_SAVE_ATTEMPTS, column_values(_ATTEMPT_SAVED, attempts))


ORDER_STATE = "status text, due_at timestamptz, sent_at timestamptz, closed_at timestamptz"
_ORDER_SAVED = f"order_id text, {ORDER_STATE}"
ORDER_COLUMNS = f"""order_id text, command_id text, attempt integer, product_id text,
    action text, created_at timestamptz, {ORDER_STATE}"""

_INSERT_ORDERS = (f"""
INSERT INTO {SCHEMA}.emos_orders ({', '.join(names(ORDER_COLUMNS))})
SELECT * FROM {recordset(ORDER_COLUMNS)}""")

_SAVE_ORDERS = (f"""
UPDATE {SCHEMA}.emos_orders o SET {', '.join(f'{n} = u.{n}' for n in names(ORDER_STATE))}
FROM {probed('emos_orders', _ORDER_SAVED, ['order_id'])}
WHERE o.ctid = u.tid""")


def insert_orders(w: Writes, orders: Sequence[EmosOrder]) -> None:
    if orders:
        w.add(_INSERT_ORDERS, column_values(ORDER_COLUMNS, orders))


def save_orders(w: Writes, orders: Iterable[EmosOrder]) -> None:
    rows = list(orders)
    if rows:
        w.add(_SAVE_ORDERS, column_values(_ORDER_SAVED, rows))


def add_results(w: Writes, outbox: Outbox, rows: Sequence[OutboxRow]) -> None:
    """The results' outbox rows, in order (their ids follow it: the relay publishes in id
    order), through the outbox's one writer: a small batch's as its INSERT, one part of the
    batch's statement, without a round trip of its own (`Outbox.insert_part`); from
    `COPY_FROM` rows up the writer copies them (binary COPY costs a third of the CPU of any
    INSERT at that size)."""
    if not rows:
        return
    if len(rows) >= COPY_FROM:
        w.bulk.append((outbox, rows))
        return  # the writer wakes the relay
    w.add(*outbox.insert_part(rows))
    w.wake.append(outbox.wake)
