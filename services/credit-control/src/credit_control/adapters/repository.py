"""credit-control's SQL in one place."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import parse_bill_month
from common.contracts.billing import BalanceChanged
from common.contracts.credit_control import CreditState
from common.contracts.snapshots import ProductSnapshot

from . import tables as t


def _position_upsert() -> Any:
    ap = t.account_positions
    columns = ["account_id", "sequence", "balance_fen", "amount_due_fen", "dues", "customer",
               "cause", "as_of"]
    stmt = pg_insert(ap).values({c: bindparam(c, type_=ap.c[c].type) for c in columns})
    return stmt.on_conflict_do_update(
        index_elements=[ap.c.account_id],
        set_={c: stmt.excluded[c] for c in columns if c != "account_id"},
        where=ap.c.sequence < stmt.excluded.sequence,  # a stale write never wins
    )


def _product_upsert() -> Any:
    pc = t.product_credit
    columns = ["product_id", "account_id", "family", "product", "state", "state_changed_at",
               *FACT_COLUMNS]
    stmt = pg_insert(pc).values({c: bindparam(c, type_=pc.c[c].type) for c in columns})
    return stmt.on_conflict_do_update(
        index_elements=[pc.c.product_id],
        set_={"product": stmt.excluded.product, "account_id": stmt.excluded.account_id,
              **{c: stmt.excluded[c] for c in FACT_COLUMNS}},
    ).returning(*pc.c)


FACT_COLUMNS = ["customer_id", "tier", "star_level", "balance_fen", "amount_due_fen",
                "oldest_due_month"]


# Built once: these run for every balance event, and building them is most of their cost.
POSITION_UPSERT = _position_upsert()
PRODUCT_UPSERT = _product_upsert()


def _position_params(event: BalanceChanged) -> dict[str, Any]:
    return {
        "account_id": event.account_id, "sequence": event.sequence,
        "balance_fen": event.balance_fen, "amount_due_fen": event.amount_due_fen,
        "dues": [d.model_dump() for d in event.dues],
        "customer": event.customer.model_dump(mode="json"), "cause": event.cause.value,
        "as_of": event.as_of,
    }


def _product_params(event: BalanceChanged, p: ProductSnapshot) -> dict[str, Any]:
    return {
        "product_id": p.product_id, "account_id": event.account_id, "family": p.family.value,
        "product": p.model_dump(mode="json"), "state": CreditState.NORMAL.value,
        "state_changed_at": event.as_of, **account_facts(event),
    }


def account_facts(event: BalanceChanged) -> dict[str, Any]:
    return {
        "customer_id": event.customer.customer_id, "tier": event.customer.tier.value,
        "star_level": event.customer.star_level, "balance_fen": event.balance_fen,
        "amount_due_fen": event.amount_due_fen,
        "oldest_due_month": parse_bill_month(event.dues[0].bill_month) if event.dues else None,
    }


async def product_for_update(conn: AsyncConnection, product_id: str) -> Row[Any] | None:
    pc = t.product_credit
    return (
        await conn.execute(select(pc).where(pc.c.product_id == product_id).with_for_update())
    ).first()


async def position(conn: AsyncConnection, account_id: str) -> Row[Any] | None:
    ap = t.account_positions
    return (await conn.execute(select(ap).where(ap.c.account_id == account_id))).first()


async def insert_decision(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """False when the same decision was already taken (same deterministic id)."""
    d = t.decisions
    stmt = pg_insert(d).values(**values).on_conflict_do_nothing().returning(d.c.decision_id)
    return (await conn.execute(stmt)).first() is not None


async def decision(conn: AsyncConnection, decision_id: str) -> Row[Any] | None:
    d = t.decisions
    return (await conn.execute(select(d).where(d.c.decision_id == decision_id))).first()


async def set_state(
    conn: AsyncConnection, product_id: str, before: CreditState, after: CreditState,
    at: datetime, cause: str, decision_id: str | None, **extra: Any,
) -> None:
    pc = t.product_credit
    if after is CreditState.NORMAL:
        # A new arrears cycle: notices of the same bill month may be sent again.
        extra = {"cycle": pc.c.cycle + 1, "warning_level": 0, **extra}
    await conn.execute(
        update(pc).where(pc.c.product_id == product_id)
        .values(state=after.value, state_changed_at=at, **extra)
    )
    await conn.execute(insert(t.state_history).values(
        product_id=product_id, state_before=before.value, state_after=after.value,
        cause=cause, decision_id=decision_id, at=at))


async def sequences_for_update(conn: AsyncConnection, account_ids: list[str]) -> dict[str, int]:
    """The newest applied sequence per account, locking the rows in account id order."""
    ap = t.account_positions
    rows = await conn.execute(
        select(ap.c.account_id, ap.c.sequence).where(ap.c.account_id.in_(account_ids))
        .order_by(ap.c.account_id).with_for_update())
    return {a: int(seq) for a, seq in rows}


async def save_positions(conn: AsyncConnection, events: list[BalanceChanged]) -> None:
    """The batch's newest position per account, in one round of statements."""
    await conn.execute(POSITION_UPSERT, [
        _position_params(e) for e in sorted(events, key=lambda e: e.account_id)])


