"""credit-control publishes decisions and the product credit state they lead to."""

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from common.envelope import Contract

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
    PAYMENT_REVERSED = "payment_reversed"  # 支付冲正/退票: a reversed payment re-opens arrears


class CreditState(StrEnum):
    NORMAL = "normal"
    WARNED = "warned"
    SUSPENSION_WARNED = "suspension_warned"
    SUSPEND_REQUESTED = "suspend_requested"
    SUSPENDED = "suspended"
    RESTORE_REQUESTED = "restore_requested"
    PRE_CANCEL = "pre_cancel"


class NoticeContext(BaseModel):
    """What the notifier needs to render the seed's SMS for one product."""

    model_config = ConfigDict(frozen=True)
    customer: CustomerSnapshot
    product: ProductSnapshot
    amount_due_fen: int  # XX元
    as_of_date: date  # 截至YYYY年MM月DD日
    deadline: date | None = None  # 请于MM月DD日前 / 如在YYYY年MM月DD日前
    bill_month: str | None = None  # YYYY-MM: the oldest bill month still owing, for the KPIs
    # Exempt from automatic suspension at decision time (red list, active emergency
    # no-suspension): the notifier sends no threat of suspension.
    suspension_exempt: bool = False
    # The account's total amount due (amount_due_fen is the product's own): the manager's notice.
    account_amount_due_fen: int | None = None


class CreditDecisionMade(Contract):
    """A decision with the rule and inputs that explain it."""

    event_type: ClassVar[str] = "credit.decision_made"
    topic: ClassVar[str] = DECISIONS_TOPIC

    decision_id: str
    account_id: str
    product_id: str
    decision: DecisionType
    rule_id: str
    reason: str
    state_before: CreditState
    state_after: CreditState
    as_of: datetime
    context: NoticeContext
    warning_level: int | None = None  # 1, 2 or 3 for WARNING (欠费预警 1st/2nd/3rd)
    amount_fen: int | None = None  # DEDUCTION: what billing should collect from the deposit
    rule_version: int | None = None  # version of the rule table the decision came from


class CreditStateChanged(Contract):
    """A product's service status really changed (for chain products: the gateway confirmed)."""

    event_type: ClassVar[str] = "credit.state_changed"
    topic: ClassVar[str] = DECISIONS_TOPIC

    account_id: str
    product_id: str
    decision_id: str  # the decision this change completes
    state_before: CreditState
    state_after: CreditState
    as_of: datetime
    context: NoticeContext
    # A restore that overtook a suspension the chain never confirmed: the service never
    # stopped, so there is nothing to announce. None: not known (older producers).
    service_was_suspended: bool | None = None
