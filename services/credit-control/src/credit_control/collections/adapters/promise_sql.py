"""Promises to pay in credit.promises (collections/domain/promises.py). The sweep's own test
of an open promise is credit/adapters/sweep_sql.py `_PROMISES_SQL`."""

from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.db import DriverStatement

from ..domain.promises import Promise, PromiseStatus, Step

_COLUMNS = ("promise_id, entry_id, account_id, customer_id, manager, status, promised_date, "
            "amount_fen, schedule, instalments, covered_through, baseline_fen, recorded_by, "
            "recorded_role, approved_by, reason, note, recorded_at, recorded_on, created_at, "
            "closed_on, closed_at, paid_fen")


def to_promise(row: Any) -> Promise:
    steps = tuple(Step(date.fromisoformat(s["due_on"]), int(s["amount_fen"]),
                       int(s["cumulative_fen"])) for s in row.schedule)
    return Promise(row.promise_id, row.account_id, PromiseStatus(row.status), row.promised_date,
                   int(row.amount_fen), steps, row.covered_through, int(row.baseline_fen),
                   row.recorded_at)


def schedule_json(steps: tuple[Step, ...]) -> str:
    return orjson.dumps([{"due_on": s.due_on.isoformat(), "amount_fen": s.amount_fen,
                          "cumulative_fen": s.cumulative_fen} for s in steps]).decode()


_OPEN_OF = DriverStatement(f"SELECT {_COLUMNS} FROM credit.promises "
                           "WHERE status = 'open' AND account_id = ANY(CAST(:a AS text[]))")


async def open_promises(conn: AsyncConnection, account_ids: list[str]) -> list[Promise]:
    """The open promises of these accounts. The balance path asks once per batch for the
    batch's accounts (one index probe each, `ux_promises_open`; on the driver, as the batch's
    other statements), so its cost does not grow with the promises open elsewhere."""
    rows = await _OPEN_OF.fetch(conn, {"a": account_ids})
    return [to_promise(SimpleNamespace(**dict(r))) for r in rows]


async def lock_account(conn: AsyncConnection, account_id: str) -> None:
    """Promises of one account are recorded one at a time (limits count the others)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('credit.promises|' || :a))"),
                       {"a": account_id})


async def dues(conn: AsyncConnection, account_id: str) -> list[tuple[str, int]]:
    """The account's newest dues per bill month ((YYYY-MM, fen), oldest first)."""
    row = (await conn.execute(text("SELECT dues FROM credit.account_positions "
                                   "WHERE account_id = :a"), {"a": account_id})).one_or_none()
    if row is None:
        return []
    return sorted((d["bill_month"], int(d["amount_due_fen"])) for d in row.dues)


async def has_open(conn: AsyncConnection, account_id: str) -> str | None:
    return (await conn.execute(text("SELECT promise_id FROM credit.promises WHERE account_id = :a "
                                    "AND status = 'open'"), {"a": account_id})).scalar()


async def count_since(conn: AsyncConnection, account_id: str, since: date) -> int:
    return int((await conn.execute(text(
        "SELECT count(*) FROM credit.promises WHERE account_id = :a AND recorded_on >= :d"),
        {"a": account_id, "d": since})).scalar_one())


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    cols = ", ".join(values)
    binds = ", ".join(f"CAST(:{k} AS jsonb)" if k in ("schedule", "request") else f":{k}"
                      for k in values)
    await conn.execute(text(f"INSERT INTO credit.promises ({cols}) VALUES ({binds})"), values)


async def get(conn: AsyncConnection, promise_id: str) -> Any:
    return (await conn.execute(text(f"SELECT {_COLUMNS} FROM credit.promises "
                                    "WHERE promise_id = :p"), {"p": promise_id})).one_or_none()


async def listed(conn: AsyncConnection, status: str | None, manager: str | None,
                 account_id: str | None, entry_id: str | None, limit: int) -> list[Any]:
    where: list[str] = []
    values: dict[str, Any] = {"limit": limit}
    for col, v in (("status", status), ("manager", manager), ("account_id", account_id),
                   ("entry_id", entry_id)):
        if v is not None:
            where.append(f"{col} = :{col}")
            values[col] = v
    sql = (f"SELECT {_COLUMNS} FROM credit.promises "
           + (f"WHERE {' AND '.join(where)} " if where else "")
           + "ORDER BY recorded_at DESC, promise_id LIMIT :limit")
    return list(await conn.execute(text(sql), values))


async def open_with_dues(conn: AsyncConnection, as_of: datetime) -> list[tuple[Any, Any]]:
    """The open promises made by `as_of`, locked, each with its account's dues now."""
    rows = await conn.execute(text(
        f"SELECT {', '.join('p.' + c.strip() for c in _COLUMNS.split(','))}, "
        "ap.dues AS position_dues FROM credit.promises p "
        "LEFT JOIN credit.account_positions ap ON ap.account_id = p.account_id "
        "WHERE p.status = 'open' AND p.recorded_at <= :as_of "
        "ORDER BY p.promise_id FOR UPDATE OF p"), {"as_of": as_of})
    return [(r, r.position_dues or []) for r in rows]


async def close(conn: AsyncConnection, promise_id: str, status: str, on: date, at: datetime,
                paid_fen: int) -> None:
    await conn.execute(text(
        "UPDATE credit.promises SET status = :s, closed_on = :on, closed_at = :at, "
        "paid_fen = :paid WHERE promise_id = :p AND status = 'open'"),
        {"s": status, "on": on, "at": at, "paid": paid_fen, "p": promise_id})


async def mark_entry_promised(conn: AsyncConnection, entry_id: str, promised_date: date) -> None:
    await conn.execute(text(
        "UPDATE credit.worklist_entries SET status = 'promised', promised_date = :d, "
        "refusal_reason = NULL WHERE entry_id = :e"), {"d": promised_date, "e": entry_id})


async def close_entry_kept(conn: AsyncConnection, entry_id: str, at: datetime,
                           promise_id: str) -> None:
    """A kept promise closes its entry (if a payment's close-on-clear has not already)."""
    await conn.execute(text(
        "UPDATE credit.worklist_entries SET status = 'closed', "
        "closed_at = greatest(:at, refreshed_at), closed_reason = :why WHERE entry_id = :e "
        "AND status IN ('open', 'contacted', 'promised', 'refused')"),
        {"at": at, "why": f"promise {promise_id} kept", "e": entry_id})


async def report(conn: AsyncConnection, since: date, until: date) -> list[Any]:
    """Per account manager: promises made in [since, until] and what became of them."""
    return list(await conn.execute(text("""
        SELECT manager, count(*)::int AS made,
               count(*) FILTER (WHERE status = 'kept')::int AS kept,
               count(*) FILTER (WHERE status = 'broken')::int AS broken,
               count(*) FILTER (WHERE status = 'open')::int AS open,
               COALESCE(sum(amount_fen), 0)::bigint AS promised_fen,
               COALESCE(sum(paid_fen) FILTER (WHERE status = 'kept'), 0)::bigint AS kept_fen
        FROM credit.promises WHERE recorded_on BETWEEN :since AND :until
        GROUP BY manager ORDER BY made DESC, manager"""), {"since": since, "until": until}))
