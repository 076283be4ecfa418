"""common.money.fen_to_yuan_text: integer fen to yuan text, no floats."""

import pytest

from common.money import fen_to_yuan_text


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (5, "0.05"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (101, "1.01"),
        (12345, "123.45"),
        (-1, "-0.01"),
        (-5, "-0.05"),
        (-100, "-1.00"),
        (-12345, "-123.45"),
        (10**13, "100000000000.00"),
        (18381826, "183818.26"),  # seed 000: arrears Sep–Nov 2011
        (4885013630, "48850136.30"),  # seed 000: receivables Sep–Nov 2011
        (2**53 + 1, "90071992547409.93"),  # beyond float precision
        (-(10**20) - 7, "-1000000000000000000.07"),
    ],
)
def test_fen_to_yuan_text(fen: int, text: str) -> None:
    assert fen_to_yuan_text(fen) == text


@pytest.mark.parametrize("fen", range(-1000, 1001, 7))
def test_round_trip(fen: int) -> None:
    text = fen_to_yuan_text(fen)
    whole, cents = text.lstrip("-").split(".")
    assert len(cents) == 2
    assert (-1 if text.startswith("-") else 1) * (int(whole) * 100 + int(cents)) == fen