async def upsert_products_many(
    conn: AsyncConnection, snapshots: list[tuple[BalanceChanged, ProductSnapshot]]
) -> list[Row[Any]]:
    """Fresh snapshots and account facts for the batch's products (new ones start normal),
    in product id order (the lock order everyone uses); returns the rows, locked."""
    if not snapshots:
        return []
    result = await conn.execute(PRODUCT_UPSERT, [
        _product_params(e, p) for e, p in sorted(snapshots, key=lambda s: s[1].product_id)])
    return list(result)


async def owing_accounts(conn: AsyncConnection) -> list[str]:
    """Accounts that owe, as of their newest balance event (a plain read: no locks)."""
    ap = t.account_positions
    rows = await conn.execute(
        select(ap.c.account_id).where(ap.c.amount_due_fen > 0).order_by(ap.c.account_id))
    return list(rows.scalars())


async def position_for_update(conn: AsyncConnection, account_id: str) -> Row[Any] | None:
    ap = t.account_positions
    return (await conn.execute(
        select(ap).where(ap.c.account_id == account_id).with_for_update())).first()


async def products_for_update(conn: AsyncConnection, account_id: str) -> list[Row[Any]]:
    """The account's products, locked in product id order (the consumer's order too)."""
    pc = t.product_credit
    rows = await conn.execute(
        select(pc).where(pc.c.account_id == account_id).order_by(pc.c.product_id)
        .with_for_update())
    return list(rows)


async def product(conn: AsyncConnection, product_id: str) -> Row[Any] | None:
    pc = t.product_credit
    return (await conn.execute(select(pc).where(pc.c.product_id == product_id))).first()


async def history(conn: AsyncConnection, product_id: str) -> dict[str, list[dict[str, Any]]]:
    d, h = t.decisions, t.state_history
    decisions = await conn.execute(
        select(d).where(d.c.product_id == product_id).order_by(d.c.created_at, d.c.decision_id))
    changes = await conn.execute(select(h).where(h.c.product_id == product_id).order_by(h.c.id))
    return {
        "decisions": [dict(r._mapping) for r in decisions],
        "state_history": [dict(r._mapping) for r in changes],
    }


async def set_loop(conn: AsyncConnection, product_id: str, **values: Any) -> None:
    pc = t.product_credit
    await conn.execute(update(pc).where(pc.c.product_id == product_id).values(**values))


async def loop_due(conn: AsyncConnection, at: datetime, timeout_s: float,
                   limit: int) -> list[Row[Any]]:
    """Products whose command attempt needs attention: its backoff ran out, or it got no final
    result in time. Skips rows another worker holds."""
    pc = t.product_credit
    timed_out = and_(pc.c.retry_at.is_(None),
                     pc.c.command_sent_at < at - timedelta(seconds=timeout_s))
    rows = await conn.execute(
        select(pc).where(pc.c.pending_command_id.is_not(None),
                         pc.c.pending_work_order_id.is_(None),
                         or_(pc.c.retry_at <= at, timed_out))
        .order_by(pc.c.product_id).limit(limit).with_for_update(skip_locked=True))
    return list(rows)


async def desired_page(conn: AsyncConnection, after: str | None, limit: int) -> list[Row[Any]]:
    pc = t.product_credit
    q = (select(pc.c.product_id, pc.c.account_id, pc.c.customer_id, pc.c.product, pc.c.family,
                pc.c.state, pc.c.command_seq, pc.c.command_at)
         .where(pc.c.family.in_(["MAS", "SMS_DIRECT"])).order_by(pc.c.product_id).limit(limit))
    if after:
        q = q.where(pc.c.product_id > after)
    return list(await conn.execute(q))
