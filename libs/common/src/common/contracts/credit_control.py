"""credit-control publishes decisions and the product credit state they lead to."""

from datetime import date
from enum import StrEnum
from typing import ClassVar

import msgspec

from common.envelope import Contract

from .bounds import (
    BillMonth,
    Fen,
    Id,
    Instant,
    Ref,
    SequenceNo,
    SmallInt,
    Text,
    check_bill_month,
)
from .snapshots import CustomerSnapshot, ProductSnapshot

DECISIONS_TOPIC = "credit.decisions.v1"


class DecisionType(StrEnum):
    BILL_NOTICE = "bill_notice"  # 话费通知
    WARNING = "warning"  # 欠费预警 (1st / 2nd / 3rd)
    SUSPENSION_WARNING = "suspension_warning"  # 停机预警
    SUSPEND = "suspend"  # 停机
    RESTORE = "restore"  # 开机
    DEDUCTION = "deduction"  # 划扣
    PRE_CANCEL = "pre_cancel"  # 预拆机
    ARREARS_CLEARED = "arrears_cleared"  # paid before suspension: warnings lifted, no SMS
    PAYMENT_REVERSED = "payment_reversed"  # 支付冲正/退票: a reversal re-opened the arrears


class CreditState(StrEnum):
    NORMAL = "normal"
    WARNED = "warned"
    SUSPENSION_WARNED = "suspension_warned"
    SUSPEND_REQUESTED = "suspend_requested"
    SUSPENDED = "suspended"
    RESTORE_REQUESTED = "restore_requested"
    PRE_CANCEL = "pre_cancel"


