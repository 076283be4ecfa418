"""notifier.domain.events: the msgspec views the consumer reads credit events with must accept
and refuse what the pydantic contracts accept and refuse (a refused one is dead-lettered)."""

import asyncio
import copy
import types
import typing
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from pydantic import BaseModel, ValidationError

from common.contracts.credit_control import CreditDecisionMade, CreditStateChanged, DecisionType
from common.db import is_event_error
from common.envelope import Contract, RawEnvelope, UnprocessableMessage, to_bytes, wrap
from notifier.domain.events import DecisionEvent, StateChangeEvent, as_event, decode_event
from notifier.entrypoints import consumer

from .test_notifier_notices import S, changed, decision

PAIRS: list[tuple[type[BaseModel], type[msgspec.Struct]]] = [
    (CreditDecisionMade, DecisionEvent), (CreditStateChanged, StateChangeEvent)]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `X`, `X | None` or `tuple[X, ...]`, if any."""
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            return arg
    return None


def _compare(model: type[BaseModel], struct: type[msgspec.Struct]) -> None:
    info = msgspec.structs.fields(struct)
    assert {f.name for f in info} == set(model.model_fields), struct
    hints = typing.get_type_hints(struct, include_extras=True)
    for f in info:
        contract_field = model.model_fields[f.name]
        required = f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT
        assert required == contract_field.is_required(), (struct, f.name)
        inner_model, inner_struct = _model_of(contract_field.annotation), _struct_of(hints[f.name])
        assert (inner_model is None) == (inner_struct is None), (struct, f.name)
        if inner_model is not None and inner_struct is not None:
            _compare(inner_model, inner_struct)
        else:
            # Same type and the same bounds (common.contracts.bounds): pydantic moves a
            # top-level Annotated's constraints into the field's metadata.
            contract = _shape(contract_field.annotation, contract_field.metadata)
            assert _shape(hints[f.name]) == contract, (struct, f.name)


BOUNDS = ("ge", "le", "max_length", "pattern")


def _shape(annotation: Any, metadata: list[Any] | None = None) -> Any:
    """An annotation as (type, its bounds); a union as the set of its members' shapes."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return frozenset(_shape(a) for a in typing.get_args(annotation))
    extras = list(metadata or [])
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *more = typing.get_args(annotation)
        extras += more
    bounds: dict[str, Any] = {}
    for extra in extras:
        for item in getattr(extra, "metadata", None) or [extra]:  # Field(ge=..) holds Ge, Le
            bounds |= {k: getattr(item, k) for k in BOUNDS if getattr(item, k, None) is not None}
    return annotation, frozenset(bounds.items())


@pytest.mark.parametrize(("model", "struct"), PAIRS)
def test_the_views_have_the_contracts_fields_types_and_required_ones(
    model: type[BaseModel], struct: type[msgspec.Struct]
) -> None:
    _compare(model, struct)


@pytest.mark.parametrize("event", [decision(DecisionType.BILL_NOTICE),
                                   decision(DecisionType.WARNING, warning_level=2),
                                   decision(DecisionType.DEDUCTION, amount_fen=500),
                                   changed(S.SUSPEND_REQUESTED, S.SUSPENDED)])
def test_a_published_event_reads_the_same_as_its_contract(
    event: CreditDecisionMade | CreditStateChanged,
) -> None:
    payload = RawEnvelope.model_validate_json(to_bytes(wrap(
        event, key="A-001", source="credit-control", occurred_at=datetime.now(UTC)))).payload
    view = decode_event(event.event_type, payload)
    assert view == as_event(event)
    assert msgspec.json.decode(msgspec.json.encode(view)) == msgspec.json.decode(
        event.model_dump_json())


def _valid() -> dict[str, Any]:
    return decision(DecisionType.BILL_NOTICE).model_dump(mode="json")


def _without(*path: str) -> dict[str, Any]:
    payload = _valid()
    node = payload
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return payload


def _with(value: Any, *path: str) -> dict[str, Any]:
    payload = _valid()
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


BAD = {
    "no context": _without("context"),
    "no decision_id": _without("decision_id"),
    "no rule_id (not used by the notifier, still the contract)": _without("rule_id"),
    "no contact phone": _with([{"name": "x"}], "context", "customer", "contacts"),
    "unknown decision": _with("shout", "decision"),
    "unknown tier": _with("platinum", "context", "customer", "tier"),
    "amount not a number": _with("lots", "context", "amount_due_fen"),
    "not a date": _with("next week", "context", "as_of_date"),
    "contacts not a list": _with("13800000001", "context", "customer", "contacts"),
}


@pytest.mark.parametrize("payload", BAD.values(), ids=BAD.keys())
def test_what_the_contract_refuses_the_notifier_refuses(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CreditDecisionMade.model_validate(payload)
    with pytest.raises(UnprocessableMessage, match=r"bad credit\.decision_made payload"):
        decode_event(CreditDecisionMade.event_type, payload)


def test_unknown_fields_are_ignored_as_by_the_contract() -> None:
    payload = _with({"new": 1}, "added_later")
    assert decode_event(CreditDecisionMade.event_type, payload) == as_event(
        CreditDecisionMade.model_validate(payload))


def _envelope(payload: Any) -> RawEnvelope:
    return RawEnvelope(event_id=uuid.uuid4(), type=CreditDecisionMade.event_type,
                       source="credit-control", occurred_at=datetime.now(UTC), schema_version=1,
                       key="A-001", payload=payload)


def test_a_bad_payload_in_a_batch_is_refused_before_anything_is_written() -> None:
    """The batch handler raises an event error (the runner then applies the batch event by
    event and dead-letters the bad one) without touching the connection."""
    batch = consumer.batch_dispatcher(ctx=None)  # type: ignore[arg-type]
    items: list[tuple[RawEnvelope, Contract]] = [
        (_envelope(_valid()), consumer.CONTRACTS[CreditDecisionMade.event_type]()),
        (_envelope(BAD["no context"]), consumer.CONTRACTS[CreditDecisionMade.event_type]())]
    with pytest.raises(UnprocessableMessage) as refused:
        asyncio.run(batch(None, copy.deepcopy(items)))  # type: ignore[arg-type]
    assert is_event_error(refused.value)
