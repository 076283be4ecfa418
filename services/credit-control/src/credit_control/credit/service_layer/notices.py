"""Notice outcomes in (notifier.notices.v1): what became of a suspension warning's SMS.

Recorded on the product in the consumer's transaction with its inbox claim (a redelivered
event adds nothing; offsets are committed after). The sweep reads it: a suspension needs the
warning's SMS delivered (or sent, when receipts are not expected) a notice period earlier;
a lost one makes the warning owed again (adapters/sweep_sql.py, domain/ladder.py)."""

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from common.contracts.notifier import NoticeOutcome

from ..adapters.notice_sql import record_notice
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
