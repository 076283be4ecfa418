"""What became of a product's current suspension warning's SMS (notifier.notices.v1), on its
product_credit row. An outcome of any other decision (an older warning, a reminder) matches
no row and changes nothing."""

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# sent and delivered only fill in what is not known yet (a redelivered or overtaken event
# changes nothing); failed / cancelled are final unless the SMS was delivered, and count one
# more lost warning of this ladder.
_RECORD = text("""
UPDATE credit.product_credit SET
  notice_status = CASE
      WHEN CAST(:status AS text) = 'delivered' THEN 'delivered'
      WHEN CAST(:status AS text) = 'sent' THEN COALESCE(notice_status, 'sent')
      ELSE CAST(:status AS text) END,
  notice_sent_at = CASE WHEN CAST(:status AS text) IN ('sent', 'delivered')
      THEN COALESCE(notice_sent_at, CAST(:at AS timestamptz)) ELSE notice_sent_at END,
  notice_delivered_at = CASE WHEN CAST(:status AS text) = 'delivered'
      THEN COALESCE(notice_delivered_at, CAST(:at AS timestamptz))
      ELSE notice_delivered_at END,
  notice_reason = CASE WHEN CAST(:status AS text) IN ('failed', 'cancelled')
      THEN CAST(:reason AS text) ELSE notice_reason END,
  notice_permanent = CAST(:permanent AS boolean) AND CAST(:status AS text) = 'failed',
  notice_failures = notice_failures
      + CASE WHEN CAST(:status AS text) IN ('failed', 'cancelled') THEN 1 ELSE 0 END
WHERE product_id = :product_id AND suspension_warning_id = :decision_id
  AND COALESCE(notice_status, '') NOT IN ('delivered', 'failed', 'cancelled')
  AND (CAST(:status AS text) <> 'sent' OR notice_status IS NULL)
RETURNING notice_status
""")


async def record_notice(
    conn: AsyncConnection, *, product_id: str, decision_id: str, status: str, at: datetime,
    reason: str, permanent: bool,
) -> str | None:
    """The product's notice status after the outcome, or None when it was not for the
    product's current suspension warning (or added nothing)."""
    row = (await conn.execute(_RECORD, {
        "product_id": product_id, "decision_id": decision_id, "status": status, "at": at,
        "reason": reason, "permanent": permanent})).first()
    return None if row is None else str(row.notice_status)
