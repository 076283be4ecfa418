"""common.contracts.bounds: every valid-shaped poison value of issue 14 (month 13, int64
overflows, 4 KB ids, a NUL) is refused by the contract, so the consumer's parse step calls it
UnprocessableMessage and dead-letters it at once instead of failing in a handler or in
PostgreSQL. And values at the bounds still pass."""

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contracts import (
    BalanceChanged,
    CreditDecisionMade,
    CreditStateChanged,
    DeductionCollected,
    ExemptionChanged,
    NoticeOutcome,
    ProductAmountChanged,
    ProvisioningCommand,
    ProvisioningResult,
    SimulatedClockMoved,
    SuspensionDeferred,
    bounds,
    registry,
)
from common.envelope import Contract, UnprocessableMessage, convert, parse

INT64_OVERFLOW = 2**63
BIG_ID = "X" * 4096

PERSON = {"name": "赵经理", "phone": "13900000001"}
CUSTOMER = {"customer_id": "G-1", "name": "测试集团", "tier": "mid", "star_level": 3,
            "account_manager": PERSON, "contacts": [PERSON]}
PRODUCT = {"product_id": "P-1", "cpno": "CP-1", "name": "移动办公", "family": "MAS",
           "vendor": "huawei", "channel": "东莞"}
CONTEXT = {"customer": CUSTOMER, "product": PRODUCT, "amount_due_fen": 100,
           "as_of_date": "2026-11-25", "bill_month": "2026-10"}
AT = "2026-11-25T09:00:00+08:00"

VALID: dict[type[Contract], dict[str, Any]] = {
    BalanceChanged: {
        "account_id": "A-1", "sequence": 7, "cause": "bill_run", "as_of": AT,
        "balance_fen": -100, "amount_due_fen": 100,
        "dues": [{"bill_month": "2026-10", "amount_due_fen": 100}],
        "closed_bill_month": "2026-10", "customer": CUSTOMER, "products": [PRODUCT],
        "deduction": {"decision_id": "d-1", "requested_fen": 100, "collected_fen": 0}},
    CreditDecisionMade: {
        "decision_id": "d-1", "account_id": "A-1", "product_id": "P-1",
        "decision": "deduction", "rule_id": "adc-mid-1", "reason": "why",
        "state_before": "normal", "state_after": "normal", "as_of": AT, "context": CONTEXT,
        "amount_fen": 100, "warning_level": 1, "rule_version": 3},
    CreditStateChanged: {
        "account_id": "A-1", "product_id": "P-1", "decision_id": "d-1",
        "state_before": "suspend_requested", "state_after": "suspended", "as_of": AT,
        "context": CONTEXT},
    ProductAmountChanged: {
        "account_id": "A-1", "product_id": "P-1", "as_of": AT, "sequence": 8,
        "state": "warned", "amount_due_fen": 2345, "previous_fen": 12345,
        "account_amount_due_fen": 7345},
    DeductionCollected: {
        "account_id": "A-1", "product_id": "P-1", "deduction_id": "d-1", "as_of": AT,
        "sequence": 9, "collected_fen": 2000, "context": CONTEXT},
    ExemptionChanged: {
        "account_id": "A-1", "product_id": "P-1", "customer_id": "G-1",
        "exemption_id": "e-1", "as_of": AT, "suspension_exempt": True},
    SuspensionDeferred: {
        "account_id": "A-1", "product_id": "P-1", "promise_id": "pr-1", "as_of": AT,
        "promised_date": "2026-12-20"},
    ProvisioningCommand: {
        "command_id": "c-1", "decision_id": "d-1", "product_id": "P-1", "account_id": "A-1",
        "cpno": "CP-1", "family": "MAS", "vendor": "huawei", "action": "suspend",
        "sequence": 3, "requested_at": AT, "attempt": 1, "customer_id": "G-1"},
    ProvisioningResult: {
        "command_id": "c-1", "product_id": "P-1", "action": "suspend", "sequence": 3,
        "stage": "boss", "outcome": "applied", "final": False, "detail": "ok", "at": AT,
        "attempt": 1, "emos_order_id": "E-1"},
    NoticeOutcome: {
        "decision_id": "d-1", "product_id": "P-1", "account_id": "A-1",
        "template": "suspension_warning", "status": "delivered", "at": AT, "wall_at": AT,
        "reason": "", "permanent": False},
    SimulatedClockMoved: {
        "move_id": "m-1", "seq": 2, "offset_s": 86400.0, "previous_offset_s": 3600.0,
        "simulated_at": AT, "wall_at": AT, "moved_by": "zhang.wei", "reason": "demo"},
}

