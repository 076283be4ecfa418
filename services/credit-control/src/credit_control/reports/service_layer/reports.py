"""The reports credit control staff read every day (docs/reports.md defines every figure).

Each takes the month and, optionally, the business day it is measured on, so a past month's
report is reproduced by asking again with the same parameters.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from common.clock import BUSINESS_TZ, EARLIEST_MONTH, business_date
from common.contracts.credit_control import CreditState

from ...adapters.peers import Peers, PeerUnavailable
from ...service_layer.context import CreditContext
from ..adapters import report_queries as q
from ..domain import reports as r
from ..domain.reports import Figures

DIMENSIONS = ("family", "tier", "channel", "region")
AGING_WINDOW_MONTHS = 36  # bill months older than three years are left to write-offs


@dataclass(frozen=True)
class ReportContext:
    credit: CreditContext
    peers: Peers

    def today(self) -> date:
        return business_date(self.credit.clock.now())


def end_of_day(day: date) -> datetime:
    """The last moment of an Asia/Shanghai business day."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=BUSINESS_TZ) - timedelta(
        microseconds=1)


def _moment(rc: ReportContext, month: date, as_of: date | None) -> tuple[date, datetime | None]:
    """The day a moment-type figure (states, work orders) is read on, and the moment in the
    history: the end of `as_of` when given; else the end of the month, or now (None) while
    the month runs: now includes changes a sweep dated ahead of the wall clock."""
    if as_of is not None:
        return as_of, end_of_day(as_of)
    day = r.end_of(month, rc.today())
    return day, (None if day >= rc.today() else end_of_day(day))


def _figures(body: dict[str, Any]) -> Figures:
    # written_off_fen: absent from a billing-events older than it (nothing written off then)
    return Figures(int(body["receivables_fen"]), int(body["arrears_fen"]),
                   int(body.get("written_off_fen") or 0))


# --- arrears rate ---------------------------------------------------------------------------

async def arrears(rc: ReportContext, first: date, through: date | None,
                  as_of: date | None) -> dict[str, Any]:
    """欠费率 per bill month of first..through, by family, tier, channel and region. Each
    month is measured on `as_of` if given, else at the end of the month its bill is
    collected in."""
    months = r.months_between(first, through or first)
    today = rc.today()
    measured = await asyncio.gather(*[_arrears_month(rc, m, as_of or r.measuring_day(m, today))
                                      for m in months])
    rows = [row for row in measured if row is not None]
    whole = r.total(_figures(row) for row in rows)
    by = {dim: _sum_groups([row["by"][dim] for row in rows]) for dim in DIMENSIONS}
    return {
        "bill_month": r.month_text(months[0]), "through": r.month_text(months[-1]),
        "as_of_date": as_of.isoformat() if as_of else None,
        "target": str(r.ARREARS_RATE_TARGET), "months": rows,
        "total": {**whole.as_dict(), "meets_target": _meets(whole)}, "by": by,
    }


async def _arrears_month(rc: ReportContext, month: date, day: date) -> dict[str, Any] | None:
    bodies = await asyncio.gather(rc.peers.receivables(month, month, day),
                                  *[rc.peers.receivables(month, month, day, d)
                                    for d in DIMENSIONS])
    overall = bodies[0]
    if not overall["months"]:
        return None  # not billed yet: no receivables to speak of
    figures = _figures(overall["months"][0])
    return {"bill_month": r.month_text(month), "measured_on": day.isoformat(),
            **figures.as_dict(), "meets_target": _meets(figures),
            "by": {d: [{"key": g["key"], **_figures(g).as_dict()} for g in b.get("groups", [])]
                   for d, b in zip(DIMENSIONS, bodies[1:], strict=True)}}


