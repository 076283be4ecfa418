"""Red-list review (docs/collections.md "Red-list review"): the monthly worklist of red-list
entries due for review with each customer's arrears and red-list history, renewal by a
credit-admin, and the lapse of entries not renewed by their review date. Audited under
`entity = red_list` (the customer), as adding and removing an entry are."""

import logging
from datetime import date, datetime
from typing import Any

from common.clock import business_date, ensure_aware
from common.errors import Conflict, NotFound, Unprocessable

from ...admin.adapters import admin_repository as admin_repo
from ...admin.service_layer.admin import announce_exemption
from ...service_layer.context import CreditContext
from ..adapters import red_list_sql as sql
from ..domain import red_list_review as domain

log = logging.getLogger(__name__)


def _months(ctx: CreditContext) -> int:
    return ctx.settings.redlist_review_months


async def worklist(ctx: CreditContext, month_first: date, at: datetime) -> dict[str, Any]:
    """The entries due by the end of the month (overdue ones too), oldest review date first."""
    by = domain.month_end(month_first)
    async with ctx.engine.connect() as conn:
        rows = await sql.due(conn, by, at, _months(ctx))
        ids = sorted({r.customer_id for r in rows})
        arrears = await sql.arrears(conn, ids)
        history = await sql.history(conn, ids)
    today = business_date(at)
    entries = []
    for r in rows:
        fen, owing = arrears.get(r.customer_id, (0, 0))
        entries.append({
            "exemption_id": r.exemption_id, "customer_id": r.customer_id, "reason": r.reason,
            "approver": r.approver, "created_by": r.created_by,
            "created_at": r.created_at.isoformat(), "review_on": r.review_date.isoformat(),
            "overdue": r.review_date < today, "arrears_fen": fen, "owing_accounts": owing,
            "history": history.get(r.customer_id, [])})
    return {"month": f"{month_first:%Y-%m}", "due_by": by.isoformat(),
            "review_months": _months(ctx), "entries": entries}


async def renew(ctx: CreditContext, exemption_id: str, note: str, asked: date | None,
                by: str) -> dict[str, Any]:
    """A credit-admin keeps the customer on the red list until its next review date."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        row = await sql.entry(conn, exemption_id, _months(ctx))
        if row is None:
            raise NotFound(f"unknown exemption {exemption_id!r}", id=exemption_id)
        if row.kind != "red_list":
            raise Unprocessable(f"{exemption_id} is {row.kind}, not a red-list entry: only a "
                                "red list is reviewed", id=exemption_id)
        if row.removed_at is not None:
            raise Conflict(f"{exemption_id} was removed ({row.removed_by}): add a new entry "
                           "instead", id=exemption_id, removed_by=row.removed_by)
        try:
            nxt = domain.renewal_date(row.review_date, business_date(now), _months(ctx), asked)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="review_on") from exc
        await sql.set_review(conn, exemption_id, nxt)
        await admin_repo.audit(conn, now, by, "red_list", row.customer_id, "renew",
                               {"exemption_id": exemption_id,
                                "review_on": row.review_date.isoformat()},
                               {"exemption_id": exemption_id, "review_on": nxt.isoformat(),
                                "note": note})
    return {"exemption_id": exemption_id, "customer_id": row.customer_id,
            "review_on": nxt.isoformat(), "previous_review_on": row.review_date.isoformat(),
            "renewed_by": by, "note": note}


async def lapse(ctx: CreditContext, as_of: datetime) -> dict[str, Any]:
    """Every active red-list entry whose review date passed before `as_of`'s business day
    is removed (by `red-list-review`), audited; a re-run lapses nothing more."""
    as_of = ensure_aware(as_of)
    today = business_date(as_of)
    async with ctx.engine.begin() as conn:
        # Under the customers' locks, as adding or removing one by hand (taken before the
        # rows': a removal holds the lock, then waits for the row): each statement after
        # them sees an exemption added meanwhile, so what is announced holds.
        await admin_repo.lock_customers(
            conn, await sql.lapsing(conn, today, as_of, _months(ctx)))
        lapsed = await sql.lapse(conn, today, as_of, _months(ctx), domain.LAPSE_ACTOR)
        for r in lapsed:
            # The notifier's facts follow (credit.exemption_changed), as after a removal
            # by hand: until the product's next decision they would still say exempt.
            await announce_exemption(ctx, conn, r.customer_id, r.exemption_id, as_of)
            await admin_repo.audit(conn, as_of, domain.LAPSE_ACTOR, "red_list", r.customer_id,
                                   "lapse", {"exemption_id": r.exemption_id,
                                             "review_on": r.review_date.isoformat()},
                                   {"reason": f"not renewed by its review date "
                                              f"{r.review_date.isoformat()}"})
    if lapsed:
        log.info("red list: %d entries lapsed as of %s", len(lapsed), as_of.isoformat())
    return {"as_of": as_of.isoformat(), "business_date": today.isoformat(),
            "lapsed": [{"exemption_id": r.exemption_id, "customer_id": r.customer_id,
                        "review_on": r.review_date.isoformat()} for r in lapsed]}
