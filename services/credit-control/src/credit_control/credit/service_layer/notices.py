"""Notice outcomes in (notifier.notices.v1): what became of a suspension warning's SMS.

Recorded on the product in the consumer's transaction with its inbox claim (a redelivered
event adds nothing; offsets are committed after). The sweep reads it: a suspension needs the
warning's SMS delivered (or sent, when receipts are not expected) a notice period earlier;
a lost one makes the warning owed again (adapters/sweep_sql.py, domain/ladder.py)."""

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date, ensure_aware
from common.contracts.notifier import NoticeOutcome

from ...metrics import SUSPENSION_WARNINGS_UNHEARD
from ...service_layer.context import CreditContext
from ..adapters.notice_sql import record_notice, unheard_counts, unheard_page
from ..domain.ladder import NOTICE_REASON_MAX

log = logging.getLogger(__name__)


async def apply_notice_outcome(conn: AsyncConnection, outcome: NoticeOutcome) -> None:
    status = await record_notice(
        conn, product_id=outcome.product_id, decision_id=outcome.decision_id,
        status=outcome.status.value, at=outcome.at,
        reason=outcome.reason[:NOTICE_REASON_MAX],
        permanent=outcome.permanent)
    if status is not None:
        log.info("product %s: suspension warning %s %s at %s%s", outcome.product_id,
                 outcome.decision_id, outcome.status.value, outcome.at.isoformat(),
                 f" ({outcome.reason})" if outcome.reason else "")


async def unheard_notices(ctx: CreditContext, as_of: datetime, after: str = "",
                          limit: int = 100) -> dict[str, Any]:
    """GET /v1/notices/unheard: the suspensions held, on the business day of `as_of`, by a
    suspension warning whose SMS neither reached the customer nor was lost (docs/rules.md),
    each with the day it counts as lost (`lost_on`) and whether that day has come (`lost`:
    the sweep of that day warns again or makes the suspension an exception)."""
    today = business_date(ensure_aware(as_of))
    async with ctx.engine.connect() as conn:
        items = await unheard_page(conn, ctx.settings.notice_policy, today, after, limit)
    return {"as_of_date": today.isoformat(),
            "unheard_after_days": ctx.settings.notice_policy.unheard_after_days,
            "items": items,
            "next_after": items[-1]["product_id"] if len(items) == limit else None}


async def refresh_unheard_gauge(ctx: CreditContext, as_of: datetime) -> None:
    """The unheard-warning gauge as of the sweep's business day (one pass over the table)."""
    async with ctx.engine.connect() as conn:
        waiting, lost = await unheard_counts(conn, ctx.settings.notice_policy,
                                             business_date(as_of))
    SUSPENSION_WARNINGS_UNHEARD.labels("waiting").set(waiting)
    SUSPENSION_WARNINGS_UNHEARD.labels("lost").set(lost)
    if lost:
        log.warning("%d suspension warnings unheard of past CREDIT_NOTICE_UNHEARD_AFTER_DAYS "
                    "after the sweep of %s", lost, business_date(as_of))