# (contract, path to the field, poison value): issue 14's defect 3, and a few more of a kind.
POISON: list[tuple[type[Contract], tuple[str | int, ...], Any]] = [
    (BalanceChanged, ("dues", 0, "bill_month"), "2026-13"),
    (BalanceChanged, ("dues", 0, "bill_month"), "2026-00"),
    (BalanceChanged, ("closed_bill_month",), "0000-01"),
    (BalanceChanged, ("balance_fen",), INT64_OVERFLOW),
    (BalanceChanged, ("balance_fen",), -INT64_OVERFLOW - 1),
    (BalanceChanged, ("amount_due_fen",), INT64_OVERFLOW),
    (BalanceChanged, ("dues", 0, "amount_due_fen"), INT64_OVERFLOW),
    (BalanceChanged, ("sequence",), INT64_OVERFLOW),
    (BalanceChanged, ("sequence",), -1),
    (BalanceChanged, ("account_id",), BIG_ID),
    (BalanceChanged, ("customer", "customer_id"), BIG_ID),
    (BalanceChanged, ("products", 0, "product_id"), BIG_ID),
    (BalanceChanged, ("customer", "name"), "集团\x00名"),
    (BalanceChanged, ("customer", "contacts", 0, "phone"), "139\x0000"),
    (BalanceChanged, ("deduction", "collected_fen"), INT64_OVERFLOW),
    (CreditDecisionMade, ("amount_fen",), INT64_OVERFLOW),
    (CreditDecisionMade, ("product_id",), BIG_ID),
    (CreditDecisionMade, ("decision_id",), BIG_ID),
    (CreditDecisionMade, ("reason",), "a\x00b"),
    (CreditDecisionMade, ("context", "bill_month"), "2026-13"),
    (CreditDecisionMade, ("context", "amount_due_fen"), INT64_OVERFLOW),
    (CreditDecisionMade, ("context", "product", "product_id"), BIG_ID),
    (CreditDecisionMade, ("warning_level",), 2**31),
    (CreditStateChanged, ("product_id",), BIG_ID),
    (CreditStateChanged, ("account_id",), "A\x00"),
    (ProductAmountChanged, ("amount_due_fen",), INT64_OVERFLOW),
    (ProductAmountChanged, ("product_id",), BIG_ID),
    (ProductAmountChanged, ("sequence",), -1),
    (ProductAmountChanged, ("state",), "vanished"),
    (ProductAmountChanged, ("as_of",), "2026-11-25T09:00:00"),
    (DeductionCollected, ("collected_fen",), INT64_OVERFLOW),
    (DeductionCollected, ("deduction_id",), BIG_ID),
    (DeductionCollected, ("as_of",), "2026-11-25T09:00:00"),
    (ProvisioningCommand, ("sequence",), INT64_OVERFLOW),
    (ProvisioningCommand, ("product_id",), BIG_ID),
    (ProvisioningCommand, ("command_id",), BIG_ID),
    (ProvisioningCommand, ("attempt",), 2**31),
    (ProvisioningCommand, ("cpno",), "CP\x00"),
    (ProvisioningResult, ("sequence",), INT64_OVERFLOW),
    (ProvisioningResult, ("product_id",), BIG_ID),
    (ProvisioningResult, ("detail",), "\x00"),
    # Instants without their offset: ambiguous, and read in the host's zone they would move
    # a business date by hours.
    (BalanceChanged, ("as_of",), "2026-11-25T09:00:00"),
    (BalanceChanged, ("last_payment_at",), "2026-11-25T09:00:00"),
    (CreditDecisionMade, ("as_of",), "2026-11-25T09:00:00"),
    (CreditDecisionMade, ("caught_up_at",), "2026-11-25T09:00:00"),
    (CreditStateChanged, ("as_of",), "2026-11-25T09:00:00"),
    (ProvisioningCommand, ("requested_at",), "2026-11-25T09:00:00"),
    (ProvisioningResult, ("at",), "2026-11-25T09:00:00"),
    (NoticeOutcome, ("wall_at",), "2026-11-25T09:00:00"),
    (SimulatedClockMoved, ("simulated_at",), "2026-11-25T09:00:00"),
]


