"""The credit events as the notifier reads them: msgspec Structs that mirror the contracts
(`common.contracts.credit_control`) field for field. Pure.

Why not the pydantic contracts themselves: validating one decision (customer, contacts,
product, context) with pydantic costs several times what msgspec does, and at thousands of
decisions a second that was the notifier's largest cost. The Structs keep every field and
type of the contract, required fields stay required, unknown fields are ignored (as the
contract's `extra="ignore"`), so a payload the contract refuses is refused here too and goes
to the dead-letter topic (unit test `test_notifier_events` holds the two side by side).
"""

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from pydantic import BaseModel

from common.contracts import bounds
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
)
from common.contracts.snapshots import ProductFamily, Tier
from common.envelope import UnprocessableMessage

# The contract's bounds (common.contracts.bounds) as msgspec constraints, so the notifier
# refuses at the edge exactly what the contract refuses (a 4 KB id, a NUL, month 13, ...).
Id = Annotated[str, msgspec.Meta(max_length=bounds.ID_MAX, pattern=bounds.NO_NUL)]
Ref = Annotated[str, msgspec.Meta(max_length=bounds.REF_MAX, pattern=bounds.NO_NUL)]
Name = Annotated[str, msgspec.Meta(max_length=bounds.NAME_MAX, pattern=bounds.NO_NUL)]
Text = Annotated[str, msgspec.Meta(max_length=bounds.TEXT_MAX, pattern=bounds.NO_NUL)]
BillMonth = Annotated[str, msgspec.Meta(pattern=bounds.BILL_MONTH_PATTERN)]
Fen = Annotated[int, msgspec.Meta(ge=-bounds.FEN_LIMIT, le=bounds.FEN_LIMIT)]
SmallInt = Annotated[int, msgspec.Meta(ge=0, le=bounds.SMALL_MAX)]


class PersonView(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    phone: Name


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: Id
    name: Name  # JTNAME
    tier: Tier
    star_level: SmallInt | None = None
    account_manager: PersonView  # KHJLNAME
    contacts: tuple[PersonView, ...] = ()


class ProductView(msgspec.Struct, frozen=True, kw_only=True):
    product_id: Id
    cpno: Id  # CPNO
    name: Name  # CPNAME
    family: ProductFamily
    vendor: Name | None = None
    channel: Name | None = None


class ContextView(msgspec.Struct, frozen=True, kw_only=True):
    customer: CustomerView
    product: ProductView
    amount_due_fen: Fen  # XX
    as_of_date: date
    deadline: date | None = None
    bill_month: BillMonth | None = None
    suspension_exempt: bool = False  # INTERFACES §2: no threat of suspension when set
    account_amount_due_fen: Fen | None = None


class DecisionEvent(msgspec.Struct, frozen=True, kw_only=True):
    """credit.decision_made"""

    decision_id: Ref
    account_id: Id
    product_id: Id
    decision: DecisionType
    rule_id: Ref
    reason: Text
    state_before: CreditState
    state_after: CreditState
    as_of: datetime
    context: ContextView
    warning_level: SmallInt | None = None
    amount_fen: Fen | None = None
    rule_version: SmallInt | None = None


class StateChangeEvent(msgspec.Struct, frozen=True, kw_only=True):
    """credit.state_changed"""

    account_id: Id
    product_id: Id
    decision_id: Ref
    state_before: CreditState
    state_after: CreditState
    as_of: datetime
    context: ContextView
    service_was_suspended: bool | None = None


CreditEventView = DecisionEvent | StateChangeEvent
EVENT_TYPES: dict[str, type[DecisionEvent] | type[StateChangeEvent]] = {
    CreditDecisionMade.event_type: DecisionEvent,
    CreditStateChanged.event_type: StateChangeEvent,
}


def decode_event(event_type: str, payload: Any) -> CreditEventView:
    """An envelope's payload (decoded JSON) as the event it claims to be, or
    UnprocessableMessage with the reason (the consumer dead-letters it)."""
    kind = EVENT_TYPES.get(event_type)
    if kind is None:
        raise UnprocessableMessage(f"notifier does not consume {event_type}")
    try:
        # strict=False: the lax coercions pydantic's contract accepts ("12" for an int).
        return msgspec.convert(payload, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise UnprocessableMessage(f"bad {event_type} payload: {exc}") from exc


def as_event(event: CreditEventView | CreditDecisionMade | CreditStateChanged) -> CreditEventView:
    """A contract object (HTTP preview, tests) as the notifier's view of it."""
    if isinstance(event, BaseModel):
        return decode_event(event.event_type, event.model_dump(mode="json"))
    return event
