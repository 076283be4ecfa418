"""SQL for what staff change through the API: rule table versions, credit profiles, exemptions,
the audit log, work orders, the mass-suspension guard."""

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.db import driver

from ...adapters import tables as t
from ...credit.domain.commands import WorkOrderKind, WorkOrderStatus
from ...credit.domain.profiles import CreditProfile, Exemption
from ...credit.domain.rule_table import DEFAULT_RULES, RuleTable
from ..domain.expiries import RunOut


async def audit(conn: AsyncConnection, at: datetime, actor: str, entity: str, entity_id: str,
                action: str, old: Any, new: Any) -> None:
    await conn.execute(insert(t.audit_log).values(
        at=at, actor=actor, entity=entity, entity_id=entity_id, action=action, old=old, new=new))


async def audit_entries(conn: AsyncConnection, entity: str | None, entity_id: str | None,
                        limit: int) -> list[dict[str, Any]]:
    a = t.audit_log
    q = select(a).order_by(a.c.id.desc()).limit(limit)
    if entity:
        q = q.where(a.c.entity == entity)
    if entity_id:
        q = q.where(a.c.entity_id == entity_id)
    return [dict(r._mapping) for r in await conn.execute(q)]


async def repaired_sequences(conn: AsyncConnection, product_ids: list[str],
                             newest: int) -> dict[str, list[int]]:
    """The sequences reconciliation's newest `newest` repairs of each product sent (the
    audit log's `chain_repair` entries), newest first; one statement for the lot."""
    rows = await conn.execute(text("""
        SELECT entity_id, (new->>'sequence')::bigint FROM (
            SELECT entity_id, new, row_number() OVER (PARTITION BY entity_id ORDER BY id DESC) n
            FROM credit.audit_log
            WHERE entity = 'chain_repair' AND entity_id = ANY(CAST(:ids AS text[]))) a
        WHERE n <= :newest ORDER BY entity_id, n"""), {"ids": product_ids, "newest": newest})
    found: dict[str, list[int]] = {}
    for product_id, sequence in rows:
        found.setdefault(product_id, []).append(int(sequence))
    return found


async def repairs_done_by_hand(conn: AsyncConnection,
                               product_ids: list[str]) -> dict[str, int]:
    """Each product's sequence at its newest repair work order done (a person made the
    gateway hold it): only repairs after it count toward the limit. Absent: none done."""
    w = t.work_orders
    rows = await conn.execute(
        select(w.c.product_id, func.max(w.c.sequence))
        .where(w.c.product_id.in_(product_ids), w.c.kind == WorkOrderKind.REPAIR.value,
               w.c.status == WorkOrderStatus.DONE.value, w.c.sequence.is_not(None))
        .group_by(w.c.product_id))
    return {product_id: int(sequence) for product_id, sequence in rows}


# --- rule table -----------------------------------------------------------------------------

async def rule_version(conn: AsyncConnection) -> int:
    """The newest rule table's version: asked by every balance batch (on the driver, a
    third of the CPU of SQLAlchemy's round trip)."""
    return int(await (await driver(conn)).fetchval(_RULE_VERSION) or 1)


_RULE_VERSION = "SELECT coalesce(max(version), 1) FROM credit.rule_tables"


async def rule_table(conn: AsyncConnection) -> tuple[RuleTable, Row[Any] | None]:
    r = t.rule_tables
    row = (await conn.execute(select(r).order_by(r.c.version.desc()).limit(1))).first()
    if row is None:
        return DEFAULT_RULES, None
    return RuleTable(version=row.version, rows=row.rows), row


async def store_rule_table(conn: AsyncConnection, table: RuleTable, by: str, reason: str,
                           at: datetime) -> bool:
    """False when another change took this version first."""
    r = t.rule_tables
    rows = [row.model_dump(mode="json") for row in table.rows]
    stored = await conn.execute(pg_insert(r).values(
        version=table.version, rows=rows, changed_by=by, reason=reason, changed_at=at,
    ).on_conflict_do_nothing().returning(r.c.version))
    return stored.first() is not None


# --- profiles and exemptions ----------------------------------------------------------------

_PROFILES = """
    SELECT customer_id, star_level, credit_limit_fen, tier FROM credit.credit_profiles
    WHERE customer_id = ANY($1::text[])"""
_EXEMPTIONS = """
    SELECT customer_id, kind, reason, approver, until FROM credit.exemptions
    WHERE customer_id = ANY($1::text[]) AND removed_at IS NULL ORDER BY created_at, exemption_id"""


