"""What became of a product's current suspension warning's SMS (notifier.notices.v1), on its
product_credit row. An outcome of any other decision (an older warning, a reminder) matches
no row and changes nothing."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.ladder import NoticePolicy
from .sweep_sql import notice_unheard, notice_waiting

# sent and delivered only fill in what is not known yet (a redelivered or overtaken event
# changes nothing); failed / cancelled are final unless the SMS was delivered: failed counts
# one more failed warning of this ladder (toward the notice policy's max_warnings),
# cancelled one more withdrawn one (the notifier's re-check: its reason went, which says
# nothing about whether a warning can reach the customer; domain/ladder.py WITHDRAWN).
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
      + CASE WHEN CAST(:status AS text) = 'failed' THEN 1 ELSE 0 END,
  notice_withdrawals = notice_withdrawals
      + CASE WHEN CAST(:status AS text) = 'cancelled' THEN 1 ELSE 0 END
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


# --- Unheard warnings (docs/rules.md): the suspensions a notice not heard of holds ---------
# Suspension-warned products whose warning's deadline has come and whose SMS has neither
# reached the customer nor been lost: `lost` once the sweep of :today reads it as lost
# (sweep_sql.notice_unheard: warned again, or the suspension is an exception). One pass over
# the table (there is no index on state, on purpose: tables.py): a listing for staff and a
# gauge refreshed once per scheduled sweep, never on a hot path.
_UNHEARD_WHERE = (f"pc.state = 'suspension_warned' AND pc.suspension_deadline <= :today "
                  f"AND COALESCE({notice_waiting('pc')}, false)")
_TYPES = ("CAST(:requires_delivery AS boolean)", "CAST(:unheard_after_days AS integer)",
          "CAST(:today AS date)")


def _typed(sql: str) -> str:
    for cast in _TYPES:
        sql = sql.replace(cast.split(" AS ")[0].removeprefix("CAST("), cast)
    return sql


_UNHEARD_PAGE = text(_typed(f"""
SELECT pc.product_id, pc.account_id, pc.customer_id, pc.family, pc.suspension_warning_id,
       pc.suspension_warned_on, pc.suspension_deadline, pc.notice_status, pc.notice_sent_at,
       pc.notice_failures AS lost_warnings, pc.notice_withdrawals AS withdrawn_warnings,
       pc.suspension_deadline + :unheard_after_days AS lost_on,
       {notice_unheard('pc')} AS lost
FROM credit.product_credit pc
WHERE {_UNHEARD_WHERE} AND pc.product_id > CAST(:after AS text)
ORDER BY pc.product_id LIMIT CAST(:limit AS integer)"""))

_UNHEARD_COUNTS = text(_typed(f"""
SELECT count(*) FILTER (WHERE NOT {notice_unheard('pc')}) AS waiting,
       count(*) FILTER (WHERE {notice_unheard('pc')}) AS lost
FROM credit.product_credit pc WHERE {_UNHEARD_WHERE}"""))


def _policy(policy: NoticePolicy, today: date) -> dict[str, Any]:
    return {"requires_delivery": policy.requires_delivery,
            "unheard_after_days": policy.unheard_after_days, "today": today}


async def unheard_page(conn: AsyncConnection, policy: NoticePolicy, today: date, after: str,
                       limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(_UNHEARD_PAGE, {**_policy(policy, today), "after": after,
                                              "limit": limit})
    return [dict(r._mapping) for r in rows]


async def unheard_counts(conn: AsyncConnection, policy: NoticePolicy,
                         today: date) -> tuple[int, int]:
    """(waiting, lost) as of business day `today`."""
    row = (await conn.execute(_UNHEARD_COUNTS, _policy(policy, today))).one()
    return int(row.waiting), int(row.lost)
