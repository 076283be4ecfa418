"""SQL for the chain's state: products, attempts, EMOS orders, commands, fault knobs."""

from datetime import datetime

from sqlalchemy import (
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.gateway import ProvisioningAction
from common.contracts.reconciliation import ReconciliationReport

from ..domain.chain import (
    OrderStatus,
)
from ..domain.faults import Faults
from ..domain.reconciliation import HeldState, OpenOrder
from . import tables as t

cp, at, eo, cm = t.chain_products, t.attempts, t.emos_orders, t.commands


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
