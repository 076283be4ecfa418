"""Tests that run one sweep right after another: wait until the suspension warnings just
decided have been heard of (credit-control suspends only after the warning's SMS was
delivered a notice period earlier, docs/rules.md). Reads credit-control's table directly,
like the other test read-backs."""

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Suspension warnings decided in the last minute (wall) whose SMS is neither delivered nor
# lost yet.
_IN_FLIGHT = text(
    "SELECT count(*) FROM credit.product_credit pc JOIN credit.decisions d "
    "  ON d.decision_id = pc.suspension_warning_id "
    "WHERE pc.state = 'suspension_warned' AND d.created_at > now() - interval '60 seconds' "
    "  AND COALESCE(pc.notice_status, 'none') IN ('none', 'sent') "
    "  AND pc.product_id LIKE :prefix")


async def notices_heard(db: AsyncEngine, *, timeout: float = 60.0,
                        product_prefix: str = "") -> int:
    """Wait (at most `timeout`) until no recent suspension warning's SMS is still in flight;
    returns how many still are (0: all heard of). It does not fail: the test's own assertions
    say what a missing delivery means. (60 s: services just started, on a busy machine, took
    over 20 s to hear of the first SMS.)"""
    deadline = time.monotonic() + timeout
    while True:
        async with db.connect() as conn:
            left = int(await conn.scalar(_IN_FLIGHT, {"prefix": product_prefix + "%"}) or 0)
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.2)
