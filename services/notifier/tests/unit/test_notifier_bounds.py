"""The notifier's msgspec views refuse the same poison values as the contracts (issue 14): a
decision the contract would refuse must not reach the notifier's tables either."""

from typing import Any

import pytest
from pydantic import ValidationError

from common.contracts import CreditDecisionMade, CreditStateChanged, bounds
from common.contracts.credit_control import DecisionType
from common.envelope import UnprocessableMessage
from notifier.domain.events import decode_event

from .test_notifier_notices import S, changed, decision

BIG_ID = "P" * 4096


def _payload(event: CreditDecisionMade | CreditStateChanged, **changes: Any) -> dict[str, Any]:
    payload = event.model_dump(mode="json")
    for dotted, value in changes.items():
        target = payload
        *path, last = dotted.split("__")
        for step in path:
            target = target[step]
        target[last] = value
    return payload


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
]


@pytest.mark.parametrize("change", POISON, ids=[next(iter(c)) for c in POISON])
def test_a_poison_decision_is_refused_like_the_contract_refuses_it(change: dict[str, Any]) -> None:
    payload = _payload(decision(DecisionType.DEDUCTION, amount_fen=500), **change)
    with pytest.raises(ValidationError):
        CreditDecisionMade.model_validate(payload)
    with pytest.raises(UnprocessableMessage, match=r"bad credit\.decision_made payload"):
        decode_event(CreditDecisionMade.event_type, payload)


def test_a_poison_state_change_is_refused() -> None:
    payload = _payload(changed(S.SUSPEND_REQUESTED, S.SUSPENDED), product_id=BIG_ID)
    with pytest.raises(UnprocessableMessage, match="product_id"):
        decode_event(CreditStateChanged.event_type, payload)


def test_values_at_the_bounds_are_read() -> None:
    payload = _payload(decision(DecisionType.DEDUCTION, amount_fen=500),
                       product_id="P" * bounds.ID_MAX, amount_fen=bounds.FEN_LIMIT,
                       context__bill_month="2999-12")
    event = decode_event(CreditDecisionMade.event_type, payload)
    assert event.product_id == "P" * bounds.ID_MAX
    assert CreditDecisionMade.model_validate(payload).amount_fen == bounds.FEN_LIMIT
