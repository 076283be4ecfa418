"""The chain's reads for a batch, in ONE statement each: the consumer's "insert the new
products, lock the batch's products, read what the chain holds for them" and the stage
worker's "claim the products with due work and read their due attempts".

A set of ids is looked up one id at a time, through the index (a LATERAL subquery with
`OFFSET 0`, which PostgreSQL cannot flatten into a join), whatever the statistics say: both
`= ANY(ARRAY(…))` and joins were planned as whole-table scans on tables without statistics
(a new database, a table autovacuum has not analysed yet).

Reading in the statement that takes the locks saves round trips, but a statement reads from
the snapshot it started with, and a lock may have been waited for: a transaction that held
one of these products (the stage worker, another gateway process) may have committed
changes meanwhile. Every writer here updates the product rows it holds, so the product row
tells: the locked row (the newest version, PostgreSQL re-reads it after the wait) and the
row as the snapshot saw it differ in `xmin` exactly when someone committed a change to that
product after the snapshot. Then the consumer reads again (the locks are held now, nothing
can change any more), and the worker leaves those products for its next round.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningAction, ProvisioningCommand, StageOutcome
from common.db import DriverStatement

from ..domain.chain import Attempt, BossStatus, EmosOrder, OrderStatus, ProductChain
from ..domain.faults import Fate, Faults, Step
from ..domain.intake import CommandState
from .chain_writes import column_values, recordset
from .tables import SCHEMA

S = SCHEMA
_PRODUCT = """product_id, last_sequence, boss_status, boss_sequence, boss_updated_at,
    gateway_blocked, gateway_sequence, gateway_updated_at"""
_P_PRODUCT = ", ".join(f"p.{c.strip()}" for c in _PRODUCT.split(","))

# The batch's attempts, commands and EMOS orders are looked up one id at a time through
# their indexes (a LATERAL subquery with OFFSET 0, which PostgreSQL cannot flatten into a
# join), whatever the statistics say. With `= ANY(array)`, on tables without statistics yet
# (a new database, a table autovacuum has not analysed) it planned sequential scans testing
# every attempt against the batch's thousand ids: 150 ms a batch at 20,000 attempts, more as
# the table grew (the gateway bench in a database of its own: 3,273 commands/s). As plain
# joins, it hashed the batch and still read every attempt per batch: ~6 ms per batch of ten
# commands at 1,000 commands/s. The products are locked one by one, in product id order
# (the database's, as every caller's `ORDER BY product_id … FOR UPDATE`).
_NEW_PRODUCTS = "product_id text, cpno text, family text, vendor text, customer_id text"
_LOCK_AND_LOAD = DriverStatement(f"""
WITH u AS (
    SELECT * FROM {recordset(_NEW_PRODUCTS, 'products')}
), ins AS (
    INSERT INTO {S}.chain_products (product_id, cpno, family, vendor, customer_id,
        last_sequence, boss_status, boss_updated_at, gateway_blocked, gateway_updated_at,
        boss_sequence, gateway_sequence)
    SELECT u.product_id, u.cpno, u.family, u.vendor, u.customer_id, 0, :active,
           CAST(:now AS timestamptz), false, CAST(:now AS timestamptz), 0, 0
    FROM u ORDER BY u.product_id
    ON CONFLICT (product_id) DO NOTHING
    RETURNING {_PRODUCT}
), locked AS (
    SELECT {_P_PRODUCT}, p.xmin::text AS version
    FROM (SELECT product_id FROM u ORDER BY product_id) o CROSS JOIN LATERAL (
        SELECT *, x.xmin FROM {S}.chain_products x WHERE x.product_id = o.product_id
        OFFSET 0 FOR UPDATE) p
), seen AS (
    SELECT p.product_id, p.xmin::text AS version FROM u CROSS JOIN LATERAL (
        SELECT x.product_id, x.xmin FROM {S}.chain_products x
        WHERE x.product_id = u.product_id OFFSET 0) p
), ids AS (
    SELECT unnest(CAST(:command_ids AS text[])) AS command_id
), rec AS (
    SELECT a.* FROM ids CROSS JOIN LATERAL (
        SELECT * FROM {S}.attempts x WHERE x.command_id = ids.command_id OFFSET 0) a
    UNION
    SELECT a.* FROM u CROSS JOIN LATERAL (
        SELECT * FROM {S}.attempts x
        WHERE x.product_id = u.product_id AND x.outcome IS NULL OFFSET 0) a
), flying AS (
    SELECT r.command_id, r.emos_order_id FROM rec r
    WHERE r.outcome IS NULL AND EXISTS (SELECT 1 FROM u WHERE u.product_id = r.product_id)
), wanted AS (
    SELECT command_id FROM ids UNION SELECT command_id FROM flying
)
SELECT
    (SELECT json_agg(x) FROM (SELECT * FROM ins UNION ALL
                              SELECT {_PRODUCT} FROM locked) x) AS products,
    (SELECT count(*) FROM u) - (SELECT count(*) FROM ins)
      - (SELECT count(*) FROM locked l JOIN seen s USING (product_id)
         WHERE l.version = s.version) AS unsure,
    (SELECT json_agg(r ORDER BY r.product_id, r.sequence, r.attempt) FROM rec r) AS attempts,
    (SELECT json_agg(c) FROM wanted w CROSS JOIN LATERAL (
        SELECT * FROM {S}.commands x WHERE x.command_id = w.command_id OFFSET 0) c) AS commands,
    (SELECT json_agg(o) FROM flying f CROSS JOIN LATERAL (
        SELECT * FROM {S}.emos_orders x WHERE x.order_id = f.emos_order_id OFFSET 0) o)
      AS orders,
    (SELECT f.body::text FROM {S}.faults f WHERE f.id = 1) AS faults""")


@dataclass
class Loaded:
    """What the chain holds for a batch: its products (locked), the attempts of its commands
    and those still in flight for its products, the commands' records, the in-flight
    attempts' EMOS orders, and the fault knobs."""

    products: dict[str, ProductChain]
    attempts: list[Attempt]
    commands: dict[str, CommandState]
    orders: dict[str, EmosOrder]
    faults: Faults


