"""The what-if replay of a rule change (issue 19): the month under the current table and under
a draft, through the pure domain (domain/replay.py), and their difference (domain/report.py).

Read-only: the rule table, the profiles and exemptions are read from credit-control's tables,
the month's balance history from billing-events; nothing is written, nothing published.
Bounded: only a month that is over and at most MAX_MONTHS_BACK back, at most `max_products`
products, one replay at a time per process (a second one is refused with 429, not queued).
"""

import asyncio
from datetime import date, time
from typing import Any

from pydantic import ValidationError

from common.clock import business_date, last_day_of_month, parse_bill_month
from common.errors import ApiError, NotFound, Unprocessable

from ...admin.adapters import admin_repository as admin_repo
from ...credit.domain.rule_table import RuleTable, add_months
from ...reports.service_layer.reports import ReportContext
from ..adapters.billing_history import month_history
from ..domain.commands import WhatIf
from ..domain.replay import Month, replay
from ..domain.report import compare, difference_json

MAX_MONTHS_BACK = 12  # billing keeps the ledger longer; a year is what a rule change asks
WARMUP_MONTHS = 3  # the longest default ladder (high tier) spans three arrears months
MAX_PRODUCTS = 20_000
_ONE_AT_A_TIME = asyncio.Lock()

ASSUMPTIONS = (
    f"the {WARMUP_MONTHS} months before the month are replayed under the current table, so "
    "both tables start the month from the same places; a ladder older than that starts late",
    "one sweep a business day at the scheduler's time; chain commands and work orders "
    "complete at once; every SMS reaches the customer",
    "credit profiles, ratings and exemptions as they are now (their history is not replayed); "
    "scoped freezes, the mass-suspension guard and promises to pay are not replayed",
    "payments, reversals, adjustments and deductions came as they did: a deduction the draft "
    "decides differently changes the month-end arrears only (arrears_at_month_end_fen)",
    "a deduction's SMS is counted as billing's collection would make it: one deduction_notice "
    "per product its money pays (at most the deposit and what is owed, oldest bill first), "
    "none when it collects nothing",
)


class Busy(ApiError):
    status_code = 429
    code = "busy"


def month_bounds(month: date, today: date) -> None:
    """The month must be over (it is a replay of the past) and not too far back."""
    if last_day_of_month(month) >= today:
        raise Unprocessable(f"{month:%Y-%m} is not over yet (today is {today}): only a past "
                            "month can be replayed", field="month")
    oldest = add_months(today.replace(day=1), -MAX_MONTHS_BACK)
    if month < oldest:
        raise Unprocessable(f"{month:%Y-%m} is more than {MAX_MONTHS_BACK} months back "
                            f"(the oldest month a what-if replays is {oldest:%Y-%m})",
                            field="month")


async def what_if(rc: ReportContext, cmd: WhatIf,
                  max_products: int = MAX_PRODUCTS) -> dict[str, Any]:
    ctx = rc.credit
    month = parse_bill_month(cmd.month)
    month_bounds(month, business_date(cmd.as_of or ctx.clock.now()))
    if _ONE_AT_A_TIME.locked():
        raise Busy("another what-if replay is running; try again when it is done")
    await _ONE_AT_A_TIME.acquire()
    work: asyncio.Future[tuple[Any, Any]] | None = None
    try:
        async with ctx.engine.connect() as conn:
            current = await ctx.rules.current(conn)
            draft = await _draft(conn, cmd, current)
        histories = await month_history(rc.peers, month, WARMUP_MONTHS, max_products,
                                        cmd.channel)
        customers = sorted({h.customer_id for h in histories})
        async with ctx.engine.connect() as conn:
            profiles = await admin_repo.profiles_for(conn, customers)
        sweep_time = time.fromisoformat(ctx.settings.scheduler_time)
        window = ctx.settings.sending_window  # the notice counts from the SMS's first day
        # CPU-bound: off the event loop, so the API keeps answering meanwhile. A thread cannot
        # be stopped: if the caller goes away, the lock is held until the replay ends, so two
        # replays never run at once.
        work = asyncio.ensure_future(asyncio.to_thread(
            lambda: (replay(histories, profiles,
                            Month(month, current, current, sweep_time, window)),
                     replay(histories, profiles,
                            Month(month, current, draft, sweep_time, window)))))
        work.add_done_callback(lambda _: _ONE_AT_A_TIME.release())
        now_outcome, draft_outcome = await asyncio.shield(work)
    finally:
        if work is None:
            _ONE_AT_A_TIME.release()
    diff = compare(now_outcome, draft_outcome, histories)
    return {"month": f"{month:%Y-%m}", "channel": cmd.channel,
            "current_version": current.version,
            "draft_version": draft.version if cmd.version else None,
            "accounts": len(histories),
            "products_replayed": sum(len(h.products) for h in histories),
            "sweep_time": ctx.settings.scheduler_time, "assumptions": list(ASSUMPTIONS),
            **difference_json(diff)}


async def _draft(conn: Any, cmd: WhatIf, current: RuleTable) -> RuleTable:
    if cmd.version is not None:
        if cmd.version > current.version:
            raise NotFound(f"no rule table version {cmd.version} (the newest is "
                           f"{current.version})", version=cmd.version)
        return await admin_repo.rule_table_version(conn, cmd.version)
    assert cmd.rows is not None
    try:
        return RuleTable(version=current.version + 1, rows=cmd.rows)
    except ValidationError as exc:
        raise Unprocessable("the draft rule table is not valid", problems=[
            str(e["msg"]) for e in exc.errors()]) from None
