"""notifier publishes what became of a customer notice: sent, delivered, failed or cancelled.

One event per (decision, outcome) for the group contacts' messages of one decision taken
together: `sent` when the first of them was accepted by the SMSC, `delivered` when the first
delivery receipt came back, `failed` / `cancelled` when none of them was delivered and none
is left to try. credit-control needs it to suspend only after a suspension warning that
reached the customer (docs/notifier.md "Notice outcomes")."""

from enum import StrEnum
from typing import ClassVar

from common.envelope import Contract

from .bounds import Id, Instant, Name, Ref, Text

NOTICES_TOPIC = "notifier.notices.v1"


class NoticeStatus(StrEnum):
    SENT = "sent"  # accepted by the SMSC (submitted)
    DELIVERED = "delivered"  # a delivery receipt says it reached a phone
    FAILED = "failed"  # rejected, dead-lettered or undeliverable: no contact got it
    CANCELLED = "cancelled"  # the send-time re-check found its reason gone: never sent


class NoticeOutcome(Contract, frozen=True, kw_only=True):
    """What became of the customer notice one credit decision made (keyed by account)."""

    event_type: ClassVar[str] = "notifier.notice_outcome"
    topic: ClassVar[str] = NOTICES_TOPIC

    decision_id: Ref
    product_id: Id
    account_id: Id
    template: Name
    status: NoticeStatus
    # Business time (the decision's, carried by the wall time the message took, and never
    # before the end of the quiet hours it was held in), and the wall time it happened.
    at: Instant
    wall_at: Instant
    reason: Text = ""
    # failed only: another attempt cannot succeed either (no valid contact number).
    permanent: bool = False
