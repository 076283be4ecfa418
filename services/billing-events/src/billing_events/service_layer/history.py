"""The balance history of a month (GET /v1/balance-history): each account's balance events
of the window, recomputed from the ledger (domain/history.py). Read-only."""

from datetime import date, datetime, time, timedelta
from typing import Any

from common.clock import BUSINESS_TZ, last_day_of_month

from ..adapters import history_sql as sql
from ..domain.history import Point, history
from ..domain.model import MonthDue
from .context import BillingContext

MAX_WARMUP_MONTHS = 3
MAX_PAGE = 1000


def window(month: date, warmup_months: int) -> tuple[datetime, datetime]:
    """From the first moment of the warm-up's first month to the last of `month`."""
    index = month.year * 12 + month.month - 1 - warmup_months
    first = date(index // 12, index % 12 + 1, 1)
    start = datetime.combine(first, time(), tzinfo=BUSINESS_TZ)
    end = datetime.combine(last_day_of_month(month) + timedelta(days=1), time(),
                           tzinfo=BUSINESS_TZ) - timedelta(microseconds=1)
    return start, end


async def balance_history(ctx: BillingContext, month: date, warmup_months: int, after: str,
                          limit: int, channel: str | None = None) -> dict[str, Any]:
    """A page of accounts (`limit` read, in id order after `after`); an account that owed
    nothing at any moment of the window is left out (no rule can act on it), the page goes
    on after it all the same."""
    start, end = window(month, warmup_months)
    async with ctx.engine.connect() as conn:
        closed = await sql.closed_months(conn)
        heads = await sql.account_page(conn, month, after, limit, channel)
        ledgers = await sql.ledgers(conn, heads, month, end)
    accounts = []
    for h in heads:
        points = history(ledgers[h.account_id], closed, start, end)
        if not any(p.amount_due_fen > 0 for p in points):
            continue
        accounts.append({
            "account_id": h.account_id,
            "customer": {"customer_id": h.customer_id, "tier": h.tier,
                         "star_level": h.star_level},
            "products": [{"product_id": p, "family": f} for p, f in h.products],
            "points": [_point(p) for p in points],
        })
    return {"month": f"{month:%Y-%m}", "from": start.isoformat(), "to": end.isoformat(),
            "accounts": accounts,
            "next_after": heads[-1].account_id if len(heads) == limit else None}


def _point(p: Point) -> dict[str, Any]:
    month_dues = dict(p.product_month_dues)
    return {"at": p.at.isoformat(), "cause": p.cause, "balance_fen": p.balance_fen,
            "amount_due_fen": p.amount_due_fen,
            "dues": _dues(p.dues),
            "deposit_fen": p.deposit_fen,
            # each product's dues per bill month too, as its balance event's `product_dues`
            "product_dues": [{"product_id": pid, "amount_due_fen": fen,
                              "dues": _dues(month_dues.get(pid, ()))}
                             for pid, fen in p.product_dues],
            "closed_bill_month": (f"{p.closed_bill_month:%Y-%m}"
                                  if p.closed_bill_month else None)}


def _dues(dues: tuple[MonthDue, ...]) -> list[dict[str, Any]]:
    return [{"bill_month": f"{d.bill_month:%Y-%m}", "amount_due_fen": d.amount_due_fen}
            for d in dues]
