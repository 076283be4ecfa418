"""Read side: the message log, what the simulated SMSC received, reminder timeliness."""

from typing import Any

from common.clock import parse_bill_month
from common.errors import NotFound, Unprocessable

from ..adapters import repository as repo
from ..domain.kpis import ReminderTimeliness
from .context import NotifierContext


async def list_messages(
    ctx: NotifierContext, filters: dict[str, str | None], limit: int = 1000,
    after: str | None = None, newest: bool = False,
) -> list[dict[str, Any]]:
    if after is not None and newest:
        raise Unprocessable("give `after` (the page after a message) or `newest` (the last "
                            "page), not both", field="after")
    async with ctx.engine.connect() as conn:
        found = await repo.list_messages(conn, filters, limit, after, newest)
    if found is None:
        raise NotFound(f"no message {after!r} to page after", field="after", id=after)
    return found


async def smsc_received(
    ctx: NotifierContext, recipient: str | None, limit: int = 1000,
) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        return await repo.smsc_received(conn, recipient, limit)


async def reminder_timeliness(ctx: NotifierContext, bill_month: str) -> dict[str, Any]:
    try:
        parse_bill_month(bill_month)
    except ValueError as exc:
        raise Unprocessable(str(exc), field="bill_month") from exc
    async with ctx.engine.connect() as conn:
        decisions, timely = await repo.reminder_counts(conn, bill_month, ctx.reminder_deadline)
    kpi = ReminderTimeliness(bill_month, decisions, timely,
                             ctx.reminder_deadline.total_seconds() / 3600)
    return {"bill_month": kpi.bill_month, "decisions": kpi.decisions, "timely": kpi.timely,
            "share": kpi.share, "deadline_hours": kpi.deadline_hours, "standard": kpi.standard,
            "meets_standard": kpi.meets_standard}
