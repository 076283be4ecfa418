"""SQL for the chain's state: products, attempts, EMOS orders, commands, fault knobs."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Row,
    Text,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from common.contracts.gateway import ProvisioningAction, StageOutcome
from common.contracts.reconciliation import ReconciliationReport

from ..domain.chain import (
    Attempt,
    BossStatus,
    EmosOrder,
    OrderStatus,
    ProductChain,
)
from ..domain.faults import Fate, Faults, Step
from ..domain.intake import CommandState
from ..domain.reconciliation import HeldState, OpenOrder
from . import tables as t

cp, at, eo, cm = t.chain_products, t.attempts, t.emos_orders, t.commands


async def lock_products(
    conn: AsyncConnection, product_ids: Sequence[str]
) -> dict[str, ProductChain]:
    """Products before their attempts, in id order: the lock order of every writer here."""
    rows = await conn.execute(select(cp).where(cp.c.product_id == any_(_texts(product_ids)))
                              .order_by(cp.c.product_id).with_for_update())
    return {r.product_id: _product(r) for r in rows}


_TEXT_ARRAY: TypeEngine[Any] = ARRAY(Text)


def _texts(values: Iterable[str]) -> BindParameter[Any]:
    """An array parameter: one statement (and one plan) whatever the batch's size."""
    return bindparam(None, list(values), type_=_TEXT_ARRAY)


def _product(row: Row[Any]) -> ProductChain:
    m = row._mapping
    return ProductChain(
        product_id=m["product_id"], last_sequence=m["last_sequence"],
        boss_status=BossStatus(m["boss_status"]), boss_sequence=m["boss_sequence"],
        boss_updated_at=m["boss_updated_at"], gateway_blocked=m["gateway_blocked"],
        gateway_sequence=m["gateway_sequence"], gateway_updated_at=m["gateway_updated_at"])


async def command_states(
    conn: AsyncConnection, command_ids: Iterable[str]
) -> dict[str, CommandState]:
    rows = await conn.execute(select(cm).where(cm.c.command_id == any_(_texts(command_ids))))
    return {r.command_id: CommandState(
        r.command_id, r.product_id, ProvisioningAction(r.action), r.sequence, r.received_at,
        r.latest_attempt, r.outcome, r.applied_attempt, r.emos_order_id) for r in rows}


async def recorded_attempts(
    conn: AsyncConnection, command_ids: Iterable[str], product_ids: Iterable[str]
) -> list[Attempt]:
    """Every attempt of these commands (to know which were seen) and every attempt still in
    flight for these products (a newer command supersedes them)."""
    rows = await conn.execute(select(at).where(or_(
        at.c.command_id == any_(_texts(command_ids)),
        and_(at.c.product_id == any_(_texts(product_ids)), at.c.outcome.is_(None))))
        .order_by(at.c.product_id, at.c.sequence, at.c.attempt))
    return [_attempt(r) for r in rows]


def _attempt(row: Row[Any]) -> Attempt:
    m = row._mapping
    return Attempt(
        command_id=m["command_id"], attempt=m["attempt"], product_id=m["product_id"],
        customer_id=m["customer_id"], cpno=m["cpno"], family=m["family"], vendor=m["vendor"],
        action=ProvisioningAction(m["action"]), sequence=m["sequence"],
        received_at=m["received_at"], step=Step(m["step"]), fate=Fate(m["fate"]),
        due_at=m["due_at"], outcome=StageOutcome(m["outcome"]) if m["outcome"] else None,
        detail=m["detail"], emos_order_id=m["emos_order_id"],
        vendor_command=m["vendor_command"], boss_at=m["boss_at"], emos_at=m["emos_at"],
        gateway_ack_at=m["gateway_ack_at"], gateway_at=m["gateway_at"],
        finished_at=m["finished_at"])


def _order(row: Row[Any]) -> EmosOrder:
    m = row._mapping
    return EmosOrder(
        order_id=m["order_id"], command_id=m["command_id"], attempt=m["attempt"],
        product_id=m["product_id"], action=ProvisioningAction(m["action"]),
        status=OrderStatus(m["status"]), created_at=m["created_at"], due_at=m["due_at"],
        sent_at=m["sent_at"], closed_at=m["closed_at"])


async def orders_of(conn: AsyncConnection, order_ids: Iterable[str]) -> dict[str, EmosOrder]:
    ids = list(order_ids)
    if not ids:
        return {}
    rows = await conn.execute(select(eo).where(eo.c.order_id == any_(_texts(ids))))
    return {r.order_id: _order(r) for r in rows}


