"""Quiet hours: when an SMS may reach a phone. Pure; the moment is always a parameter.

The window itself (`SendingWindow`, parsed from "08:00-21:00"; "00:00-24:00" always open, a
window that opens after it closes runs over midnight) is common/sending_hours.py, shared with
credit-control, which counts a suspension warning's notice period from the day its SMS can
first leave by the same window (`CREDIT_CUSTOMER_SENDING_HOURS`, the same default).
"""

from datetime import datetime

from common.clock import ensure_aware
from common.sending_hours import DAY_MINUTES, SendingWindow

__all__ = ["DAY_MINUTES", "SendingWindow", "release_at"]


def release_at(window: SendingWindow, decided: datetime, received: datetime) -> datetime | None:
    """When a message may leave, by the business time of its decision (not the wall clock):
    None means now. Decided inside the window: now. Decided in quiet hours: at the next
    opening after the decision; if that moment is already past on the wall clock (a back-dated
    run, a replay), now. A decision ahead of the wall clock (a simulated future) waits no longer
    than the quiet hours it was decided in had left: received + (opening − decided).
    In production business time is the wall clock, and all three readings agree."""
    opening = window.hold_until(decided)
    if opening is None:
        return None
    received = ensure_aware(received)
    at = min(opening, received + (opening - ensure_aware(decided)))
    return at if at > received else None
