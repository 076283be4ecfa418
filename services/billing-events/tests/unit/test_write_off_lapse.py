"""domain.model.write_off_lapse: a write-off never becomes the customer's money."""

from hypothesis import given
from hypothesis import strategies as st

from billing_events.domain.model import write_off_lapse

FEN = st.integers(min_value=-10**9, max_value=10**9)
STANDING = st.integers(min_value=0, max_value=10**9)


def test_examples() -> None:
    assert write_off_lapse(-3_000, 10_000) == 0  # still owing: the write-off stands
    assert write_off_lapse(5_000, 10_000) == 5_000  # a credit note of 50.00 on it
    assert write_off_lapse(15_000, 10_000) == 10_000  # paid 150.00: 50.00 is the customer's
    assert write_off_lapse(5_000, 0) == 0  # nothing written off: an over-payment is credit
    # The payment that made 100.00 lapse bounced: the write-off comes back.
    assert write_off_lapse(-10_000, 0, revived_fen=10_000) == -10_000
    # ...unless a credit note since leaves the account in credit without it.
    assert write_off_lapse(-2_000, 0, revived_fen=10_000) == -2_000
    # January's 100.00 written off, February's 80.00 owed; January credited back in full:
    # the whole write-off lapses (it covered January), February stays owed.
    assert write_off_lapse(2_000, 10_000, uncovered_fen=10_000) == 10_000
    # January's 100.00 written off by 60.00 only (40.00 still owed); credited back by 30.00:
    # the note cancels what was still owed first, nothing lapses.
    assert write_off_lapse(-1_000, 6_000, uncovered_fen=0) == 0


@given(FEN, STANDING)
def test_after_a_lapse_no_write_off_stands_beside_a_credit(balance: int, standing: int) -> None:
    lapse = write_off_lapse(balance, standing)
    assert 0 <= lapse <= standing
    after_balance, after_standing = balance - lapse, standing - lapse
    assert not (after_balance > 0 and after_standing > 0)
    assert after_balance >= min(balance, 0)  # a lapse never makes an account owe


@given(FEN, STANDING, STANDING)
def test_a_bounce_brings_back_at_most_what_lapsed(balance: int, standing: int,
                                                 revived: int) -> None:
    change = write_off_lapse(balance, standing, revived)
    assert -revived <= change <= standing
    after_balance = balance + revived - (revived + change)
    after_standing = standing + revived - (revived + change)
    assert not (after_balance > 0 and after_standing > 0)
    assert after_standing >= 0


@given(FEN, STANDING, STANDING)
def test_a_credit_note_lapses_at_most_what_stands(balance: int, standing: int,
                                                 uncovered: int) -> None:
    lapse = write_off_lapse(balance, standing, uncovered_fen=uncovered)
    assert 0 <= lapse <= standing
    assert lapse >= min(uncovered, standing)
    assert not (balance - lapse > 0 and standing - lapse > 0)
