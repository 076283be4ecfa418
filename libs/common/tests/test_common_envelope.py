"""common.envelope: wrap → to_bytes → parse, and every way a message is unprocessable."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest

from common.contracts import (
    BalanceChanged,
    CreditDecisionMade,
    CreditStateChanged,
    ProvisioningCommand,
    ProvisioningResult,
    registry,
)
from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from common.envelope import SCHEMA_VERSION, UnprocessableMessage, parse, to_bytes, wrap

AT = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
EVENT_ID = UUID("00000000-0000-4000-8000-000000000001")
CONTRACTS = registry(BalanceChanged, CreditDecisionMade, CreditStateChanged,
                     ProvisioningCommand, ProvisioningResult)
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
