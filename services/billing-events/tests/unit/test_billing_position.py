"""billing_events.domain.model: the account position (oldest bill month paid first), phones."""

from datetime import date

import pytest

from billing_events.domain.model import AccountPosition, MonthDue, is_mobile_phone, position

SEP = date(2026, 9, 1)
OCT = date(2026, 10, 1)
NOV = date(2026, 11, 1)


@pytest.mark.parametrize(
    ("billed", "paid", "balance", "dues"),
    [
        pytest.param({}, 0, 0, (), id="nothing-billed-nothing-paid"),
        pytest.param({}, 500, 500, (), id="nothing-billed-prepaid"),
        pytest.param({SEP: 10000, OCT: 5000}, 0, -15000,
                     ((SEP, 10000), (OCT, 5000)), id="zero-payments"),
        pytest.param({SEP: 10000, OCT: 5000}, 3000, -12000,
                     ((SEP, 7000), (OCT, 5000)), id="partial-oldest-month"),
        pytest.param({SEP: 10000, OCT: 5000}, 10000, -5000,
                     ((OCT, 5000),), id="oldest-month-cleared-exactly"),
        pytest.param({SEP: 10000, OCT: 5000}, 12000, -3000,
                     ((OCT, 3000),), id="partial-into-second-month"),
        pytest.param({SEP: 10000, OCT: 5000}, 15000, 0, (), id="paid-in-full"),
        pytest.param({SEP: 10000, OCT: 5000}, 20000, 5000, (), id="over-payment-is-credit"),
        pytest.param({SEP: 1, OCT: 1, NOV: 1}, 2, -1, ((NOV, 1),), id="one-fen-each"),
        pytest.param({SEP: 0, OCT: 700}, 0, -700, ((OCT, 700),), id="zero-month-not-listed"),
        # insertion order must not matter: allocation follows the calendar
        pytest.param({NOV: 300, SEP: 100, OCT: 200}, 250, -350,
                     ((OCT, 50), (NOV, 300)), id="unsorted-input"),
    ],
)
def test_position_allocates_oldest_month_first(
    billed: dict[date, int], paid: int, balance: int, dues: tuple[tuple[date, int], ...]
) -> None:
    pos = position(billed, unbilled_fen=0, paid_fen=paid)
    assert pos.balance_fen == balance
    assert pos.dues == tuple(MonthDue(m, fen) for m, fen in dues)
    assert pos.amount_due_fen == sum(fen for _, fen in dues)
    assert pos.in_arrears is (pos.amount_due_fen > 0)
    assert all(isinstance(d.amount_due_fen, int) for d in pos.dues)


def test_over_payment_positive_balance_and_no_dues() -> None:
    pos = position({SEP: 12345}, unbilled_fen=0, paid_fen=20000)
    assert pos == AccountPosition(balance_fen=7655, amount_due_fen=0, dues=(), unbilled_fen=0)
    assert not pos.in_arrears


@pytest.mark.parametrize("paid", range(0, 16001, 250))
def test_position_invariants_over_a_payment_range(paid: int) -> None:
    billed = {SEP: 10000, OCT: 5000, NOV: 0}
    pos = position(billed, unbilled_fen=42, paid_fen=paid)
    total = sum(billed.values())
    assert pos.balance_fen == paid - total
    assert pos.amount_due_fen == max(total - paid, 0)
    # dues are oldest first and each month owes at most what it was billed
    months = [d.bill_month for d in pos.dues]
    assert months == sorted(months)
    assert all(0 < d.amount_due_fen <= billed[d.bill_month] for d in pos.dues)
    # only the newest owing month may be partly paid: all later ones are untouched
    for d in pos.dues[1:]:
        assert d.amount_due_fen == billed[d.bill_month]


def test_unbilled_is_reported_apart_from_the_closed_months() -> None:
    pos = position({SEP: 10000}, unbilled_fen=777, paid_fen=0)
    assert pos.unbilled_fen == 777
    assert pos.balance_fen == -10000
    assert pos.amount_due_fen == 10000


def test_amounts_stay_exact_integers_beyond_float_precision() -> None:
    big = 2**53 + 1  # not representable as a float
    pos = position({SEP: big, OCT: big}, unbilled_fen=0, paid_fen=big + 1)
    assert pos.balance_fen == -(big - 1)
    assert pos.dues == (MonthDue(OCT, big - 1),)
    assert pos.amount_due_fen == big - 1
    assert isinstance(pos.balance_fen, int)



@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("13800138000", True),
        ("15000000000", True),
        ("19912345678", True),
        ("16600000000", True),
        ("12800138000", False),  # second digit 2: not a mobile prefix
        ("10086000000", False),
        ("23800138000", False),
        ("1380013800", False),  # 10 digits
        ("138001380000", False),  # 12 digits
        ("+8613800138000", False),
        ("8613800138000", False),
        ("138 0013 8000", False),
        ("138-0013-8000", False),
        (" 13800138000", False),
        ("1380013800a", False),
        ("", False),
        ("１３８００１３８０００", False),  # full-width from the first digit
    ],
)
def test_is_mobile_phone(phone: str, ok: bool) -> None:
    assert is_mobile_phone(phone) is ok


@pytest.mark.parametrize(
    "phone",
    [
        "13800138000\n",  # `$` matches before a final newline
        "138００138000",  # full-width digits after the prefix match `\d`
        "138٠٠١٣٨٠٠٠",  # Arabic-Indic digits match `\d`
    ],
)
def test_is_mobile_phone_rejects_trailing_newline_and_non_ascii_digits(phone: str) -> None:
    assert is_mobile_phone(phone) is False
