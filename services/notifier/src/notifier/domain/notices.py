"""Which SMS a credit event causes, to whom, with which fields. Pure.

Notices about the service's status follow the fact, not the intention: the suspension notice
goes when the product is really suspended (for MAS / SMS-direct: the gateway confirmed), the
restore notice when it really works again ("已可正常使用").
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum

from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
)

from .templates import NoticeFields, TemplateName

MESSAGE_NS = uuid.UUID("1d0b6a8e-5f3c-4c1e-8a7d-2e9f4b6c3a10")


class Role(StrEnum):
    GROUP_CONTACT = "group_contact"
    ACCOUNT_MANAGER = "account_manager"


@dataclass(frozen=True)
class Notice:
    message_id: str  # (source, recipient, template): the same notice is never sent twice
    source_id: str
    template: TemplateName
    role: Role
    recipient_name: str
    recipient_phone: str
    fields: NoticeFields


_ON_DECISION = {
    DecisionType.BILL_NOTICE: TemplateName.BILL_NOTICE,
    DecisionType.SUSPENSION_WARNING: TemplateName.SUSPENSION_WARNING,
}


def notices_for(event: CreditDecisionMade | CreditStateChanged) -> list[Notice]:
    if isinstance(event, CreditDecisionMade):
        template = _ON_DECISION.get(event.decision)
        if template is None:
            return []
        return _to_contacts(f"decision:{event.decision_id}", template, event.context)
    source = f"state:{event.decision_id}:{event.state_after}"
    if event.state_after is CreditState.SUSPENDED:
        return [
            *_to_contacts(source, TemplateName.SUSPENSION_NOTICE_CONTACT, event.context),
            _to_manager(source, TemplateName.SUSPENSION_NOTICE_MANAGER, event.context),
        ]
    if event.state_after is CreditState.NORMAL and event.state_before in (
        CreditState.SUSPENDED, CreditState.RESTORE_REQUESTED
    ):
        return _to_contacts(source, TemplateName.RESTORE_NOTICE, event.context)
    return []


def _fields(ctx: NoticeContext, template: TemplateName) -> NoticeFields:
    day = ctx.as_of_date if template is TemplateName.SUSPENSION_NOTICE_CONTACT else ctx.deadline
    return NoticeFields(
        product_name=ctx.product.name, product_no=ctx.product.cpno,
        amount_due_fen=ctx.amount_due_fen, date=day,
        account_manager_name=ctx.customer.account_manager.name, group_name=ctx.customer.name,
    )


def _to_contacts(source: str, template: TemplateName, ctx: NoticeContext) -> list[Notice]:
    return [
        _notice(source, template, Role.GROUP_CONTACT, c.name, c.phone, ctx)
        for c in ctx.customer.contacts
    ]


def _to_manager(source: str, template: TemplateName, ctx: NoticeContext) -> Notice:
    m = ctx.customer.account_manager
    return _notice(source, template, Role.ACCOUNT_MANAGER, m.name, m.phone, ctx)


def _notice(
    source: str, template: TemplateName, role: Role, name: str, phone: str, ctx: NoticeContext
) -> Notice:
    message_id = str(uuid.uuid5(MESSAGE_NS, f"{source}|{phone}|{template}"))
    return Notice(message_id, source, template, role, name, phone, _fields(ctx, template))
