"""Issue 14's valid-shaped poison, per consumed topic: a payload its contract accepts in shape
but whose values the domain or the database cannot hold (month 13, int64 overflows, 4 KB ids,
a NUL), and a message just under the broker's size limit. Each must be dead-lettered by every
consumer of its topic with a reason naming the field. Used by tests/e2e/test_poison_bounds.py;
the fault suite can add `bounded_poison(topic, key, uid)` to its poison phase."""

import copy
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from common.contracts import (
    BALANCE_TOPIC,
    COMMANDS_TOPIC,
    DECISIONS_TOPIC,
    RESULTS_TOPIC,
    BalanceChanged,
    CreditDecisionMade,
    ProvisioningCommand,
    ProvisioningResult,
)
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType, NoticeContext
from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from common.contracts.snapshots import (
    CustomerSnapshot,
    Person,
    ProductFamily,
    ProductSnapshot,
    Tier,
)
from common.envelope import Contract

NEAR_LIMIT = b"Q" * 1048440  # accepted by the broker (max.message.bytes 1048588)
BIG_ID = "X" * 4096
INT64_OVERFLOW = 2**63
AT = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)

# Who consumes each topic (the consumer group is the service's name; its inbox says applied).
CONSUMERS = {
    BALANCE_TOPIC: {"credit-control": "credit"},
    RESULTS_TOPIC: {"credit-control": "credit"},
    DECISIONS_TOPIC: {"billing-events": "billing", "notifier": "notifier"},
    COMMANDS_TOPIC: {"gateway-adapter": "gateway"},
}


def _customer(uid: str) -> CustomerSnapshot:
    manager = Person(name="钱经理", phone="13900000002")
    return CustomerSnapshot(customer_id=f"G{uid}", name="毒丸集团", tier=Tier.MID,
                            account_manager=manager, contacts=(manager,))


def _product(uid: str) -> ProductSnapshot:
    return ProductSnapshot(product_id=f"P{uid}", cpno=f"CP{uid}", name="移动办公",
                           family=ProductFamily.MAS, vendor="huawei")


def good(topic: str, key: str, uid: str) -> Contract:
    """A valid event for `topic` that each of its consumers applies (inbox row) and that
    needs nothing on the stack: no products, no SMS, no pending command."""
    if topic == BALANCE_TOPIC:
        return BalanceChanged(account_id=key, sequence=1, cause=BalanceCause.MASTER_DATA,
                              as_of=AT, balance_fen=0, amount_due_fen=0,
                              customer=_customer(uid))
    if topic == RESULTS_TOPIC:
        return ProvisioningResult(command_id=f"cmd-{key}", product_id=key,
                                  action=ProvisioningAction.SUSPEND, sequence=1,
                                  stage=ChainStage.BOSS, outcome=StageOutcome.APPLIED,
                                  final=False, at=AT)
    if topic == DECISIONS_TOPIC:
        context = NoticeContext(customer=_customer(uid), product=_product(uid),
                                amount_due_fen=0, as_of_date=date(2026, 11, 25))
        return CreditDecisionMade(
            decision_id=f"d-{key}", account_id=key, product_id=f"P{uid}",
            decision=DecisionType.ARREARS_CLEARED, rule_id="poison-test", reason="test",
            state_before=CreditState.NORMAL, state_after=CreditState.NORMAL, as_of=AT,
            context=context)
    return ProvisioningCommand(command_id=f"cmd-{key}", decision_id=f"d-{key}", product_id=key,
                               account_id=f"A{uid}", cpno=f"CP{uid}", family=ProductFamily.MAS,
                               vendor="huawei", action=ProvisioningAction.RESTORE, sequence=1,
                               requested_at=AT, customer_id=f"G{uid}")


# Per topic: (what it is, path in the payload, poison value, a word the reason must name).
POISON: dict[str, list[tuple[tuple[str | int, ...], Any, str]]] = {
    BALANCE_TOPIC: [
        (("dues",), [{"bill_month": "2026-13", "amount_due_fen": 100}], "bill_month"),
        (("balance_fen",), INT64_OVERFLOW, "balance_fen"),
        (("account_id",), BIG_ID, "account_id"),
        (("customer", "name"), "毒\x00丸", "name"),
    ],
    RESULTS_TOPIC: [
        (("sequence",), INT64_OVERFLOW, "sequence"),
        (("product_id",), BIG_ID, "product_id"),
        (("detail",), "a\x00b", "detail"),
    ],
    DECISIONS_TOPIC: [
        (("decision",), "deduction", ""),  # with the next one: a deduction of 2^63 fen
        (("product_id",), BIG_ID, "product_id"),
        (("reason",), "a\x00b", "reason"),
        (("context", "bill_month"), "2026-13", "bill_month"),
    ],
    COMMANDS_TOPIC: [
        (("sequence",), INT64_OVERFLOW, "sequence"),
        (("product_id",), BIG_ID, "product_id"),
        (("cpno",), "CP\x00", "cpno"),
    ],
}


def envelope(event: Contract, key: str, payload: dict[str, Any] | None = None) -> bytes:
    # json, not orjson: a poison payload carries integers past int64.
    return json.dumps({
        "event_id": str(uuid.uuid4()), "type": event.event_type, "source": "poison-test",
        "occurred_at": AT.isoformat(), "schema_version": 1, "key": key,
        "payload": payload if payload is not None else msgspec.to_builtins(event)}).encode()


def poisoned(event: Contract, path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(msgspec.to_builtins(event))
    target: Any = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return payload


def bounded_poison(topic: str, key: str, uid: str) -> list[tuple[str, bytes]]:
    """(a word the dead letter's reason must name, message bytes) for `topic`, keyed `key`."""
    template = good(topic, key, uid)
    found = []
    for path, value, word in POISON[topic]:
        payload = poisoned(template, path, value)
        if topic == DECISIONS_TOPIC and path == ("decision",):
            payload["amount_fen"] = INT64_OVERFLOW  # billing's deduction, 2^63 fen
            word = "amount_fen"
        found.append((word, envelope(template, key, payload)))
    return [*found, ("not an envelope", NEAR_LIMIT)]
