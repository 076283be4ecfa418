"""The collections worklists' SQL. A refresh is a fixed handful of set-based statements over
the account positions (each account's newest dues per bill month and customer snapshot), not
a loop over accounts; entry ids are deterministic, so a re-run adds nothing twice."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date

from ...adapters import tables as t
from ..domain.collections import ACTIVE, WorklistRules

_ACTIVE_SQL = "('open', 'contacted', 'promised', 'refused')"
assert {s.value for s in ACTIVE} == {"open", "contacted", "promised", "refused"}


def _sql(statement: str) -> Any:
    return text(" ".join(statement.split()))


# The accounts owing for bill months before the refresh's month, and the lists they belong
# on: the same rules as domain.collections.WorklistRules.kinds (tested against each other).
# The position's customer is json (migration 0029); an entry keeps jsonb, compared below.
_OWING = """
    owing AS (
        SELECT p.account_id, p.customer::jsonb AS customer, p.as_of AS position_at,
               sum((d ->> 'amount_due_fen')::bigint) AS arrears,
               count(*)::int AS months,
               to_date(min(d ->> 'bill_month'), 'YYYY-MM') AS oldest,
               jsonb_agg(d ORDER BY d ->> 'bill_month') AS dues
        FROM credit.account_positions p
        CROSS JOIN LATERAL jsonb_array_elements(p.dues) d
        WHERE p.amount_due_fen > 0 AND d ->> 'bill_month' < :month
          AND (d ->> 'amount_due_fen')::bigint > 0
        GROUP BY p.account_id),
    listed AS (
        SELECT o.*, k.kind FROM owing o
        CROSS JOIN LATERAL (VALUES ('call', o.arrears > :threshold),
                                   ('visit', o.months >= :min_months AND :visit_day)) AS k(kind, ok)
        WHERE k.ok)"""

_REOPEN = _sql(f"""
    WITH {_OWING}
    UPDATE credit.worklist_entries e SET status = 'open', reopened = e.reopened + 1,
        closed_at = NULL, closed_reason = NULL, promised_date = NULL, refusal_reason = NULL,
        arrears_fen = l.arrears, months = l.months,
        oldest_month = l.oldest, dues = l.dues, refreshed_at = :as_of
    FROM listed l
    WHERE e.account_id = l.account_id AND e.kind = l.kind AND e.bill_month = l.oldest
      AND e.status = 'paid'
      AND NOT EXISTS (SELECT 1 FROM credit.worklist_entries a WHERE a.account_id = e.account_id
                      AND a.kind = e.kind AND a.status IN {_ACTIVE_SQL})
    RETURNING e.kind""")

_UPDATE = _sql(f"""
    WITH {_OWING}
    UPDATE credit.worklist_entries e SET arrears_fen = o.arrears, months = o.months,
        oldest_month = o.oldest, dues = o.dues, customer = o.customer,
        manager = coalesce(o.customer -> 'account_manager' ->> 'name', ''),
        refreshed_at = :as_of
    FROM owing o
    WHERE e.account_id = o.account_id AND e.status IN {_ACTIVE_SQL}
      AND e.refreshed_at <= :as_of
      AND (e.arrears_fen, e.dues, e.customer) IS DISTINCT FROM (o.arrears, o.dues, o.customer)
    RETURNING e.kind""")

_CLOSE_CLEARED = _sql(f"""
    UPDATE credit.worklist_entries e SET status = 'paid', closed_reason = 'arrears cleared',
        closed_at = greatest(p.as_of, e.refreshed_at)
    FROM credit.account_positions p
    WHERE p.account_id = e.account_id AND p.amount_due_fen = 0
      AND e.status IN {_ACTIVE_SQL}
    RETURNING e.kind""")

_INSERT = _sql(f"""
    WITH {_OWING}
    INSERT INTO credit.worklist_entries (entry_id, kind, account_id, bill_month, customer_id,
        customer, manager, status, arrears_fen, oldest_month, months, dues, opened_on,
        refreshed_at)
    SELECT 'WL-' || left(md5(l.account_id || '|' || l.kind || '|' || l.oldest::text), 20),
           l.kind, l.account_id, l.oldest, l.customer ->> 'customer_id', l.customer,
           coalesce(l.customer -> 'account_manager' ->> 'name', ''), 'open', l.arrears,
           l.oldest, l.months, l.dues, :today, :as_of
    FROM listed l
    ORDER BY l.account_id, l.kind
    ON CONFLICT DO NOTHING
    RETURNING kind""")


def _kinds(rows: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (kind,) in rows:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


# The worklists' advisory lock: a refresh holds it exclusively, a payment batch that closes
# entries holds it shared. Under READ COMMITTED a refresh's INSERT/REOPEN may read positions
# from before a payment batch committed; with the lock that batch's close waits for the
# refresh to commit and then sees (and closes) the rows it added.
_LOCK_KEY = "hashtext('credit.worklists')"
_LOCK_REFRESH = text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
_LOCK_CLOSE = text(f"SELECT pg_advisory_xact_lock_shared({_LOCK_KEY})")


async def refresh(conn: AsyncConnection, rules: WorklistRules, as_of: datetime,
                  today: date) -> dict[str, dict[str, int]]:
    """Close what was paid, reopen what is owed again, update the figures, add the new."""
    # Two refreshes at once would race on the same keys; one waits for the other instead.
    await conn.execute(_LOCK_REFRESH)
    params = {"month": f"{today:%Y-%m}", "threshold": rules.call_threshold_fen,
              "min_months": rules.visit_min_months,
              "visit_day": today.day >= rules.visit_from_day, "as_of": as_of, "today": today}
    closed = _kinds(await conn.execute(_CLOSE_CLEARED))
    reopened = _kinds(await conn.execute(_REOPEN, params))
    updated = _kinds(await conn.execute(_UPDATE, params))
    opened = _kinds(await conn.execute(_INSERT, params))
    return {"opened": opened, "reopened": reopened, "updated": updated, "closed": closed}


_CLOSE_ACCOUNTS = _sql(f"""
    UPDATE credit.worklist_entries e SET status = 'paid', closed_reason = u.why,
        closed_at = greatest(u.at, e.refreshed_at)
    FROM unnest(CAST(:account_id AS text[]), CAST(:at AS timestamptz[]),
                CAST(:why AS text[])) AS u(account_id, at, why)
    WHERE e.account_id = u.account_id AND e.status IN {_ACTIVE_SQL}""")


async def close_cleared(conn: AsyncConnection, cleared: list[tuple[str, datetime, str]]) -> None:
    """The balance-event path: these accounts owe nothing now (one statement per batch, and
    none, nor any lock, for a batch that cleared nothing). An entry is never closed before it
    was last refreshed (a late event), as in `_CLOSE_CLEARED`."""
    if cleared:
        await conn.execute(_LOCK_CLOSE)  # behind a running refresh: see its rows
        await conn.execute(_CLOSE_ACCOUNTS, {"account_id": [a for a, _, _ in cleared],
                                             "at": [at for _, at, _ in cleared],
                                             "why": [w for _, _, w in cleared]})


# --- reading and writing single entries ------------------------------------------------------

async def entry(conn: AsyncConnection, entry_id: str, lock: bool = False) -> Row[Any] | None:
    q = select(t.worklist_entries).where(t.worklist_entries.c.entry_id == entry_id)
    if lock:
        q = q.with_for_update()
    return (await conn.execute(q)).first()


async def update_entry(conn: AsyncConnection, entry_id: str, **values: Any) -> None:
    e = t.worklist_entries
    await conn.execute(update(e).where(e.c.entry_id == entry_id).values(**values))


async def insert_attempt(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(t.worklist_attempts).values(**values))


async def attempts(conn: AsyncConnection, entry_id: str) -> list[dict[str, Any]]:
    a = t.worklist_attempts
    rows = await conn.execute(select(a).where(a.c.entry_id == entry_id)
                              .order_by(a.c.at, a.c.created_at, a.c.attempt_id))
    return [dict(r._mapping) for r in rows]


def _visible(as_of: datetime | None) -> list[Any]:
    """Entries on the list at `as_of`: opened by then and not closed before it."""
    if as_of is None:
        return []
    e = t.worklist_entries
    return [e.c.opened_on <= business_date(as_of),
            (e.c.closed_at.is_(None)) | (e.c.closed_at > as_of)]


async def entries(conn: AsyncConnection, kind: str | None, manager: str | None,
                  statuses: list[str] | None, as_of: datetime | None, account_id: str | None,
                  limit: int) -> list[dict[str, Any]]:
    e = t.worklist_entries
    q = select(e).order_by(e.c.arrears_fen.desc(), e.c.entry_id).limit(limit)
    for cond in _visible(as_of):
        q = q.where(cond)
    if kind:
        q = q.where(e.c.kind == kind)
    if manager:
        q = q.where(e.c.manager == manager)
    if statuses is not None:
        q = q.where(e.c.status.in_(statuses))
    if account_id:
        q = q.where(e.c.account_id == account_id)
    return [dict(r._mapping) for r in await conn.execute(q)]


_COUNTS = _sql("""
    SELECT kind, status, count(*)::int AS n, sum(arrears_fen)::bigint AS fen
    FROM credit.worklist_entries
    WHERE opened_on <= :day AND (closed_at IS NULL OR closed_at > :as_of)
    GROUP BY kind, status""")

_BROKEN = _sql("""
    SELECT count(*) FROM credit.worklist_entries
    WHERE status = 'promised' AND promised_date < :day""")


async def counts(conn: AsyncConnection, as_of: datetime, day: date) -> list[Row[Any]]:
    return list(await conn.execute(_COUNTS, {"day": day, "as_of": as_of}))


async def broken_promises(conn: AsyncConnection, day: date) -> int:
    return int(await conn.scalar(_BROKEN, {"day": day}) or 0)


# One cause per account (its most recently classified entry), and the account's arrears of
# the month as the worklist last saw them while its entry was open (max over its entries).
_CAUSES = _sql("""
    WITH m AS (
        SELECT e.account_id, e.cause, e.cause_at, (d ->> 'amount_due_fen')::bigint AS amount
        FROM credit.worklist_entries e CROSS JOIN LATERAL jsonb_array_elements(e.dues) d
        WHERE d ->> 'bill_month' = :month),
    per_account AS (
        SELECT DISTINCT ON (account_id) account_id, cause,
               max(amount) OVER (PARTITION BY account_id) AS amount
        FROM m ORDER BY account_id, cause IS NULL, cause_at DESC NULLS LAST)
    SELECT cause, sum(amount)::bigint AS fen, count(*)::int AS accounts
    FROM per_account GROUP BY cause""")


async def cause_amounts(conn: AsyncConnection, month: date) -> list[Row[Any]]:
    return list(await conn.execute(_CAUSES, {"month": f"{month:%Y-%m}"}))
