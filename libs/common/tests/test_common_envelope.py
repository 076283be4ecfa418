"""common.envelope: wrap → to_bytes → parse, and every way a message is unprocessable."""

import gc
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import msgspec
import orjson
import pytest

from common.contracts import (
    ALL_CONTRACTS,
    BalanceChanged,
    CreditDecisionMade,
    CreditStateChanged,
    ProvisioningCommand,
    ProvisioningResult,
    SimulatedClockMoved,
    registry,
)
from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from common.envelope import (
    SCHEMA_VERSION,
    Contract,
    EventDecoder,
    UnprocessableMessage,
    convert,
    envelope_type,
    parse,
    to_builtins,
    to_bytes,
    wrap,
)

AT = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
EVENT_ID = UUID("00000000-0000-4000-8000-000000000001")
CONTRACTS = registry(BalanceChanged, CreditDecisionMade, CreditStateChanged,
                     ProvisioningCommand, ProvisioningResult)
EVERYTHING = EventDecoder(*ALL_CONTRACTS)
RESULT = ProvisioningResult(
    command_id="cmd-1", product_id="P-001", action=ProvisioningAction.SUSPEND, sequence=3,
    stage=ChainStage.GATEWAY, outcome=StageOutcome.APPLIED, final=True, detail="blocked", at=AT,
)


def good_bytes() -> bytes:
    return to_bytes(wrap(RESULT, key="P-001", source="gateway-adapter", occurred_at=AT,
                         correlation_id="corr-1", event_id=EVENT_ID))


def good_dict() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(good_bytes())
    return data


def test_round_trip() -> None:
    envelope, payload = parse(good_bytes(), CONTRACTS)
    assert payload == RESULT
    assert type(payload) is ProvisioningResult
    assert envelope.event_id == EVENT_ID
    assert envelope.type == "provisioning.result"
    assert envelope.source == "gateway-adapter"
    assert envelope.occurred_at == AT
    assert envelope.correlation_id == "corr-1"
    assert envelope.schema_version == SCHEMA_VERSION == 1
    assert envelope.key == "P-001"


def test_wrap_gives_a_fresh_event_id_by_default() -> None:
    a = wrap(RESULT, key="k", source="s", occurred_at=AT)
    b = wrap(RESULT, key="k", source="s", occurred_at=AT)
    assert a.event_id != b.event_id
    assert a.type == RESULT.event_type
    # Time-ordered (version 7, common.ids.new_event_id): inboxes and outboxes index them.
    assert (a.event_id.version, b.event_id.version) == (7, 7)
    assert a.event_id.int >> 64 <= b.event_id.int >> 64


def test_payload_fields_added_later_are_ignored() -> None:
    data = good_dict()
    data["payload"]["added_in_a_later_version"] = 1
    data["added_to_the_envelope"] = "x"
    _, payload = parse(orjson.dumps(data), CONTRACTS)
    assert payload == RESULT


def _mutate(**changes: Any) -> bytes:
    data = good_dict()
    for k, v in changes.items():
        if v is ...:
            del data[k]
        else:
            data[k] = v
    return orjson.dumps(data)


def _payload(**changes: Any) -> bytes:
    data = good_dict()
    for k, v in changes.items():
        if v is ...:
            del data["payload"][k]
        else:
            data["payload"][k] = v
    return orjson.dumps(data)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(None, "empty message (tombstone)", id="none"),
        pytest.param(b"", "not an envelope", id="empty-bytes"),
        pytest.param(b"not json", "not an envelope", id="not-json"),
        pytest.param(b"\xff\xfe{", "not an envelope", id="not-utf8"),
        pytest.param(b'{"type": "provisioning.result"', "not an envelope", id="truncated"),
        pytest.param(b"[]", "not an envelope", id="json-list"),
        pytest.param(b'"text"', "not an envelope", id="json-string"),
        pytest.param(b"null", "not an envelope", id="json-null"),
        pytest.param(b'{"a": 1}', "not an envelope", id="json-object-not-envelope"),
        pytest.param(_mutate(event_id="not-a-uuid"), "not an envelope", id="bad-event-id"),
        pytest.param(_mutate(key=...), "not an envelope", id="no-key"),
        pytest.param(_mutate(payload=[1, 2]), "not an envelope", id="payload-not-object"),
        pytest.param(_mutate(schema_version=...), "not an envelope", id="no-schema-version"),
        pytest.param(_mutate(schema_version=2), "unsupported schema_version 2", id="v2"),
        pytest.param(_mutate(schema_version=0), "unsupported schema_version 0", id="v0"),
        pytest.param(_mutate(type="billing.nope"), "unknown event type 'billing.nope'",
                     id="unknown-type"),
        pytest.param(_payload(sequence=...), "bad provisioning.result payload", id="missing"),
        pytest.param(_payload(sequence="three"), "bad provisioning.result payload",
                     id="wrong-type"),
        pytest.param(_payload(outcome="exploded"), "bad provisioning.result payload",
                     id="bad-enum"),
    ],
)
def test_unprocessable(raw: bytes | None, message: str) -> None:
    with pytest.raises(UnprocessableMessage) as info:
        parse(raw, CONTRACTS)
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text  # one line in the dead-letter reason
    assert len(text) <= 600


def test_payload_error_names_the_field() -> None:
    with pytest.raises(UnprocessableMessage, match="sequence"):
        parse(_payload(sequence=...), CONTRACTS)


def test_known_type_unknown_to_this_consumer() -> None:
    with pytest.raises(UnprocessableMessage) as info:
        parse(good_bytes(), registry(BalanceChanged))
    assert str(info.value) == "unknown event type 'provisioning.result'"


