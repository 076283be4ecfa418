"""Receivables and the arrears rate (欠费率) for any bill month or range of them."""

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from common.clock import BUSINESS_TZ
from common.errors import Unprocessable

from ..adapters import receivables as rec
from ..domain.receivables import Receivables
from .balances import month_text
from .context import BillingContext


def end_of_business_day(day: date) -> datetime:
    """Arrears 'as of' a day are what is unpaid when that Asia/Shanghai day ends."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=BUSINESS_TZ)


async def receivables_report(
    ctx: BillingContext, first: date, through: date | None, on: date | None,
    group: rec.GroupBy | None,
) -> dict[str, Any]:
    last = through or first
    if last < first:
        raise Unprocessable("`through` must not be before `bill_month`",
                            bill_month=month_text(first), through=month_text(last))
    cutoff = end_of_business_day(on) if on else None
    async with ctx.engine.connect() as conn:
        closed = await rec.closed_in(conn, first, last, cutoff)
        rows = await rec.receivables(conn, first, last, cutoff, group)
    months: dict[date, Receivables] = {m: Receivables(0, 0) for m in closed}
    groups: dict[str, Receivables] = defaultdict(lambda: Receivables(0, 0))
    for month, key, receivable, arrears, written_off in rows:
        months[month] += Receivables(receivable, arrears, written_off)
        groups[key] += Receivables(receivable, arrears, written_off)
    total = sum(months.values(), Receivables(0, 0))
    body: dict[str, Any] = {
        "bill_month": month_text(first), "through": month_text(last),
        "as_of_date": on.isoformat() if on else None,
        "closed_months": [month_text(m) for m in closed],
        "months": [{"bill_month": month_text(m), **_figures(r)} for m, r in months.items()],
        "total": _figures(total),
    }
    if group:
        body["by"] = group
        body["groups"] = [{"key": k, **_figures(r)} for k, r in sorted(groups.items())]
    return body


def _figures(r: Receivables) -> dict[str, Any]:
    rate = r.rate
    return {"receivables_fen": r.receivables_fen, "arrears_fen": r.arrears_fen,
            "written_off_fen": r.written_off_fen,
            "arrears_rate": str(rate) if rate is not None else None,
            "arrears_rate_percent": r.rate_percent}
