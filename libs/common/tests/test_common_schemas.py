"""common.contracts.schemas: the checked-in JSON Schemas are the structs' own, and what the
codec writes is valid against them (a consumer outside this repository reading them gets the
same contract, bounds included)."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from common.contracts import ALL_CONTRACTS, BalanceChanged, ProvisioningResult
from common.contracts.schemas import SCHEMA_DIR, differences, path_of, write
from common.envelope import Contract, convert, to_bytes, wrap

from .test_common_bounds import VALID


def test_the_checked_in_schemas_are_the_structs_own() -> None:
    # Fails after a contract changes until `uv run python -m common.contracts.schemas` ran.
    assert differences() == []


def test_a_changed_contract_is_caught(tmp_path: Path) -> None:
    write(tmp_path)
    assert differences(tmp_path) == []
    target = path_of(BalanceChanged, tmp_path)
    target.write_text(target.read_text().replace('"maxLength": 64', '"maxLength": 65'))
    (tmp_path / "old.topic.v1").mkdir()
    (tmp_path / "old.topic.v1" / "Gone.json").write_text("{}")
    assert differences(tmp_path) == [
        "missing or stale: billing.balance.v1/BalanceChanged.json",
        "no contract for: old.topic.v1/Gone.json"]
    write(tmp_path)
    assert differences(tmp_path) == []


def _validator(contract: type[Contract]) -> Any:
    schema = json.loads((SCHEMA_DIR / contract.topic / f"{contract.__name__}.json").read_text())
    return jsonschema_rs.Draft202012Validator(schema)


@pytest.mark.parametrize("contract", ALL_CONTRACTS, ids=lambda c: c.__name__)
def test_what_the_codec_writes_is_valid_against_the_schema(contract: type[Contract]) -> None:
    event = convert(VALID[contract], contract)
    message = json.loads(to_bytes(wrap(event, key="k", source="test",
                                       occurred_at=datetime.now(UTC))))
    _validator(contract).validate(message)
    assert message["type"] == contract.event_type


def test_the_schema_carries_the_bounds() -> None:
    event = convert(VALID[ProvisioningResult], ProvisioningResult)
    message = json.loads(to_bytes(wrap(event, key="k", source="test",
                                       occurred_at=datetime.now(UTC))))
    validator = _validator(ProvisioningResult)
    for field, poison in [("product_id", "P" * 4096), ("sequence", -1), ("detail", "a\x00b"),
                          ("outcome", "exploded")]:
        bad = {**message, "payload": {**message["payload"], field: poison}}
        assert not validator.is_valid(bad), field
    assert not validator.is_valid({**message, "type": "billing.balance_changed"})
