"""The chain's writes, set-wise: each write takes whole columns as arrays (`unnest`), so a
batch of any size is one write, planned once, with no per-row round trip and no per-row
parameter handling in SQLAlchemy (executemany spent more time there than PostgreSQL spent on
the rows); and a batch's writes go together as one statement (`Writes`).

Every caller holds the products' locks (taken in product id order), so nobody else writes
these rows meanwhile.
"""

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningCommand, StageOutcome
from common.envelope import Envelope, to_bytes
from common.outbox import Outbox

from ..domain.chain import Attempt, BossStatus, EmosOrder, ProductChain
from ..domain.intake import CommandState
from .tables import SCHEMA


@dataclass
class Writes:
    """A batch's writes, sent as ONE statement, each write a data-modifying WITH query: one
    round trip instead of one per table. They change different rows, none reads what another
    writes, and PostgreSQL runs every one of them exactly once."""

    parts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    wake: list[Outbox] = field(default_factory=list)

    def add(self, sql: str, params: dict[str, Any]) -> None:
        self.parts.append((sql, params))

    async def run(self, conn: AsyncConnection) -> None:
        if self.parts:
            sql, params = combine(self.parts)
            await conn.execute(text(sql), params)
        for outbox in self.wake:
            # The relay of this process looks once the transaction had a chance to commit,
            # as after `Outbox.add_many`.
            asyncio.get_running_loop().call_later(0.001, outbox.wake.set)