def _sum_groups(per_month: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    sums: dict[str, Figures] = {}
    for groups in per_month:
        for g in groups:
            sums[g["key"]] = sums.get(g["key"], Figures(0, 0)) + _figures(g)
    return [{"key": k, **v.as_dict()} for k, v in sorted(sums.items())]


def _meets(figures: Figures) -> bool | None:
    return figures.meets_arrears_target


async def trend(rc: ReportContext, through: date, months: int,
                as_of: date | None = None) -> list[dict[str, Any]]:
    """The arrears rate of the last `months` bill months, each at its own measuring day (no
    later than `as_of`); a month not billed yet has no rate."""
    today = as_of or rc.today()
    # no month before the first business month: billing refuses those (common.clock)
    wanted = [m for m in r.months_between(r.add_months(through, 1 - months), through)
              if m >= EARLIEST_MONTH]
    bodies = await asyncio.gather(*[rc.peers.receivables(m, m, r.measuring_day(m, today))
                                    for m in wanted])
    points = []
    for month, body in zip(wanted, bodies, strict=True):
        figures = _figures(body["months"][0]) if body["months"] else None
        points.append({"bill_month": r.month_text(month),
                       **(figures.as_dict() if figures else {
                           "receivables_fen": None, "arrears_fen": None, "arrears_rate": None,
                           "arrears_rate_percent": None})})
    return points


# --- recovery -------------------------------------------------------------------------------

RECOVERIES = (("current_month", 1, r.CURRENT_MONTH_RECOVERY_TARGET), ("three_months", 3, None))


async def recovery(rc: ReportContext, month: date, as_of: date | None) -> dict[str, Any]:
    """当月欠费回收率 (collected by the end of M+1) and 三月内欠费回收率 (by the end of M+3)."""
    day = as_of or rc.today()
    plans = [(name, r.collection_deadline(month, after), target)
             for name, after, target in RECOVERIES]
    bodies = await asyncio.gather(*[rc.peers.receivables(month, month, min(deadline, day))
                                    for _, deadline, _ in plans])
    rates = []
    for (name, deadline, target), body in zip(plans, bodies, strict=True):
        figures = _figures(body["months"][0]) if body["months"] else Figures(0, 0)
        rates.append(r.Recovery(name, deadline, min(deadline, day), figures, target).as_dict())
    return {"bill_month": r.month_text(month), "as_of_date": day.isoformat(),
            "billed": bool(bodies[0]["months"]), "rates": rates}


# --- aging ----------------------------------------------------------------------------------

async def aging(rc: ReportContext, month: date, as_of: date | None,
                since: date | None) -> dict[str, Any]:
    """账龄 of the arrears open at the end of `month` (or on `as_of`)."""
    day = as_of or r.end_of(month, rc.today())
    newest = r.latest_billed_month(day)
    oldest = max(since or r.add_months(newest, 1 - AGING_WINDOW_MONTHS), EARLIEST_MONTH)
    if oldest > newest:
        return _aging_body(day, oldest, newest, [])
    body = await rc.peers.receivables(oldest, newest, day)
    rows = []
    for m in body["months"]:
        bill_month = date.fromisoformat(m["bill_month"] + "-01")
        rows.append((bill_month, int(m["arrears_fen"])))
    return _aging_body(day, oldest, newest, rows)


def _aging_body(day: date, oldest: date, newest: date,
                rows: list[tuple[date, int]]) -> dict[str, Any]:
    buckets = r.aging_buckets(dict(rows), day)
    return {"as_of_date": day.isoformat(), "since": r.month_text(oldest),
            "through": r.month_text(newest), "buckets": buckets,
            "total_arrears_fen": sum(buckets.values()),
            "months": [{"bill_month": r.month_text(m), "arrears_fen": fen,
                        "bucket": r.AGING_BUCKETS[min(r.months_overdue(m, day), 3)]}
                       for m, fen in rows if fen]}


# --- credit states --------------------------------------------------------------------------

async def states(rc: ReportContext, month: date, as_of: date | None,
                 prefix: str = "") -> dict[str, Any]:
    day, at = _moment(rc, month, as_of)
    async with rc.credit.engine.connect() as conn:
        rows = await q.states_at(conn, at, prefix)
    counts = dict.fromkeys([s.value for s in CreditState], 0)
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + row["products"]
    return {"as_of_date": day.isoformat(), "states": counts,
            "products": sum(counts.values()), "by_family": rows}


# --- KPIs -----------------------------------------------------------------------------------

async def kpis(rc: ReportContext, month: date, as_of: date | None,
               prefix: str = "", work_orders_now: bool = False) -> dict[str, Any]:
    """The seed's KPIs for a month; a peer that does not answer leaves its KPI without a
    value (and says why) instead of failing the whole report. The dashboard counts the
    work orders overdue now (`work_orders_now`), the report those of the month's end."""
    day = as_of or r.end_of(month, rc.today())
    wo_month = rc.today().replace(day=1) if work_orders_now else month
    found = await asyncio.gather(
        _guard(lambda: _arrears_kpi(rc, month, as_of)),
        _guard(lambda: _reminder_kpi(rc, month)),
        _guard(lambda: _emos_kpi(rc, month, day)),
        _guard(lambda: _missed_kpi(rc)),
        _guard(lambda: _work_order_kpi(rc, wo_month, None if work_orders_now else as_of,
                                       prefix)),
    )
    names = ("arrears_rate", "reminder_timeliness", "emos_cross_month",
             "missed_suspensions", "overdue_work_orders")
    return {"month": r.month_text(month), "as_of_date": day.isoformat(),
            "kpis": [k if isinstance(k, dict) else {"name": n, "value": None,
                                                    "meets_target": None, "error": k}
                     for n, k in zip(names, found, strict=True)]}


async def _guard(make: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | str:
    try:
        return await make()
    except PeerUnavailable as exc:
        return exc.message


async def _arrears_kpi(rc: ReportContext, month: date, as_of: date | None) -> dict[str, Any]:
    day = as_of or r.measuring_day(month, rc.today())
    body = await rc.peers.receivables(month, month, day)
    figures = _figures(body["months"][0]) if body["months"] else Figures(0, 0)
    return r.Kpi("arrears_rate", figures.arrears_rate, r.ARREARS_RATE_TARGET, "<=", {
        "bill_month": r.month_text(month), "measured_on": day.isoformat(),
        "receivables_fen": figures.receivables_fen, "arrears_fen": figures.arrears_fen,
        "percent": r.percent(figures.arrears_fen, figures.receivables_fen)},
        exact=r.exact_ratio(figures.arrears_fen, figures.receivables_fen)).as_dict()


async def _reminder_kpi(rc: ReportContext, month: date) -> dict[str, Any]:
    body = await rc.peers.reminder_timeliness(month) or {"decisions": 0, "timely": 0}
    decisions, timely = int(body["decisions"]), int(body["timely"])
    return r.Kpi("reminder_timeliness", r.share(timely, decisions),
                 r.REMINDER_TIMELINESS_TARGET, ">=", {
                     "bill_month": r.month_text(month), "decisions": decisions,
                     "timely": timely, "percent": r.percent(timely, decisions)},
                 exact=r.exact_ratio(timely, decisions)).as_dict()


async def _emos_kpi(rc: ReportContext, month: date, day: date) -> dict[str, Any]:
    body = await rc.peers.emos_cross_month(month, day) or {"orders": 0, "cross_month": 0}
    orders, cross = int(body["orders"]), int(body["cross_month"])
    return r.Kpi("emos_cross_month", r.share(cross, orders), r.EMOS_CROSS_MONTH_TARGET, "<=", {
        "month": r.month_text(month), "orders": orders, "cross_month": cross,
        "percent": r.percent(cross, orders)}, exact=r.exact_ratio(cross, orders)).as_dict()


async def _missed_kpi(rc: ReportContext) -> dict[str, Any]:
    body = await rc.peers.latest_reconciliation()
    if body is None:
        return r.Kpi("missed_suspensions", None, 0, "<=", {
            "reconciled_at": None, "note": "no reconciliation has run yet"}).as_dict()
    return r.Kpi("missed_suspensions", int(body["missed_suspensions"]), 0, "<=", {
        "reconciled_at": body["as_of"], "wrong_suspensions": body["wrong_suspensions"],
        "products_compared": body["products_compared"]}).as_dict()


async def _work_order_kpi(rc: ReportContext, month: date, as_of: date | None,
                          prefix: str) -> dict[str, Any]:
    _, at = _moment(rc, month, as_of)
    async with rc.credit.engine.connect() as conn:
        rows = await q.work_orders_at(conn, at, at or rc.credit.clock.now(), prefix)
    return r.Kpi("overdue_work_orders", sum(x["overdue"] for x in rows), 0, "<=", {
        "open": sum(x["open"] for x in rows), "by_action": rows}).as_dict()


# --- CSV ------------------------------------------------------------------------------------

def csv_rows(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per figure, for a spreadsheet-free CSV download."""
    if kind == "arrears":
        return _arrears_csv(body)
    if kind == "recovery":
        return [{"bill_month": body["bill_month"], **x} for x in body["rates"]]
    if kind == "aging":
        return [{"as_of_date": body["as_of_date"], "bucket": b, "arrears_fen": fen}
                for b, fen in body["buckets"].items()]
    if kind == "states":
        return [{"as_of_date": body["as_of_date"], "state": s, "products": n}
                for s, n in body["states"].items()]
    return [{"month": body["month"], "as_of_date": body["as_of_date"],
             **{k: v for k, v in x.items() if not isinstance(v, list | dict)}}
            for x in body["kpis"]]


def _arrears_csv(body: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("receivables_fen", "arrears_fen", "arrears_rate", "arrears_rate_percent")
    rows = []
    for m in body["months"]:
        base = {"bill_month": m["bill_month"], "measured_on": m["measured_on"]}
        rows.append({**base, "dimension": "all", "key": "", **{k: m[k] for k in keep}})
        for dim in DIMENSIONS:
            rows += [{**base, "dimension": dim, "key": g["key"], **{k: g[k] for k in keep}}
                     for g in m["by"][dim]]
    rows.append({"bill_month": "total", "measured_on": body["as_of_date"] or "",
                 "dimension": "all", "key": "", **{k: body["total"][k] for k in keep}})
    return rows
