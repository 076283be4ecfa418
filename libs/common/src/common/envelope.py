"""The envelope every Kafka message carries, and its (de)serialisation."""

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1


class Contract(BaseModel):
    """Base of every event payload: fields are only ever added, never renamed or removed."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    event_type: ClassVar[str]
    topic: ClassVar[str]


P = TypeVar("P", bound=Contract)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    source: str
    occurred_at: datetime
    correlation_id: str | None = None
    schema_version: int = SCHEMA_VERSION
    key: str
    payload: P


# Parametrising a generic model looks it up in pydantic's cache on every call: do it once.
_ANY_ENVELOPE = Envelope[Any]


class RawEnvelope(BaseModel):
    """What a consumer can check before it knows the payload type."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    type: str
    source: str
    occurred_at: datetime
    correlation_id: str | None = None
    schema_version: int
    key: str
    payload: dict[str, Any]


class UnprocessableMessage(Exception):
    """A message that can never be applied: it goes to the dead-letter topic with this reason."""


def wrap(
    payload: Contract, *, key: str, source: str, occurred_at: datetime,
    correlation_id: str | None = None, event_id: UUID | None = None,
) -> Envelope[Any]:
    return _ANY_ENVELOPE(
        event_id=event_id or uuid4(), type=payload.event_type, source=source,
        occurred_at=occurred_at, correlation_id=correlation_id, key=key, payload=payload,
    )


def to_bytes(envelope: Envelope[Any]) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"))


def parse(raw: bytes | None, contracts: dict[str, type[Contract]]) -> tuple[RawEnvelope, Contract]:
    """Parse a message into its envelope and typed payload, or raise UnprocessableMessage."""
    if raw is None:
        raise UnprocessableMessage("empty message (tombstone)")
    try:
        envelope = RawEnvelope.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise UnprocessableMessage(f"not an envelope: {_short(exc)}") from exc
    if envelope.schema_version != SCHEMA_VERSION:
        raise UnprocessableMessage(f"unsupported schema_version {envelope.schema_version}")
    contract = contracts.get(envelope.type)
    if contract is None:
        raise UnprocessableMessage(f"unknown event type {envelope.type!r}")
    try:
        return envelope, contract.model_validate(envelope.payload)
    except ValidationError as exc:
        raise UnprocessableMessage(f"bad {envelope.type} payload: {_short(exc)}") from exc


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:500]
