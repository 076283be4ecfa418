"""notifier.domain.delivery: retry backoff, when to give up, which numbers are tried."""

import pytest

from notifier.domain.delivery import (
    MAX_BACKOFF_S,
    give_up,
    is_mobile_number,
    next_attempt_delay,
)


@pytest.mark.parametrize(("attempts", "base_s", "cap_s", "expected"), [
    (1, 1.0, 300.0, 1.0),
    (2, 1.0, 300.0, 2.0),
    (3, 1.0, 300.0, 4.0),
    (5, 1.0, 300.0, 16.0),
    (9, 1.0, 300.0, 256.0),
    (10, 1.0, 300.0, 300.0),  # 512 s, capped
    (10_000, 1.0, 300.0, 300.0),  # no float overflow
    (3, 0.5, 300.0, 2.0),
    (4, 10.0, 60.0, 60.0),
    (1, 1.0, MAX_BACKOFF_S, 1.0),
])
def test_next_attempt_delay(attempts: int, base_s: float, cap_s: float, expected: float) -> None:
    assert next_attempt_delay(attempts, base_s, cap_s) == expected


def test_default_cap_is_five_minutes() -> None:
    assert MAX_BACKOFF_S == 300.0
    assert next_attempt_delay(50, 1.0) == 300.0


@pytest.mark.parametrize("attempts", [0, -1])
def test_next_attempt_delay_needs_a_failed_attempt(attempts: int) -> None:
    with pytest.raises(ValueError):
        next_attempt_delay(attempts, 1.0, 300.0)


@pytest.mark.parametrize(("attempts", "max_attempts", "expected"), [
    (1, 5, False),
    (4, 5, False),
    (5, 5, True),
    (6, 5, True),  # e.g. max lowered by a redeploy
    (1, 1, True),
])
def test_give_up(attempts: int, max_attempts: int, expected: bool) -> None:
    assert give_up(attempts, max_attempts) is expected


@pytest.mark.parametrize(("phone", "expected"), [
    ("13800000001", True),
    ("19912345678", True),
    ("12800000001", False),  # no 12x mobile prefix
    ("23800000001", False),
    ("1380000000", False),  # 10 digits
    ("138000000012", False),  # 12 digits
    ("１３８０００００００１", False),  # full-width digits: isdigit() would say yes
    ("1380000000١", False),  # Arabic-Indic digit
    ("138-0000-0001", False),
    ("+8613800000001", False),
    ("13800000001\n", False),
    ("", False),
])
def test_is_mobile_number(phone: str, expected: bool) -> None:
    assert is_mobile_number(phone) is expected
