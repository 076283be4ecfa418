"""A product's own amount (credit/domain/product_amount.py): read from the event's product_dues,
the account's amount for an event without them, and which decisions need a debt."""

from datetime import UTC, datetime

import pytest

from common.contracts.billing import BalanceCause, BalanceChanged, ProductDue
from common.contracts.credit_control import DecisionType as D
from common.contracts.snapshots import CustomerSnapshot, Person, Tier
from credit_control.credit.domain.product_amount import (
    allowed_in_sweep,
    allowed_on_balance,
    product_amount_due,
)


def event(product_dues: tuple[ProductDue, ...]) -> BalanceChanged:
    return BalanceChanged(
        account_id="A1", sequence=3, cause=BalanceCause.PAYMENT,
        as_of=datetime(2026, 11, 5, 2, tzinfo=UTC), balance_fen=-190_725,
        amount_due_fen=190_725,
        customer=CustomerSnapshot(customer_id="G1", name="某集团", tier=Tier.LOW,
                                  account_manager=Person(name="王经理", phone="13900139000"),
                                  contacts=(Person(name="李", phone="13800138000"),)),
        product_dues=product_dues)


def test_the_products_own_amount_is_read_from_product_dues() -> None:
    e = event((ProductDue(product_id="P1", amount_due_fen=0),
               ProductDue(product_id="P2", amount_due_fen=162_345),
               ProductDue(product_id="P3", amount_due_fen=28_380)))
    assert [product_amount_due(e, p) for p in ("P1", "P2", "P3", "P9")] == [0, 162_345,
                                                                          28_380, 0]


def test_an_event_without_product_dues_means_the_accounts_amount() -> None:
    assert product_amount_due(event(()), "P1") == 190_725


@pytest.mark.parametrize("decision", [D.BILL_NOTICE, D.WARNING, D.SUSPENSION_WARNING,
                                      D.SUSPEND, D.PAYMENT_REVERSED])
def test_no_reminder_warning_or_suspension_without_a_debt_of_its_own(decision: D) -> None:
    assert not allowed_on_balance(decision, 0) and allowed_on_balance(decision, 1)
    assert not allowed_in_sweep(decision, 0) and allowed_in_sweep(decision, 1)


@pytest.mark.parametrize("decision", [D.RESTORE, D.ARREARS_CLEARED])
def test_restore_and_clearing_do_not_need_a_debt(decision: D) -> None:
    assert allowed_on_balance(decision, 0)


def test_no_pre_cancellation_of_a_line_whose_own_debt_is_paid() -> None:
    """A sibling's debt keeps the account's product suspended, but its own line is not
    pre-cancelled with a notice of 0.00 yuan (QA pass 37)."""
    assert not allowed_in_sweep(D.PRE_CANCEL, 0) and allowed_in_sweep(D.PRE_CANCEL, 1)
    assert not allowed_in_sweep(D.DEDUCTION, 0)