def test_errors_keep_their_cause() -> None:
    with pytest.raises(UnprocessableMessage) as info:
        parse(b"not json", CONTRACTS)
    assert info.value.__cause__ is not None


# --- the one codec: msgspec structs, one pass ------------------------------------------------

def _every_contract() -> list[Contract]:
    from .test_common_bounds import VALID
    return [convert(VALID[c], c) for c in ALL_CONTRACTS]


@pytest.mark.parametrize("event", _every_contract(), ids=lambda e: type(e).__name__)
def test_every_contract_round_trips_through_one_decoder(event: Contract) -> None:
    """One decoder for every contract: the envelope's type picks the payload's struct."""
    raw = to_bytes(wrap(event, key="k", source="s", occurred_at=AT, event_id=EVENT_ID))
    envelope = EVERYTHING.decode(raw)
    assert type(envelope) is envelope_type(type(event))
    assert type(envelope.payload) is type(event) and envelope.payload == event
    assert envelope.type == event.event_type and envelope.event_id == EVENT_ID
    assert to_bytes(envelope) == raw  # encode(decode(x)) == x: nothing lost or reordered


@pytest.mark.parametrize("event", _every_contract(), ids=lambda e: type(e).__name__)
def test_a_decoded_event_is_not_tracked_by_the_collector(event: Contract) -> None:
    """Contracts are immutable values (gc=False, common.envelope.Contract): none of a decoded
    event's structs, nested ones included, is another object for the collector to walk."""
    raw = to_bytes(wrap(event, key="k", source="s", occurred_at=AT, event_id=EVENT_ID))
    envelope = EVERYTHING.decode(raw)
    structs = [envelope, *_structs_in(envelope.payload)]
    assert [type(s).__name__ for s in structs if gc.is_tracked(s)] == []


def _structs_in(value: Any) -> list[msgspec.Struct]:
    if isinstance(value, msgspec.Struct):
        return [value, *(s for f in value.__struct_fields__
                         for s in _structs_in(getattr(value, f)))]
    if isinstance(value, tuple | list):
        return [s for v in value for s in _structs_in(v)]
    return []


def test_the_wire_format_is_the_envelope_with_its_payload() -> None:
    data = good_dict()
    assert set(data) == {"type", "event_id", "source", "occurred_at", "correlation_id",
                         "schema_version", "key", "payload"}
    assert data["type"] == "provisioning.result" and data["schema_version"] == 1
    assert data["payload"]["outcome"] == "applied" and data["payload"]["at"] == \
        "2026-11-30T16:00:00Z"
    assert data["event_id"] == str(EVENT_ID)


def test_contracts_are_frozen_and_keyword_only() -> None:
    with pytest.raises(AttributeError):
        RESULT.sequence = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        ProvisioningResult("cmd-1")  # type: ignore[misc,call-arg]


def test_a_message_without_an_event_id_is_refused_not_given_one() -> None:
    # The inbox keys on it: a consumer must never make one up for a redelivery.
    with pytest.raises(UnprocessableMessage, match=r"^not an envelope.*event_id"):
        parse(_mutate(event_id=...), CONTRACTS)


@pytest.mark.parametrize(("change", "reason"), [
    ({"detail": "a\x00b"}, "bad provisioning.result payload: a string contains NUL"),
    ({"product_id": "P\x00"}, "bad provisioning.result payload: a string contains NUL"),
])
def test_a_nul_in_the_payload_is_refused_with_its_field(change: dict[str, Any],
                                                         reason: str) -> None:
    with pytest.raises(UnprocessableMessage) as info:
        parse(_payload(**change), CONTRACTS)
    assert str(info.value).startswith(reason)
    assert f"$.payload.{next(iter(change))}" in str(info.value)


def test_a_nul_in_the_envelope_is_refused_too() -> None:
    with pytest.raises(UnprocessableMessage, match=r"^not an envelope: .*NUL.*\$\.key"):
        parse(_mutate(key="k\x00"), CONTRACTS)


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    raw = _payload(detail="C:\\u0000 is a path, not a NUL")
    assert b"\\\\u0000" in raw
    _, payload = parse(raw, CONTRACTS)
    assert isinstance(payload, ProvisioningResult)
    assert payload.detail == "C:\\u0000 is a path, not a NUL"


def test_the_lax_coercions_pydantic_took_still_pass() -> None:
    _, payload = parse(_payload(sequence="3", final="true"), CONTRACTS)
    assert payload == RESULT


def test_a_decoder_refuses_two_contracts_of_one_type() -> None:
    class Twin(Contract, frozen=True, kw_only=True):
        event_type: ClassVar[str] = ProvisioningResult.event_type
        topic: ClassVar[str] = "x"

    with pytest.raises(ValueError, match="same event type"):
        EventDecoder(ProvisioningResult, Twin)


def test_convert_and_to_builtins_are_the_jsonb_round_trip() -> None:
    stored = to_builtins(RESULT)
    assert stored["action"] == "suspend" and stored["at"] == "2026-11-30T16:00:00Z"
    assert convert(stored, ProvisioningResult) == RESULT
    with pytest.raises(ValueError, match="NUL"):
        convert({**stored, "detail": "\x00"}, ProvisioningResult)
    with pytest.raises(ValueError, match="sequence"):
        convert({**stored, "sequence": -1}, ProvisioningResult)


def test_a_naive_occurred_at_is_refused_by_the_producer() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    payload = SimulatedClockMoved(move_id="m", seq=1, offset_s=0.0, previous_offset_s=0.0,
                                  simulated_at=at, wall_at=at, moved_by="t", reason="r")
    with pytest.raises(ValueError, match="no UTC offset"):
        wrap(payload, key="k", source="test", occurred_at=datetime(2026, 12, 1, 9))