async def lock_and_load(
    conn: AsyncConnection, cmds: Sequence[ProvisioningCommand], now: datetime,
    default_faults: Faults,
) -> Loaded:
    """Products seen for the first time are inserted (active and open, described by their
    first command of the batch), every product of the batch is locked in id order, and what
    the chain holds for the batch is read: one round trip, a second only when a product
    changed under the first one's snapshot (or another transaction inserted it meanwhile)."""
    first: dict[str, ProvisioningCommand] = {}
    for c in cmds:
        first.setdefault(c.product_id, c)
    params = {
        **column_values(_NEW_PRODUCTS, [
            (p, c.cpno, c.family.value, c.vendor, c.customer_id)
            for p, c in sorted(first.items())], "products"),
        "command_ids": sorted({c.command_id for c in cmds}),
        "active": BossStatus.ACTIVE.value, "now": now}
    row = (await _LOCK_AND_LOAD.fetch(conn, params))[0]
    if row["unsure"]:
        # The locks are all held now: a second look sees every committed change, and no
        # more can come.
        row = (await _LOCK_AND_LOAD.fetch(conn, params))[0]
    return Loaded(
        products={p.product_id: p for p in map(product, _rows(row["products"]))},
        attempts=[attempt(r) for r in _rows(row["attempts"])],
        commands={c.command_id: c for c in map(command, _rows(row["commands"]))},
        orders={o.order_id: o for o in map(order, _rows(row["orders"]))},
        faults=faults_of(row["faults"], default_faults))


# The stage worker's claim probes the products, attempts and EMOS orders one id at a time too (the
# batch's load above says why): with `= ANY(ARRAY(…))` on a database without statistics it
# planned sequential scans testing every product against the array, 8.5 ms a round at only
# 1,700 products (the gateway bench with 5 ms delays, `auto_explain`), growing with the table.
_CLAIM = DriverStatement(f"""
WITH due AS (
    SELECT a.product_id FROM {S}.attempts a
    WHERE a.outcome IS NULL AND a.due_at <= :now ORDER BY a.due_at LIMIT :limit
), locked AS (
    SELECT {_P_PRODUCT}, p.xmin::text AS version
    FROM (SELECT DISTINCT product_id FROM due ORDER BY product_id) o CROSS JOIN LATERAL (
        SELECT *, x.xmin FROM {S}.chain_products x WHERE x.product_id = o.product_id
        OFFSET 0 FOR UPDATE SKIP LOCKED) p
), fresh AS (
    SELECT l.* FROM locked l CROSS JOIN LATERAL (
        SELECT x.xmin FROM {S}.chain_products x WHERE x.product_id = l.product_id OFFSET 0) s
    WHERE l.version = s.xmin::text
), att AS (
    SELECT a.* FROM fresh f CROSS JOIN LATERAL (
        SELECT * FROM {S}.attempts x
        WHERE x.product_id = f.product_id AND x.outcome IS NULL AND x.due_at <= :now
        OFFSET 0) a
)
SELECT
    (SELECT json_agg(f) FROM fresh f) AS products,
    (SELECT count(*) FROM locked) - (SELECT count(*) FROM fresh) AS skipped,
    (SELECT json_agg(a ORDER BY a.product_id, a.sequence, a.attempt) FROM att a) AS attempts,
    (SELECT json_agg(o) FROM att a CROSS JOIN LATERAL (
        SELECT * FROM {S}.emos_orders x WHERE x.order_id = a.emos_order_id OFFSET 0) o)
      AS orders,
    (SELECT f.body::text FROM {S}.faults f WHERE f.id = 1) AS faults,
    (SELECT min(a.due_at) FROM {S}.attempts a
     WHERE a.outcome IS NULL AND a.due_at > :now) AS next_due""")