async def profiles_for(
    conn: AsyncConnection, customer_ids: list[str]
) -> dict[str, CreditProfile]:
    """Each customer's profile and the exemptions not removed (the caller checks expiry).
    Asked by every balance batch for its customers: one array parameter (one prepared
    statement whatever the count, where `IN (…)` made one per count), on the driver."""
    if not customer_ids:
        return {}
    raw = await driver(conn)
    found = {r[0]: r for r in await raw.fetch(_PROFILES, customer_ids)}
    exempt: dict[str, list[Exemption]] = {}
    for r in await raw.fetch(_EXEMPTIONS, customer_ids):
        exempt.setdefault(r[0], []).append(Exemption(r[1], r[2], r[3], r[4]))
    return {
        c: CreditProfile(c, found[c][1] if c in found else None,
                         found[c][2] if c in found else None, tuple(exempt.get(c, ())),
                         found[c][3] if c in found else None)
        for c in customer_ids
    }


async def customer_heard_of(conn: AsyncConnection, customer_id: str) -> bool:
    """Has credit-control heard of this customer: a profile, an exemption, or a product a
    balance event brought? (A rare admin write asks; billing is asked when this says no.)"""
    p, e, pc = t.credit_profiles, t.exemptions, t.product_credit
    found = await conn.scalar(select(
        exists().where(p.c.customer_id == customer_id)
        | exists().where(e.c.customer_id == customer_id)
        | exists().where(pc.c.customer_id == customer_id)))
    return bool(found)


async def profile_row(conn: AsyncConnection, customer_id: str) -> Row[Any] | None:
    p = t.credit_profiles
    return (await conn.execute(select(p).where(p.c.customer_id == customer_id))).first()


async def upsert_profile(conn: AsyncConnection, values: dict[str, Any]) -> None:
    p = t.credit_profiles
    stmt = pg_insert(p).values(**values)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[p.c.customer_id],
        set_={k: stmt.excluded[k] for k in values if k != "customer_id"}))


async def add_exemption(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    e = t.exemptions
    done = await conn.execute(pg_insert(e).values(**values).on_conflict_do_nothing()
                              .returning(e.c.exemption_id))
    return done.first() is not None


async def exemption(conn: AsyncConnection, exemption_id: str) -> Row[Any] | None:
    e = t.exemptions
    return (await conn.execute(select(e).where(e.c.exemption_id == exemption_id))).first()


async def remove_exemption(conn: AsyncConnection, exemption_id: str, by: str,
                           at: datetime) -> None:
    e = t.exemptions
    await conn.execute(update(e).where(e.c.exemption_id == exemption_id)
                       .values(removed_by=by, removed_at=at))


async def exemptions_list(conn: AsyncConnection, kind: str | None, customer_id: str | None,
                          active_at: datetime | None) -> list[dict[str, Any]]:
    e = t.exemptions
    q = select(e).order_by(e.c.created_at, e.c.exemption_id)
    if kind:
        q = q.where(e.c.kind == kind)
    if customer_id:
        q = q.where(e.c.customer_id == customer_id)
    if active_at is not None:
        q = q.where(e.c.removed_at.is_(None), or_(e.c.until.is_(None), e.c.until > active_at))
    return [dict(r._mapping) for r in await conn.execute(q)]


async def lock_customers(conn: AsyncConnection, customer_ids: list[str]) -> None:
    """The customers' exemptions to this transaction until it ends: adding, removing and
    announcing the expiry of a customer's exemptions, one at a time, so the last
    `credit.exemption_changed` published for its products says what holds (an expiry
    announced while a new red list is added must not come after it saying "not exempt").
    In id order, so two holders of several never wait for each other."""
    for customer_id in sorted(set(customer_ids)):
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                           {"k": f"credit.exemptions:{customer_id}"})


# Exemptions run out by `at` (their `until` passed), not removed, not announced yet
# (ix_exemptions_expiry_due, migration 0035); of the given customers, or the first `limit`.
_RUN_OUT = (
    "SELECT exemption_id, customer_id, kind, until FROM credit.exemptions "
    "WHERE until IS NOT NULL AND until <= :at AND removed_at IS NULL "
    "  AND expiry_announced_at IS NULL {customers} "
    "ORDER BY until, exemption_id {limit}")


async def run_out_exemptions(conn: AsyncConnection, at: datetime, limit: int | None = None,
                             customer_ids: list[str] | None = None) -> list[RunOut]:
    params: dict[str, Any] = {"at": at}
    if customer_ids is not None:
        params["customers"] = customer_ids
    if limit is not None:
        params["limit"] = limit
    query = _RUN_OUT.format(
        customers="" if customer_ids is None else
        "AND customer_id = ANY(CAST(:customers AS text[]))",
        limit="" if limit is None else "LIMIT :limit")
    rows = await conn.execute(text(query), params)
    return [RunOut(r.exemption_id, r.customer_id, r.kind, r.until) for r in rows]