async def claim_due(
    conn: AsyncConnection, now: datetime, limit: int
) -> tuple[dict[str, ProductChain], list[Attempt]]:
    """Lock the products with due attempts (skipping those another worker or the consumer
    holds), then read their due attempts. Products are always locked before their attempts,
    by the consumer too, so the two never deadlock."""
    due_products = (select(at.c.product_id)
                    .where(at.c.outcome.is_(None), at.c.due_at <= now)
                    .order_by(at.c.due_at).limit(limit))
    products = (await conn.execute(
        select(cp).where(cp.c.product_id.in_(due_products.scalar_subquery()))
        .order_by(cp.c.product_id).with_for_update(skip_locked=True))).all()
    chains = {r.product_id: _product(r) for r in products}
    if not chains:
        return chains, []
    rows = await conn.execute(
        select(at).where(at.c.product_id == any_(_texts(chains)), at.c.outcome.is_(None),
                         at.c.due_at <= now)
        .order_by(at.c.product_id, at.c.sequence, at.c.attempt))
    return chains, [_attempt(r) for r in rows]


async def load_faults(conn: AsyncConnection, default: Faults) -> Faults:
    body = await conn.scalar(select(t.faults.c.body).where(t.faults.c.id == 1))
    return default if body is None else Faults.model_validate(body)


async def save_faults(conn: AsyncConnection, faults: Faults, now: datetime) -> None:
    body = faults.model_dump(mode="json")
    await conn.execute(pg_insert(t.faults).values(id=1, body=body, updated_at=now)
                       .on_conflict_do_update(index_elements=[t.faults.c.id],
                                              set_={"body": body, "updated_at": now}))


async def clear_faults(conn: AsyncConnection) -> None:
    await conn.execute(t.faults.delete())


async def held_states(conn: AsyncConnection, prefix: str) -> dict[str, HeldState]:
    """What the gateway holds per product, with the newest attempt still in the chain."""
    newest = (select(at.c.sequence, at.c.action)
              .where(at.c.product_id == cp.c.product_id, at.c.outcome.is_(None))
              .order_by(at.c.sequence.desc()).limit(1).lateral("newest"))
    rows = await conn.execute(
        select(cp.c.product_id, cp.c.gateway_blocked, cp.c.gateway_sequence,
               newest.c.sequence, newest.c.action)
        .select_from(cp.outerjoin(newest, true()))
        .where(cp.c.product_id.startswith(prefix, autoescape=True)))
    return {r.product_id: HeldState(
        r.product_id, r.gateway_blocked, r.gateway_sequence, r.sequence,
        ProvisioningAction(r.action) if r.action else None) for r in rows}


async def open_orders(conn: AsyncConnection, prefix: str) -> list[OpenOrder]:
    rows = await conn.execute(
        select(eo.c.order_id, eo.c.product_id, eo.c.created_at)
        .where(eo.c.status.in_([OrderStatus.RECEIVED.value, OrderStatus.SENT_TO_GATEWAY.value]),
               eo.c.product_id.startswith(prefix, autoescape=True))
        .order_by(eo.c.created_at))
    return [OpenOrder(r.order_id, r.product_id, r.created_at) for r in rows]


async def store_reconciliation(conn: AsyncConnection, report: ReconciliationReport) -> None:
    await conn.execute(insert(t.reconciliation_runs).values(
        as_of=report.as_of, missed_suspensions=report.missed_suspensions,
        wrong_suspensions=report.wrong_suspensions, stuck_emos_orders=report.stuck_emos_orders,
        report=report.model_dump(mode="json")))


async def latest_reconciliation(conn: AsyncConnection) -> ReconciliationReport | None:
    body = await conn.scalar(select(t.reconciliation_runs.c.report)
                             .order_by(t.reconciliation_runs.c.run_id.desc()).limit(1))
    return None if body is None else ReconciliationReport.model_validate(body)


async def cross_month_counts(
    conn: AsyncConnection, start: datetime, end: datetime, as_of: datetime, prefix: str
) -> tuple[int, int, int, int]:
    """Orders created in [start, end): all, closed at or after `end`, still open with the month
    over by `as_of`, still open."""
    is_open = eo.c.closed_at.is_(None)
    row = (await conn.execute(select(
        func.count(),
        func.count().filter(eo.c.closed_at >= end),
        func.count().filter(is_open, literal(as_of >= end)),
        func.count().filter(is_open),
    ).where(eo.c.created_at >= start, eo.c.created_at < end,
            eo.c.product_id.startswith(prefix, autoescape=True)))).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