@dataclass
class Claimed:
    """A stage worker's round: the products it holds, their due attempts and those attempts'
    EMOS orders; how many products it locked but left for the next round (changed under its
    snapshot); when the next step not yet due is."""

    products: dict[str, ProductChain]
    attempts: list[Attempt]
    orders: dict[str, EmosOrder]
    faults: Faults
    skipped: int
    next_due: datetime | None


async def claim_due(
    conn: AsyncConnection, now: datetime, limit: int, default_faults: Faults
) -> Claimed:
    """Lock the products with the `limit` earliest due attempts (skipping those another
    worker or the consumer holds), and read their due attempts, in one statement."""
    row = (await _CLAIM.fetch(conn, {"now": now, "limit": limit}))[0]
    return Claimed(
        products={p.product_id: p for p in map(product, _rows(row["products"]))},
        attempts=[attempt(r) for r in _rows(row["attempts"])],
        orders={o.order_id: o for o in map(order, _rows(row["orders"]))},
        faults=faults_of(row["faults"], default_faults), skipped=row["skipped"],
        next_due=row["next_due"])


def _rows(value: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A `json_agg` column: NULL when there were no rows."""
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str) else value


def faults_of(body: str | None, default: Faults) -> Faults:
    return default if body is None else Faults.model_validate_json(body)


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def product(m: dict[str, Any]) -> ProductChain:
    return ProductChain(
        product_id=m["product_id"], last_sequence=m["last_sequence"],
        boss_status=BossStatus(m["boss_status"]), boss_sequence=m["boss_sequence"],
        boss_updated_at=_at(m["boss_updated_at"]), gateway_blocked=m["gateway_blocked"],
        gateway_sequence=m["gateway_sequence"],
        gateway_updated_at=_at(m["gateway_updated_at"]))


def attempt(m: dict[str, Any]) -> Attempt:
    return Attempt(
        command_id=m["command_id"], attempt=m["attempt"], product_id=m["product_id"],
        customer_id=m["customer_id"], cpno=m["cpno"], family=m["family"], vendor=m["vendor"],
        action=ProvisioningAction(m["action"]), sequence=m["sequence"],
        received_at=_at(m["received_at"]), step=Step(m["step"]), fate=Fate(m["fate"]),
        due_at=_ts(m["due_at"]),
        outcome=StageOutcome(m["outcome"]) if m["outcome"] else None,
        detail=m["detail"], emos_order_id=m["emos_order_id"],
        vendor_command=m["vendor_command"], boss_at=_ts(m["boss_at"]),
        emos_at=_ts(m["emos_at"]), gateway_ack_at=_ts(m["gateway_ack_at"]),
        gateway_at=_ts(m["gateway_at"]), finished_at=_ts(m["finished_at"]))


def command(m: dict[str, Any]) -> CommandState:
    return CommandState(
        command_id=m["command_id"], product_id=m["product_id"],
        action=ProvisioningAction(m["action"]), sequence=m["sequence"],
        received_at=_at(m["received_at"]), latest_attempt=m["latest_attempt"],
        outcome=m["outcome"], applied_attempt=m["applied_attempt"],
        emos_order_id=m["emos_order_id"])


def order(m: dict[str, Any]) -> EmosOrder:
    return EmosOrder(
        order_id=m["order_id"], command_id=m["command_id"], attempt=m["attempt"],
        product_id=m["product_id"], action=ProvisioningAction(m["action"]),
        status=OrderStatus(m["status"]), created_at=_at(m["created_at"]),
        due_at=_ts(m["due_at"]), sent_at=_ts(m["sent_at"]), closed_at=_ts(m["closed_at"]))