async def mark_expiry_announced(conn: AsyncConnection, exemption_ids: list[str],
                                at: datetime) -> None:
    """The marker: their expiry is announced (or needed none), never again."""
    e = t.exemptions
    await conn.execute(update(e).where(e.c.exemption_id.in_(exemption_ids),
                                       e.c.expiry_announced_at.is_(None))
                       .values(expiry_announced_at=at))


# --- work orders ----------------------------------------------------------------------------

async def insert_work_order(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    w = t.work_orders
    done = await conn.execute(pg_insert(w).values(**values).on_conflict_do_nothing()
                              .returning(w.c.work_order_id))
    return done.first() is not None


async def work_order_for_update(conn: AsyncConnection, work_order_id: str) -> Row[Any] | None:
    w = t.work_orders
    return (await conn.execute(select(w).where(w.c.work_order_id == work_order_id)
                               .with_for_update())).first()


async def update_work_order(conn: AsyncConnection, work_order_id: str, **values: Any) -> None:
    w = t.work_orders
    await conn.execute(update(w).where(w.c.work_order_id == work_order_id).values(**values))


async def open_work_orders_for(conn: AsyncConnection, product_id: str) -> list[Row[Any]]:
    w = t.work_orders
    return list(await conn.execute(select(w).where(
        w.c.product_id == product_id, w.c.status.in_(OPEN_STATUSES)).with_for_update()))


# The statuses of an order still to be worked (domain.commands.WorkOrderStatus names them all).
OPEN_STATUSES = (WorkOrderStatus.CREATED.value, WorkOrderStatus.ASSIGNED.value)


async def work_orders(conn: AsyncConnection, filters: dict[str, Any], overdue_at: datetime | None,
                      limit: int) -> list[dict[str, Any]]:
    w = t.work_orders
    q = select(w).order_by(w.c.created_at, w.c.work_order_id).limit(limit)
    for column in ("work_order_id", "status", "product_id", "account_id", "customer_id",
                   "action", "role", "assignee", "kind"):
        if filters.get(column):
            q = q.where(w.c[column] == filters[column])
    if overdue_at is not None:
        q = q.where(and_(w.c.status.in_(OPEN_STATUSES), w.c.due_at < overdue_at))
    return [dict(r._mapping) for r in await conn.execute(q)]


# --- guard ----------------------------------------------------------------------------------

async def guard(conn: AsyncConnection) -> Row[Any] | None:
    g = t.guard_settings
    return (await conn.execute(select(g).where(g.c.id == 1))).first()


async def lock_guard(conn: AsyncConnection) -> None:
    """The guard's settings to this transaction until it ends (its writers, one at a time)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('credit.guard_settings'))"))


async def store_guard(conn: AsyncConnection, values: dict[str, Any]) -> None:
    g = t.guard_settings
    stmt = pg_insert(g).values(id=1, **values)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[g.c.id], set_={k: stmt.excluded[k] for k in values}))


async def hold(conn: AsyncConnection, sweep_id: str) -> Row[Any] | None:
    h = t.sweep_holds
    return (await conn.execute(select(h).where(h.c.sweep_id == sweep_id).with_for_update())
            ).first()


async def insert_hold(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(pg_insert(t.sweep_holds).values(**values).on_conflict_do_nothing())


async def set_hold(conn: AsyncConnection, sweep_id: str, **values: Any) -> None:
    h = t.sweep_holds
    await conn.execute(update(h).where(h.c.sweep_id == sweep_id).values(**values))


async def holds(conn: AsyncConnection, status: str | None) -> list[dict[str, Any]]:
    h = t.sweep_holds
    q = select(h).order_by(h.c.created_at)
    if status:
        q = q.where(h.c.status == status)
    return [dict(r._mapping) for r in await conn.execute(q)]


async def rule_table_version(conn: AsyncConnection, version: int) -> RuleTable:
    """The rule table a sweep started with (a resumed sweep keeps its plan)."""
    r = t.rule_tables
    row = (await conn.execute(select(r).where(r.c.version == version))).first()
    if row is None:
        return DEFAULT_RULES
    return RuleTable(version=row.version, rows=row.rows)


async def products_of_customer(conn: AsyncConnection, customer_id: str) -> list[Row[Any]]:
    """(product_id, account_id) of every product credit control knows of the customer."""
    rows = await conn.execute(text(
        "SELECT product_id, account_id FROM credit.product_credit WHERE customer_id = :c "
        "ORDER BY product_id"), {"c": customer_id})
    return list(rows)
