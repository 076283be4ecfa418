"""The envelope every Kafka message carries, and the one codec of the event contracts.

Every contract is a msgspec Struct (`Contract`), defined once in `common.contracts`. A
consumer reads with an `EventDecoder` built once for the contracts it consumes: one pass
over the bytes gives the envelope AND its typed payload (a tagged union of one envelope
type per contract, the envelope's `type` is the tag), with every bound of
`contracts.bounds` checked on the way. Producers encode the same structs (`to_bytes`), and a
producer that builds an envelope elsewhere (SQL) takes its topic, type and schema version
from the contract (`Contract.topic`, `Contract.event_type`, `SCHEMA_VERSION`).
"""

import functools
import types
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar, Union
from uuid import UUID

import msgspec

from common.ids import new_event_id

SCHEMA_VERSION = 1


class Contract(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every event payload: fields are only ever added, never renamed or removed.
    Unknown fields (added by a newer producer) are ignored when decoding.

    `gc=False` here and on every struct a contract nests (snapshots, dues, the notice
    context): a contract is an immutable value of strings, numbers, datetimes and tuples of
    such structs, so no reference cycle can run through one, and the cyclic collector need
    not track the dozen structs of each decoded event (its young-generation passes walk every
    tracked object a batch made). A struct holding something mutable must not set it."""

    event_type: ClassVar[str]
    topic: ClassVar[str]


P = TypeVar("P", bound=Contract)
T = TypeVar("T")


class _Header(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The envelope's fields other than its type and payload."""

    event_id: UUID  # the inbox's key: required, a consumer never makes one up
    source: str
    # With its offset: a naive time is refused by the decoder (common.contracts.bounds.Instant).
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    correlation_id: str | None = None
    schema_version: int
    key: str


class Envelope(_Header, Generic[P], frozen=True, kw_only=True, tag_field="type"):
    """One event on the wire: `{"type": <event type>, "event_id", ..., "payload": {...}}`.
    The concrete class of an envelope is `envelope_type(contract)`, whose tag is the
    contract's event type; `wrap` builds one."""

    payload: P

    @property
    def type(self) -> str:
        return self.payload.event_type


# What a consumer receives: an envelope of one of its contracts (the name of older code).
RawEnvelope = Envelope[Any]


@functools.cache
def envelope_type(contract: type[P]) -> type[Envelope[P]]:
    """The envelope of `contract`: tagged with its event type, its payload typed."""
    cls = types.new_class(
        f"{contract.__name__}Envelope", (Envelope[contract],),  # type: ignore[valid-type]
        {"tag": contract.event_type, "frozen": True, "kw_only": True})
    cls.__doc__ = f"The envelope of {contract.__name__} ({contract.event_type!r})."
    cls.__module__ = __name__
    return cls


class _Shape(_Header, frozen=True, kw_only=True):
    """Any envelope, payload untyped: read only to name the reason a message was refused."""

    type: str
    payload: dict[str, Any]


class UnprocessableMessage(Exception):
    """A message that can never be applied: it goes to the dead-letter topic with this reason."""


# strict=False: the lax coercions the pydantic contracts accepted ("12" for an int) still pass.
_SHAPE = msgspec.json.Decoder(_Shape, strict=False)
_ENCODER = msgspec.json.Encoder()


class EventDecoder:
    """Decodes the messages of a set of contracts in one pass; built once per consumer."""

    def __init__(self, *contracts: type[Contract]) -> None:
        self.contracts: dict[str, type[Contract]] = {c.event_type: c for c in contracts}
        if len(self.contracts) != len(contracts):
            raise ValueError("two contracts with the same event type")
        union: Any = Union[tuple(envelope_type(c) for c in contracts)]  # noqa: UP007
        self._decoder = msgspec.json.Decoder(union, strict=False)

    def decode(self, raw: bytes | None) -> Envelope[Any]:
        """The envelope with its typed payload, or UnprocessableMessage with the reason."""
        if raw is None:
            raise UnprocessableMessage("empty message (tombstone)")
        try:
            envelope: Envelope[Any] = self._decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise self._refusal(raw, exc) from exc
        if envelope.schema_version != SCHEMA_VERSION:
            raise _unsupported(envelope.schema_version)
        # JSON can only carry a NUL escaped: rare, then look closer. A backslash first
        # (memchr: most messages have none, msgspec writes text unescaped) spares the
        # six-byte search its ~2 instructions a byte. Asked as the byte's value: `b"\\" in`
        # first tries the operand as an integer, and builds and drops a TypeError (~2,000
        # instructions a message).
        if BACKSLASH in raw and _MAYBE_NUL in raw:
            where = _nul_at(envelope, "$")
            if where is not None:
                raise UnprocessableMessage(
                    f"bad {envelope.type} payload: {_NUL_REASON} - at `{where}`"
                    if where.startswith("$.payload") else f"not an envelope: {_NUL_REASON}"
                    f" - at `{where}`")
        return envelope

    def _refusal(self, raw: bytes, exc: msgspec.DecodeError) -> UnprocessableMessage:
        """Why the one-pass decode failed, in the words a dead letter carries. Only refused
        messages get here, so reading them a second time costs nothing in the common case."""
        try:
            shape = _SHAPE.decode(raw)
        except msgspec.DecodeError as not_envelope:
            return UnprocessableMessage(f"not an envelope: {_short(not_envelope)}")
        if shape.schema_version != SCHEMA_VERSION:
            return _unsupported(shape.schema_version)
        if shape.type not in self.contracts:
            return UnprocessableMessage(f"unknown event type {shape.type!r}")
        return UnprocessableMessage(f"bad {shape.type} payload: {_short(exc)}")


BACKSLASH = ord("\\")
_MAYBE_NUL = b"\\u0000"
_NUL_REASON = "a string contains NUL, which PostgreSQL cannot store"


def _nul_at(value: Any, path: str) -> str | None:
    """Where the first string with a NUL is in a decoded struct (None: nowhere). The bound
    `contracts.bounds.NO_NUL`, checked once per message instead of once per string."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _nul_at(getattr(value, name), f"{path}.{name}")
            if found is not None:
                return found
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            found = _nul_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _unsupported(version: int) -> UnprocessableMessage:
    return UnprocessableMessage(f"unsupported schema_version {version}")


def wrap(
    payload: Contract, *, key: str, source: str, occurred_at: datetime,
    correlation_id: str | None = None, event_id: UUID | None = None,
) -> Envelope[Any]:
    """The envelope of `payload`. A naive `occurred_at` is refused here, in the producer's
    transaction: every consumer would refuse the event (dead-letter it) once committed."""
    if occurred_at.utcoffset() is None:
        raise ValueError(f"occurred_at {occurred_at.isoformat()} has no UTC offset")
    return envelope_type(type(payload))(
        event_id=event_id or new_event_id(), source=source, occurred_at=occurred_at,
        correlation_id=correlation_id, schema_version=SCHEMA_VERSION, key=key, payload=payload,
    )


def to_bytes(envelope: Envelope[Any]) -> bytes:
    return _ENCODER.encode(envelope)


def parse(raw: bytes | None, decoder: EventDecoder) -> tuple[Envelope[Any], Contract]:
    """Parse a message into its envelope and typed payload, or raise UnprocessableMessage."""
    envelope = decoder.decode(raw)
    return envelope, envelope.payload


def encode(value: Any) -> bytes:
    """JSON of a contract struct (or of anything made of them), as the wire has it."""
    return _ENCODER.encode(value)


def to_builtins(value: Any) -> Any:
    """A contract struct as JSON-ready builtins (dicts, lists, str, int): for JSONB columns."""
    return msgspec.to_builtins(value)


def convert(data: Any, cls: type[T]) -> T:
    """Builtins (e.g. a JSONB column, a test's dict) as the struct `cls`, bounds checked (the
    NUL bound included); raises msgspec.ValidationError (a ValueError) when they do not fit."""
    value = msgspec.convert(data, cls, strict=False)
    where = _nul_at(value, "$")
    if where is not None:
        raise msgspec.ValidationError(f"{_NUL_REASON} - at `{where}`")
    return value


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:500]