_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def combine(parts: Sequence[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """`WITH w0 AS (…), w1 AS (…) SELECT 1`, each part's parameters renamed apart."""
    if len(parts) == 1:
        return parts[0]
    queries, params = [], {}
    for i, (sql, values) in enumerate(parts):
        renamed = _PARAM.sub(rf":w{i}_\1", sql)
        queries.append(f"w{i} AS ({renamed})")
        params.update({f"w{i}_{k}": v for k, v in values.items()})
    return f"WITH {', '.join(queries)} SELECT 1", params


_ENSURE_PRODUCTS = text(f"""
INSERT INTO {SCHEMA}.chain_products (product_id, cpno, family, vendor, customer_id,
    last_sequence, boss_status, boss_updated_at, gateway_blocked, gateway_updated_at,
    boss_sequence, gateway_sequence)
SELECT u.product_id, u.cpno, u.family, u.vendor, u.customer_id, 0, :active,
       CAST(:now AS timestamptz), false, CAST(:now AS timestamptz), 0, 0
FROM unnest(CAST(:product_id AS text[]), CAST(:cpno AS text[]), CAST(:family AS text[]),
            CAST(:vendor AS text[]), CAST(:customer_id AS text[]))
     AS u(product_id, cpno, family, vendor, customer_id)
ORDER BY u.product_id
ON CONFLICT (product_id) DO NOTHING""")


async def ensure_products(
    conn: AsyncConnection, cmds: Sequence[ProvisioningCommand], now: datetime
) -> None:
    """First sight of a product: active and open, no command applied yet (the first
    command of the batch describes it). In product id order, as every lock here."""
    first: dict[str, ProvisioningCommand] = {}
    for c in cmds:
        first.setdefault(c.product_id, c)
    rows = [first[p] for p in sorted(first)]
    await conn.execute(_ENSURE_PRODUCTS, {
        "active": BossStatus.ACTIVE.value, "now": now,
        **_columns(rows, product_id=lambda c: c.product_id, cpno=lambda c: c.cpno,
                   family=lambda c: c.family.value, vendor=lambda c: c.vendor,
                   customer_id=lambda c: c.customer_id)})


_SAVE_PRODUCTS = (f"""
UPDATE {SCHEMA}.chain_products p SET last_sequence = u.last_sequence,
    boss_status = u.boss_status, boss_sequence = u.boss_sequence,
    boss_updated_at = u.boss_updated_at, gateway_blocked = u.gateway_blocked,
    gateway_sequence = u.gateway_sequence, gateway_updated_at = u.gateway_updated_at
FROM unnest(CAST(:product_id AS text[]), CAST(:last_sequence AS bigint[]),
            CAST(:boss_status AS text[]), CAST(:boss_sequence AS bigint[]),
            CAST(:boss_updated_at AS timestamptz[]), CAST(:gateway_blocked AS boolean[]),
            CAST(:gateway_sequence AS bigint[]), CAST(:gateway_updated_at AS timestamptz[]))
     AS u(product_id, last_sequence, boss_status, boss_sequence, boss_updated_at,
          gateway_blocked, gateway_sequence, gateway_updated_at)
WHERE p.product_id = u.product_id""")


def save_products(w: Writes, products: Iterable[ProductChain]) -> None:
    rows = list(products)
    if rows:
        w.add(_SAVE_PRODUCTS, _columns(
            rows, product_id=lambda p: p.product_id, last_sequence=lambda p: p.last_sequence,
            boss_status=lambda p: p.boss_status.value, boss_sequence=lambda p: p.boss_sequence,
            boss_updated_at=lambda p: p.boss_updated_at,
            gateway_blocked=lambda p: p.gateway_blocked,
            gateway_sequence=lambda p: p.gateway_sequence,
            gateway_updated_at=lambda p: p.gateway_updated_at))


_UPSERT_COMMANDS = (f"""
INSERT INTO {SCHEMA}.commands (command_id, product_id, action, sequence, outcome, received_at,
    latest_attempt, applied_attempt, emos_order_id)
SELECT * FROM unnest(CAST(:command_id AS text[]), CAST(:product_id AS text[]),
                     CAST(:action AS text[]), CAST(:sequence AS bigint[]),
                     CAST(:outcome AS text[]), CAST(:received_at AS timestamptz[]),
                     CAST(:latest_attempt AS integer[]), CAST(:applied_attempt AS integer[]),
                     CAST(:emos_order_id AS text[]))
ON CONFLICT (command_id) DO UPDATE SET latest_attempt = excluded.latest_attempt,
    outcome = excluded.outcome, applied_attempt = excluded.applied_attempt,
    emos_order_id = excluded.emos_order_id""")


def save_command_states(w: Writes, states: Sequence[CommandState]) -> None:
    """New commands inserted, known ones moved on: the whole row as the batch left it."""
    if states:
        w.add(_UPSERT_COMMANDS, _columns(
            states, command_id=lambda s: s.command_id, product_id=lambda s: s.product_id,
            action=lambda s: s.action.value, sequence=lambda s: s.sequence,
            outcome=lambda s: s.outcome, received_at=lambda s: s.received_at,
            latest_attempt=lambda s: s.latest_attempt,
            applied_attempt=lambda s: s.applied_attempt,
            emos_order_id=lambda s: s.emos_order_id))


_NOTE_FINISHED = (f"""
UPDATE {SCHEMA}.commands c SET
    outcome = CASE WHEN c.applied_attempt IS NOT NULL THEN :applied ELSE u.outcome END,
    applied_attempt = coalesce(c.applied_attempt, u.applied_attempt),
    emos_order_id = coalesce(c.emos_order_id, u.emos_order_id)
FROM unnest(CAST(:command_id AS text[]), CAST(:outcome AS text[]),
            CAST(:applied_attempt AS integer[]), CAST(:emos_order_id AS text[]))
     AS u(command_id, outcome, applied_attempt, emos_order_id)
WHERE c.command_id = u.command_id""")


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
        w.add(_NOTE_FINISHED, {
            "applied": StageOutcome.APPLIED.value, "command_id": list(folded),
            "outcome": [v[0] for v in folded.values()],
            "applied_attempt": [v[1] for v in folded.values()],
            "emos_order_id": [v[2] for v in folded.values()]})


_ATTEMPT_VALUES = """step text[], fate text[], due_at timestamptz[], outcome text[],
    detail text[], emos_order_id text[], vendor_command text[], boss_at timestamptz[],
    emos_at timestamptz[], gateway_ack_at timestamptz[], gateway_at timestamptz[],
    finished_at timestamptz[]"""
_VALUE_NAMES = [c.split()[0] for c in _ATTEMPT_VALUES.split(",")]


def _unnest(spec: str) -> str:
    """`unnest(CAST(:a AS t[]), …) AS u(a, …)` from "a t[], …"."""
    cols = [c.split() for c in spec.split(",")]
    return (f"unnest({', '.join(f'CAST(:{n} AS {ty})' for n, ty in cols)}) "
            f"AS u({', '.join(n for n, _ in cols)})")


_INSERT_ATTEMPTS = (f"""
INSERT INTO {SCHEMA}.attempts (command_id, attempt, product_id, customer_id, cpno, family,
    vendor, action, sequence, received_at, {', '.join(_VALUE_NAMES)})
SELECT * FROM {_unnest('''command_id text[], attempt integer[], product_id text[],
    customer_id text[], cpno text[], family text[], vendor text[], action text[],
    sequence bigint[], received_at timestamptz[], ''' + _ATTEMPT_VALUES)}""")

_SAVE_ATTEMPTS = (f"""
UPDATE {SCHEMA}.attempts a SET {', '.join(f'{n} = u.{n}' for n in _VALUE_NAMES)}
FROM {_unnest('command_id text[], attempt integer[], ' + _ATTEMPT_VALUES)}
WHERE a.command_id = u.command_id AND a.attempt = u.attempt""")


def _attempt_values(rows: Sequence[Attempt]) -> dict[str, list[Any]]:
    return _columns(
        rows, command_id=lambda a: a.command_id, attempt=lambda a: a.attempt,
        step=lambda a: a.step.value, fate=lambda a: a.fate.value, due_at=lambda a: a.due_at,
        outcome=lambda a: a.outcome.value if a.outcome else None, detail=lambda a: a.detail,
        emos_order_id=lambda a: a.emos_order_id, vendor_command=lambda a: a.vendor_command,
        boss_at=lambda a: a.boss_at, emos_at=lambda a: a.emos_at,
        gateway_ack_at=lambda a: a.gateway_ack_at, gateway_at=lambda a: a.gateway_at,
        finished_at=lambda a: a.finished_at)


def insert_attempts(w: Writes, attempts: Sequence[Attempt]) -> None:
    if attempts:
        w.add(_INSERT_ATTEMPTS, {**_attempt_values(attempts), **_columns(
            attempts, product_id=lambda a: a.product_id, customer_id=lambda a: a.customer_id,
            cpno=lambda a: a.cpno, family=lambda a: a.family, vendor=lambda a: a.vendor,
            action=lambda a: a.action.value, sequence=lambda a: a.sequence,
            received_at=lambda a: a.received_at)})


def save_attempts(w: Writes, attempts: Sequence[Attempt]) -> None:
    if attempts:
        w.add(_SAVE_ATTEMPTS, _attempt_values(attempts))


_ORDER_VALUES = "status text[], due_at timestamptz[], sent_at timestamptz[], " \
                "closed_at timestamptz[]"

_INSERT_ORDERS = (f"""
INSERT INTO {SCHEMA}.emos_orders (order_id, command_id, attempt, product_id, action,
    created_at, status, due_at, sent_at, closed_at)
SELECT * FROM {_unnest('''order_id text[], command_id text[], attempt integer[],
    product_id text[], action text[], created_at timestamptz[], ''' + _ORDER_VALUES)}""")

_SAVE_ORDERS = (f"""
UPDATE {SCHEMA}.emos_orders o SET status = u.status, due_at = u.due_at, sent_at = u.sent_at,
    closed_at = u.closed_at
FROM {_unnest('order_id text[], ' + _ORDER_VALUES)}
WHERE o.order_id = u.order_id""")


def _order_values(rows: Sequence[EmosOrder]) -> dict[str, list[Any]]:
    return _columns(rows, order_id=lambda o: o.order_id, status=lambda o: o.status.value,
                    due_at=lambda o: o.due_at, sent_at=lambda o: o.sent_at,
                    closed_at=lambda o: o.closed_at)


def insert_orders(w: Writes, orders: Sequence[EmosOrder]) -> None:
    if orders:
        w.add(_INSERT_ORDERS, {**_order_values(orders), **_columns(
            orders, command_id=lambda o: o.command_id, attempt=lambda o: o.attempt,
            product_id=lambda o: o.product_id, action=lambda o: o.action.value,
            created_at=lambda o: o.created_at)})


def save_orders(w: Writes, orders: Iterable[EmosOrder]) -> None:
    rows = list(orders)
    if rows:
        w.add(_SAVE_ORDERS, _order_values(rows))


_ADD_RESULTS = (f"""
INSERT INTO {SCHEMA}.outbox (event_id, topic, key, event_type, payload)
SELECT u.event_id, u.topic, u.key, u.event_type, u.payload
FROM unnest(CAST(:event_id AS uuid[]), CAST(:topic AS text[]), CAST(:key AS text[]),
            CAST(:event_type AS text[]), CAST(:payload AS text[])) WITH ORDINALITY
     AS u(event_id, topic, key, event_type, payload, n)
ORDER BY u.n""")  # ids follow the events' order: the relay publishes in id order


def add_results(w: Writes, outbox: Outbox, events: Sequence[tuple[str, Envelope[Any]]]) -> None:
    """The same rows `Outbox.add_many` writes, in one statement instead of one per row."""
    if not events:
        return
    w.add(_ADD_RESULTS, {
        "event_id": [e.event_id for _, e in events], "topic": [topic for topic, _ in events],
        "key": [e.key for _, e in events], "event_type": [e.type for _, e in events],
        "payload": [to_bytes(e).decode() for _, e in events]})
    w.wake.append(outbox)


def _columns(rows: Sequence[Any], **getters: Any) -> dict[str, list[Any]]:
    return {name: [get(r) for r in rows] for name, get in getters.items()}