def _with(payload: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _message(contract: type[Contract], payload: dict[str, Any],
             occurred_at: str | None = None) -> bytes:
    # json, not orjson: the poison includes integers past int64, as a producer may send.
    return json.dumps({
        "event_id": "8e0c1f7e-0000-4000-8000-000000000001", "type": contract.event_type,
        "source": "test", "occurred_at": occurred_at or datetime.now(UTC).isoformat(),
        "schema_version": 1, "key": "A-1", "payload": payload}).encode()


def test_an_envelope_without_the_offset_of_its_time_is_refused() -> None:
    message = _message(BalanceChanged, VALID[BalanceChanged], "2026-11-25T09:00:00")
    with pytest.raises(UnprocessableMessage, match="occurred_at"):
        parse(message, registry(BalanceChanged))


@pytest.mark.parametrize("contract", list(VALID))
def test_the_valid_payloads_pass(contract: type[Contract]) -> None:
    _, payload = parse(_message(contract, VALID[contract]), registry(contract))
    assert isinstance(payload, contract)


@pytest.mark.parametrize(("contract", "path", "value"), POISON,
                         ids=[f"{c.__name__}.{'.'.join(map(str, p))}" for c, p, _ in POISON])
def test_each_poison_value_is_refused_at_the_edge(
    contract: type[Contract], path: tuple[str | int, ...], value: Any,
) -> None:
    with pytest.raises(UnprocessableMessage) as refused:
        parse(_message(contract, _with(VALID[contract], path, value)), registry(contract))
    assert f"bad {contract.event_type} payload" in str(refused.value)
    assert str(path[-1]) in str(refused.value)  # the reason names the field


@pytest.mark.parametrize(("path", "value"), [
    (("account_id",), "A" * bounds.ID_MAX),
    (("balance_fen",), -bounds.FEN_LIMIT),
    (("amount_due_fen",), bounds.FEN_LIMIT),
    (("sequence",), bounds.SEQUENCE_MAX),
    (("dues", 0, "bill_month"), "1900-01"),
    (("dues", 0, "bill_month"), "2999-12"),
    (("customer", "name"), "名" * bounds.NAME_MAX),
])
def test_values_at_the_bounds_pass(path: tuple[str | int, ...], value: Any) -> None:
    convert(_with(VALID[BalanceChanged], path, value), BalanceChanged)


@given(st.integers(min_value=1900, max_value=2999), st.integers(min_value=1, max_value=12))
def test_every_real_month_passes(year: int, month: int) -> None:
    payload = _with(VALID[BalanceChanged], ("closed_bill_month",), f"{year:04d}-{month:02d}")
    assert convert(payload, BalanceChanged).closed_bill_month == f"{year}-{month:02d}"


@given(st.integers(min_value=0, max_value=9999), st.integers(min_value=0, max_value=99))
def test_no_month_outside_1_to_12_or_the_years_passes(year: int, month: int) -> None:
    text = f"{year:04d}-{month:02d}"
    payload = _with(VALID[BalanceChanged], ("dues", 0, "bill_month"), text)
    fits = 1900 <= year <= 2999 and 1 <= month <= 12
    try:
        convert(payload, BalanceChanged)
    except ValueError:
        assert not fits, text
    else:
        assert fits, text


@given(st.integers(min_value=bounds.FEN_LIMIT + 1)
       | st.integers(max_value=-bounds.FEN_LIMIT - 1))
def test_no_amount_beyond_the_limit_passes(amount: int) -> None:
    payload = _with(VALID[CreditDecisionMade], ("amount_fen",), amount)
    with pytest.raises(ValueError):
        convert(payload, CreditDecisionMade)


@given(st.text(min_size=1, max_size=80).map(lambda t: t[: len(t) // 2] + "\x00" + t[len(t) // 2:]))
def test_no_string_with_a_nul_passes(text: str) -> None:
    payload = _with(VALID[ProvisioningResult], ("detail",), text)
    with pytest.raises(ValueError):
        convert(payload, ProvisioningResult)
