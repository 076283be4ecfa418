"""The notifier reads credit events with the contracts' own decoder (common.contracts, one
source): a payload the contract refuses (issue 14's poison values, a missing or mistyped
field) is refused before it reaches the notifier's tables, and dead-lettered with the reason;
values at the bounds, and fields added by a newer producer, are read."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from common.contracts import CreditDecisionMade, CreditStateChanged, ProductAmountChanged, bounds
from common.contracts.credit_control import (
    DecisionType,
    DeductionCollected,
    ExemptionChanged,
    SuspensionDeferred,
)
from common.envelope import UnprocessableMessage, to_bytes, wrap
from notifier.entrypoints.consumer import CONTRACTS

from .test_notifier_notices import S, changed, collected, decision

BIG_ID = "P" * 4096


def _message(event: CreditDecisionMade | CreditStateChanged | DeductionCollected,
             **changes: Any) -> bytes:
    """The event as credit-control publishes it, with `changes` (a__b: nested) applied."""
    data = orjson.loads(to_bytes(wrap(event, key="A-001", source="credit-control",
                                      occurred_at=datetime.now(UTC), event_id=uuid.uuid4())))
    for dotted, value in changes.items():
        target = data["payload"]
        *path, last = dotted.split("__")
        for step in path:
            target = target[step]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return json.dumps(data).encode()  # json: integers past int64, as a producer may send


def test_the_consumer_reads_the_contracts_of_libs_common() -> None:
    assert CONTRACTS.contracts == {CreditDecisionMade.event_type: CreditDecisionMade,
                                   CreditStateChanged.event_type: CreditStateChanged,
                                   DeductionCollected.event_type: DeductionCollected,
                                   ProductAmountChanged.event_type: ProductAmountChanged,
                                   ExemptionChanged.event_type: ExemptionChanged,
                                   SuspensionDeferred.event_type: SuspensionDeferred}


@pytest.mark.parametrize("event", [decision(DecisionType.BILL_NOTICE),
                                   decision(DecisionType.WARNING, warning_level=2),
                                   decision(DecisionType.DEDUCTION, amount_fen=500),
                                   changed(S.SUSPEND_REQUESTED, S.SUSPENDED),
                                   collected(1_234)])
def test_a_published_event_reads_back_as_itself(
    event: CreditDecisionMade | CreditStateChanged | DeductionCollected,
) -> None:
    assert CONTRACTS.decode(_message(event)).payload == event


POISON = [
    {"product_id": BIG_ID},
    {"account_id": "A" * (bounds.ID_MAX + 1)},
    {"decision_id": BIG_ID},
    {"amount_fen": 2**63},
    {"amount_fen": -(2**63) - 1},
    {"reason": "x\x00y"},
    {"context__bill_month": "2026-13"},
    {"context__amount_due_fen": 2**63},
    {"context__product__product_id": BIG_ID},
    {"context__customer__name": "集团\x00"},
    {"context__customer__account_manager__phone": "1\x00"},
    {"warning_level": 2**31},
    # what the notifier's own mirrors used to check too (they are gone: one source)
    {"context": ...},
    {"decision_id": ...},
    {"rule_id": ...},  # not used by the notifier, still the contract
    {"context__customer__contacts": [{"name": "x"}]},
    {"decision": "shout"},
    {"context__customer__tier": "platinum"},
    {"context__amount_due_fen": "lots"},
    {"context__as_of_date": "next week"},
    {"context__customer__contacts": "13800000001"},
]


@pytest.mark.parametrize("change", POISON, ids=[f"{k}={str(v)[:12]}" for c in POISON
                                                for k, v in c.items()])
def test_a_poison_decision_is_refused_at_the_edge(change: dict[str, Any]) -> None:
    raw = _message(decision(DecisionType.DEDUCTION, amount_fen=500), **change)
    with pytest.raises(UnprocessableMessage, match=r"^bad credit\.decision_made payload"):
        CONTRACTS.decode(raw)


@pytest.mark.parametrize("change", [{"collected_fen": 2**63}, {"deduction_id": BIG_ID},
                                    {"collected_fen": ...}, {"context__product": ...}],
                         ids=str)
def test_a_poison_deduction_collected_is_refused(change: dict[str, Any]) -> None:
    raw = _message(collected(1_234), **change)
    with pytest.raises(UnprocessableMessage,
                       match=r"^bad credit\.deduction_collected payload"):
        CONTRACTS.decode(raw)


def test_a_poison_state_change_is_refused() -> None:
    raw = _message(changed(S.SUSPEND_REQUESTED, S.SUSPENDED), product_id=BIG_ID)
    with pytest.raises(UnprocessableMessage, match="product_id"):
        CONTRACTS.decode(raw)


def test_values_at_the_bounds_are_read() -> None:
    raw = _message(decision(DecisionType.DEDUCTION, amount_fen=500),
                   product_id="P" * bounds.ID_MAX, amount_fen=bounds.FEN_LIMIT,
                   context__bill_month="2999-12")
    event = CONTRACTS.decode(raw).payload
    assert isinstance(event, CreditDecisionMade)
    assert event.product_id == "P" * bounds.ID_MAX and event.amount_fen == bounds.FEN_LIMIT


def test_fields_added_later_are_ignored() -> None:
    event = decision(DecisionType.BILL_NOTICE)
    assert CONTRACTS.decode(_message(event, added_later={"new": 1})).payload == event


def test_the_lax_coercions_the_contract_always_took_still_pass() -> None:
    event = decision(DecisionType.DEDUCTION, amount_fen=500)
    assert CONTRACTS.decode(_message(event, amount_fen="500")).payload == event
