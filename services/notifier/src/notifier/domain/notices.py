"""Which SMS a credit event causes, to whom, with which fields. Pure.

Notices about the service's status follow the fact, not the intention: the suspension notice
goes when the product is really suspended (for MAS / SMS-direct: the gateway confirmed), the
restore notice when it really works again ("已可正常使用"). So does the deduction notice: it
follows what billing really collected for the product (credit-control's DeductionCollected),
not the deduction decision, which is only billing's ask — the deposit may hold less, and
billing's allocation may pay another product's older bill with it. Reminders (bill notice,
warnings, suspension warning, pre-cancel) follow the decision itself.
"""

import uuid
from dataclasses import dataclass

from common.clock import business_date
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditEvent,
    CreditState,
    DecisionType,
    DeductionCollected,
    NoticeContext,
)

from .templates import SPECS, AmountSource, DateSource, NoticeFields, Role, TemplateName

__all__ = ["EXEMPT_VARIANTS", "REMINDER_DECISIONS", "Notice", "NoticeEvent", "Role",
           "notices_for", "notices_for_template", "template_for_decision"]

# The events that make messages: credit-control's decisions and state changes, and what a
# deduction really collected for a product.
NoticeEvent = CreditEvent | DeductionCollected

MESSAGE_NS = uuid.UUID("1d0b6a8e-5f3c-4c1e-8a7d-2e9f4b6c3a10")
T = TemplateName
# Decisions about arrears that remind the customer: the reminder timeliness KPI counts them.
REMINDER_DECISIONS = frozenset({DecisionType.BILL_NOTICE, DecisionType.WARNING,
                                DecisionType.SUSPENSION_WARNING, DecisionType.PAYMENT_REVERSED})
_WARNINGS = {1: T.WARNING_1, 2: T.WARNING_2, 3: T.WARNING_3}
_ON_DECISION: dict[DecisionType, tuple[TemplateName, ...]] = {
    DecisionType.BILL_NOTICE: (T.BILL_NOTICE,),
    DecisionType.SUSPENSION_WARNING: (T.SUSPENSION_WARNING,),
    # DEDUCTION: nothing; the notice follows DeductionCollected, what billing really took.
    DecisionType.PRE_CANCEL: (T.PRE_CANCEL_NOTICE, T.PRE_CANCEL_NOTICE_MANAGER),
    DecisionType.PAYMENT_REVERSED: (T.PAYMENT_REVERSED_NOTICE,),
}
# A product exempt from suspension is never threatened with it: the templates whose text
# threatens suspension have a variant without the threat. (suspension_warning is nothing but
# the threat: it is not sent to an exempt product at all, see domain/recheck.py.)
EXEMPT_VARIANTS: dict[TemplateName, TemplateName] = {T.WARNING_3: T.WARNING_3_EXEMPT}


@dataclass(frozen=True)
class Notice:
    message_id: str  # (source, recipient, template): the same notice is never sent twice
    source_id: str
    template: TemplateName
    role: Role
    recipient_name: str
    recipient_phone: str
    fields: NoticeFields
    trigger: str  # the decision type, or the state the product reached
    reminder: bool  # an arrears reminder to the customer (reminder timeliness KPI)


def template_for_decision(event: CreditDecisionMade) -> tuple[TemplateName, ...]:
    if event.decision is DecisionType.WARNING:
        # A warning without a level is the first one: the seed's rule 1 has none. One whose
        # ladder skipped a level no warning was given for says the count given, this one
        # included (context.reminder_level): never "此为第二次" without a first.
        level = event.context.reminder_level or event.warning_level or 1
        templates: tuple[TemplateName, ...] = (_WARNINGS.get(level, T.WARNING_1),)
    else:
        templates = _ON_DECISION.get(event.decision, ())
    if event.context.suspension_exempt:
        return tuple(EXEMPT_VARIANTS.get(t, t) for t in templates)
    return templates


def _manager_suspension(event: CreditEvent) -> TemplateName:
    """停机通知 B; with the account's total when the account owes more than this product."""
    total = event.context.account_amount_due_fen
    if total is not None and total != event.context.amount_due_fen:
        return T.SUSPENSION_NOTICE_MANAGER_ACCOUNT
    return T.SUSPENSION_NOTICE_MANAGER


def source_of(event: NoticeEvent) -> str:
    """What the messages are about: the decision, the state a decision led to, or — for
    what a deduction collected — the deduction decision billing answered (its notice's
    outcome carries that id, GET /v1/messages?decision_id= finds it)."""
    if isinstance(event, CreditDecisionMade):
        return f"decision:{event.decision_id}"
    if isinstance(event, DeductionCollected):
        return f"decision:{event.deduction_id}"
    return f"state:{event.decision_id}:{event.state_after}"


