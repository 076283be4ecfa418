"""What became of a customer notice (the group contacts' messages of one decision taken
together), as the outcomes notifier publishes on `notifier.notices.v1`. Pure.

- `sent` when the first of them was accepted by the SMSC, `delivered` when the first delivery
  receipt came back;
- `failed` / `cancelled` once none was delivered and none is left to try: `cancelled` if any
  was cancelled by the send-time re-check (its reason had gone), else `failed` (rejected,
  dead-lettered, undeliverable); `permanent` when every one was undeliverable (no valid contact
  number: another attempt cannot succeed);
- `failed` (not permanent) too when none was delivered `receipt_timeout` (business time)
  after the first was accepted: a receipt that never comes must not keep the customer's
  notice — and credit-control's suspension — waiting for ever (`receipt_overdue`).

Times: each outcome carries its wall time and its business time, the decision's business time
carried by the wall time the message took since the decision, and never before the end of the
quiet hours it was decided in (a held warning reaches the customer at the opening, in a
back-dated run as in production; `common.clock.carried_business_time` does the same for chain
confirmations). A catch-up sweep's decision is made as of a missed day's moment but really
made — and its SMS sent — later (`caught_up_at`): its messages' business time starts there
(`sending_as_of`), so a warning caught up on the 28th for the 25th is delivered on the 28th,
and credit-control counts its notice from then.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from common.clock import ensure_aware
from common.contracts.notifier import NoticeStatus

from .quiet_hours import SendingWindow

FAILED = ("rejected", "dead_lettered", "undeliverable")


@dataclass(frozen=True)
class NoticeMessages:
    """The group contacts' messages of one decision, aggregated."""

    decision_id: str
    product_id: str
    account_id: str
    template: str
    decision_as_of: datetime  # the decision's business time
    decided_at: datetime  # its wall time (the event's occurred_at)
    total: int
    sent_at: datetime | None  # wall: the first submit
    delivered_at: datetime | None  # wall: the first delivery receipt
    failed: int  # rejected, dead-lettered or undeliverable
    undeliverable: int
    cancelled: int
    reasons: str  # the lost messages' reasons


@dataclass(frozen=True)
class Outcome:
    status: NoticeStatus
    at: datetime  # business time
    wall_at: datetime
    reason: str = ""
    permanent: bool = False


def sending_as_of(as_of: datetime, caught_up_at: datetime | None) -> datetime:
    """The business time a decision's messages go out in (stored as their `decision_as_of`):
    its `as_of`, or a catch-up decision's real time when that is later."""
    if caught_up_at is None:
        return as_of
    return max(ensure_aware(as_of), ensure_aware(caught_up_at))


def business_time(wall_at: datetime, decision_as_of: datetime, decided_at: datetime,
                  window: SendingWindow) -> datetime:
    """The business moment of a step that took (wall_at − decided_at) after the decision, not
    before the end of the quiet hours the decision fell in."""
    as_of = ensure_aware(decision_as_of)
    opening = window.hold_until(as_of) or as_of
    took = max(timedelta(0), ensure_aware(wall_at) - ensure_aware(decided_at))
    return max(opening, as_of + took)


def receipt_overdue(n: NoticeMessages, window: SendingWindow, now: datetime,
                    timeout: timedelta) -> datetime | None:
    """The business moment the notice's receipt became overdue — `timeout` after the first
    message was accepted, in business time — if that moment has come by `now` and nothing was
    delivered; else None."""
    if n.sent_at is None or n.delivered_at is not None:
        return None
    due = business_time(n.sent_at, n.decision_as_of, n.decided_at, window) + timeout
    return due if due <= business_time(now, n.decision_as_of, n.decided_at, window) else None


def receipt_timeout_reason(timeout: timedelta) -> str:
    return (f"no delivery receipt within {timeout.total_seconds():g} s of the SMSC accepting "
            "it (receipt timeout)")


def outcomes(n: NoticeMessages, window: SendingWindow, now: datetime,
             receipt_timeout: timedelta | None = None) -> list[Outcome]:
    """Every outcome the notice has reached so far, in order (the caller publishes the new).
    With `receipt_timeout`, a notice accepted but not delivered that long after is failed."""
    def at(wall: datetime) -> datetime:
        return business_time(wall, n.decision_as_of, n.decided_at, window)

    found: list[Outcome] = []
    if n.sent_at is not None:
        found.append(Outcome(NoticeStatus.SENT, at(n.sent_at), n.sent_at))
    if n.delivered_at is not None:
        found.append(Outcome(NoticeStatus.DELIVERED, at(n.delivered_at), n.delivered_at))
        return found
    if n.total and n.failed + n.cancelled == n.total:
        status = NoticeStatus.CANCELLED if n.cancelled else NoticeStatus.FAILED
        found.append(Outcome(status, at(now), now, n.reasons,
                             permanent=n.undeliverable == n.total))
    elif receipt_timeout is not None:
        overdue = receipt_overdue(n, window, now, receipt_timeout)
        if overdue is not None:
            found.append(Outcome(NoticeStatus.FAILED, overdue, now,
                                 receipt_timeout_reason(receipt_timeout)))
    return found