class NoticeContext(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the notifier needs to render the seed's SMS for one product."""

    customer: CustomerSnapshot
    product: ProductSnapshot
    amount_due_fen: Fen  # XX元: the PRODUCT's own amount due (billing's allocation)
    as_of_date: date  # 截至YYYY年MM月DD日
    deadline: date | None = None  # 请于MM月DD日前 / 如在YYYY年MM月DD日前
    bill_month: BillMonth | None = None  # YYYY-MM: the oldest bill month still owing, for the KPIs
    # Exempt from automatic suspension at decision time (red list, active emergency
    # no-suspension): the notifier renders reminders without any threat of suspension.
    suspension_exempt: bool = False
    account_amount_due_fen: Fen | None = None  # the account's total (the manager's notice)
    # A warning whose ladder step skipped levels no warning was given for in this ladder
    # (billed late, cleared and billed again, its oldest owing month moved on): the level
    # whose text it is sent with, the count of this ladder's warnings with it ("此为第二次"
    # only after a first). None: its own level's (credit_control/credit/domain/ladder.py
    # `reminder_level`).
    reminder_level: SmallInt | None = None

    def __post_init__(self) -> None:
        check_bill_month("bill_month", self.bill_month)


class CreditDecisionMade(Contract, frozen=True, kw_only=True):
    """A decision with the rule and inputs that explain it."""

    event_type: ClassVar[str] = "credit.decision_made"
    topic: ClassVar[str] = DECISIONS_TOPIC

    decision_id: Ref
    account_id: Id
    product_id: Id
    decision: DecisionType
    rule_id: Ref
    reason: Text
    state_before: CreditState
    state_after: CreditState
    as_of: Instant
    context: NoticeContext
    warning_level: SmallInt | None = None  # 1, 2 or 3 for WARNING (欠费预警 1st/2nd/3rd)
    amount_fen: Fen | None = None  # DEDUCTION: what billing should collect from the deposit
    rule_version: SmallInt | None = None  # version of the rule table the decision came from
    # A catch-up sweep's decision: the business time it was really made (the catch-up's
    # clock), later than `as_of` (the missed day's scheduled moment it decides as of). Its
    # SMS goes out then: the notifier holds it for quiet hours, orders it and dates what
    # became of it in this time. None: made at `as_of`.
    caught_up_at: Instant | None = None


class CreditStateChanged(Contract, frozen=True, kw_only=True):
    """A product's service status really changed (for chain products: the gateway confirmed)."""

    event_type: ClassVar[str] = "credit.state_changed"
    topic: ClassVar[str] = DECISIONS_TOPIC

    account_id: Id
    product_id: Id
    decision_id: Ref  # the decision this change completes
    state_before: CreditState
    state_after: CreditState
    as_of: Instant
    context: NoticeContext
    # A restore that overtook a suspension the chain never confirmed: the service never
    # stopped, so there is nothing to announce. None: not known (older producers).
    service_was_suspended: bool | None = None


class ProductAmountChanged(Contract, frozen=True, kw_only=True):
    """A product off normal now owes a different amount of its own (a partial payment, an
    adjustment, a reversal, a new bill) and no decision said so. A notice made earlier that
    has not left yet (held by the quiet hours, waiting to be retried) would quote the old
    amount: the notifier gives it the new one before it leaves (docs/notifier.md "Amounts
    still true when they leave"). Keyed by account, after the decisions of the same product
    it follows."""

    event_type: ClassVar[str] = "credit.product_amount_changed"
    topic: ClassVar[str] = DECISIONS_TOPIC

    account_id: Id
    product_id: Id
    as_of: Instant  # the balance event's business time
    sequence: SequenceNo  # the account's balance event this is as of
    state: CreditState  # the product's state after it
    amount_due_fen: Fen  # XX元: the product's own amount due now
    previous_fen: Fen  # what it owed of its own before
    account_amount_due_fen: Fen  # the account's total now (ACCOUNTXX)


class DeductionCollected(Contract, frozen=True, kw_only=True):
    """Billing collected from the account's deposit (划扣) and so much of it paid this
    product's arrears: the fact the deduction notice (划扣通知) says, published by
    credit-control when it applies billing's `cause=deduction` balance event, one per product
    the money paid (billing's `DeductionOutcome.products`). The notice quotes what was really
    collected for this product, never what the deduction decision asked for: billing collects
    at most what the deposit holds and what is still owed, and its allocation pays the
    account's oldest bills first (docs/billing.md, docs/notifier.md). Keyed by account, after
    the decisions the same balance event led to."""

    event_type: ClassVar[str] = "credit.deduction_collected"
    topic: ClassVar[str] = DECISIONS_TOPIC

    account_id: Id
    product_id: Id
    deduction_id: Ref  # the deduction decision billing answered (one notice per product and it)
    as_of: Instant  # when billing collected (the decision's business time)
    sequence: SequenceNo  # the account's balance event that says so
    collected_fen: Fen  # XX元: what the deposit paid of this product's arrears (> 0)
    context: NoticeContext  # amount_due_fen: what the product still owes of its own after it


class ExemptionChanged(Contract, frozen=True, kw_only=True):
    """A customer's exemption from suspension (red list, emergency no-suspension) was added
    or removed (by staff, by the red list's lapse at its review date) or ran out at its
    `until`, and so whether this product of it is exempt now: no decision. A suspension
    warning made earlier that has not left yet (held by the quiet hours, waiting to be
    retried) would threaten a suspension that will not follow: the notifier cancels it
    before it leaves, and gives a waiting third warning the text without its threat, as for
    one made for an exempt product (docs/notifier.md "No empty threats"). One per product of
    the customer, keyed by its account."""

    event_type: ClassVar[str] = "credit.exemption_changed"
    topic: ClassVar[str] = DECISIONS_TOPIC

    account_id: Id
    product_id: Id
    customer_id: Id
    exemption_id: Ref  # the exemption added, removed or run out
    as_of: Instant  # when it was added or removed, or its `until`
    suspension_exempt: bool  # the product is exempt now, all its customer's exemptions counted


class SuspensionDeferred(Contract, frozen=True, kw_only=True):
    """A promise to pay (承诺缴费) recorded for the product's account defers its suspension
    (docs/collections.md "What a promise defers"): a suspension warning decided before it
    names a date no suspension will follow on. One that has not left yet (held by the quiet
    hours, waiting to be retried) is cancelled by the notifier before it leaves, as one whose
    ladder restarted (docs/notifier.md "No empty threats"); should the promise be broken,
    the sweep warns again, with a date of its own, before it suspends (the lost warning is
    owed again). No decision. One per product of the account that is suspension-warned,
    keyed by the account."""

    event_type: ClassVar[str] = "credit.suspension_deferred"
    topic: ClassVar[str] = DECISIONS_TOPIC

    account_id: Id
    product_id: Id
    promise_id: Ref  # the promise that defers it
    as_of: Instant  # when the promise was recorded (business time)
    promised_date: date  # the date the customer promised to pay by


# What credit-control publishes on DECISIONS_TOPIC about a product's decisions and states
# (a ProductAmountChanged only revises the amounts of notices already made).
CreditEvent = CreditDecisionMade | CreditStateChanged