def _id_key(event: NoticeEvent, source: str) -> str:
    """What a message id is made from besides recipient and template: the source; for a
    deduction collected, with the product, since one deduction may pay several products'
    arrears (one notice each)."""
    if isinstance(event, DeductionCollected):
        return f"{source}|product:{event.product_id}"
    return source


def notices_for(event: NoticeEvent) -> list[Notice]:
    source = source_of(event)
    if isinstance(event, DeductionCollected):
        # Nothing collected, nothing to tell ("划扣0.00元" is no deduction). credit-control
        # publishes none such (collected_fen > 0); this is the safety net.
        if event.collected_fen == 0:
            return []
        return _to_role(source, T.DEDUCTION_NOTICE, event, DecisionType.DEDUCTION.value, False)
    if isinstance(event, CreditDecisionMade):
        reminder = event.decision in REMINDER_DECISIONS
        return [n for template in template_for_decision(event)
                for n in _to_role(source, template, event, event.decision.value, reminder)]
    trigger = event.state_after.value
    if event.state_after is CreditState.SUSPENDED:
        return [n for template in (T.SUSPENSION_NOTICE_CONTACT, _manager_suspension(event))
                for n in _to_role(source, template, event, trigger, False)]
    if event.state_after is CreditState.NORMAL and event.state_before in (
        CreditState.SUSPENDED, CreditState.RESTORE_REQUESTED, CreditState.PRE_CANCEL
    ) and event.service_was_suspended is not False:
        return _to_role(source, T.RESTORE_NOTICE, event, trigger, False)
    return []


def notices_for_template(
    event: NoticeEvent, template: TemplateName
) -> list[Notice]:
    """What `template` would say about this event, whether or not the event sends it (the
    template preview)."""
    trigger = (event.decision.value if isinstance(event, CreditDecisionMade)
               else DecisionType.DEDUCTION.value if isinstance(event, DeductionCollected)
               else event.state_after.value)
    return _to_role(source_of(event), template, event, trigger, False)


def _fields(event: NoticeEvent, template: TemplateName) -> NoticeFields:
    ctx: NoticeContext = event.context
    spec = SPECS[template]
    # The day of the deduction: when billing collected, as a business day (the decision's
    # business time), whatever day the context was written for.
    as_of_day = (business_date(event.as_of) if isinstance(event, DeductionCollected)
                 else ctx.as_of_date)
    # A template asks for the deadline; without one the decision's own day stands in, so no
    # raw "MM月DD日" ever reaches a phone.
    day = as_of_day if spec.date_source is DateSource.AS_OF else (ctx.deadline or as_of_day)
    # 划扣XX元: what was really collected for the product, never what was asked for. Any
    # other event (the preview) has no collected amount: the amount due stands in.
    amount = ctx.amount_due_fen
    if spec.amount_source is AmountSource.DEDUCTION and isinstance(event, DeductionCollected):
        amount = event.collected_fen
    return NoticeFields(
        product_name=ctx.product.name, product_no=ctx.product.cpno, amount_fen=amount, date=day,
        account_manager_name=ctx.customer.account_manager.name, group_name=ctx.customer.name,
        account_amount_fen=ctx.account_amount_due_fen,
    )


def _to_role(
    source: str, template: TemplateName, event: NoticeEvent, trigger: str, reminder: bool,
) -> list[Notice]:
    customer = event.context.customer
    people: list[tuple[str, str]] = [
        (p.name, p.phone) for p in (customer.contacts if SPECS[template].role is
                                    Role.GROUP_CONTACT else (customer.account_manager,))]
    if not people and template in MUST_BE_HEARD_OF:
        # No group contact on record: one message with no number stands for the notice. It
        # is logged undeliverable ("missing phone number"), so the notice's outcome is
        # failed, permanent, and credit-control's suspension goes ahead as an exception with
        # that reason, instead of waiting forever for an SMS nobody could be sent.
        people = [(NO_CONTACT, "")]
    fields = _fields(event, template)
    key = _id_key(event, source)
    return [
        Notice(_message_id(key, phone, template), source, template, SPECS[template].role,
               name, phone, fields, trigger, reminder)
        for name, phone in people
    ]


# The notices credit-control waits for before it suspends (docs/rules.md: notice before
# suspension): they must reach someone, or be recorded as undeliverable.
MUST_BE_HEARD_OF = frozenset({T.SUSPENSION_WARNING})
NO_CONTACT = "(no group contact on record)"


def _message_id(key: str, phone: str, template: TemplateName) -> str:
    return str(uuid.uuid5(MESSAGE_NS, f"{key}|{phone}|{template}"))
