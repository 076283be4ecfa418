"""Which warning's text a warning is sent with (`ladder.reminder_level`): the ladder gives the
step whose day has come, the text counts the warnings this ladder gave. A product billed late,
or cleared and billed again, reaches warning 2's day with no warning 1: it is told "欠费预警"
(the first), never "此为第二次欠费提醒" without a first."""

from hypothesis import given
from hypothesis import strategies as st

from credit_control.credit.domain.ladder import reminder_level


def test_the_next_warning_of_the_ladder_keeps_its_own_text() -> None:
    assert reminder_level(1, 0) is None
    assert reminder_level(2, 1) is None
    assert reminder_level(3, 2) is None
    assert reminder_level(None, 0) is None  # not a warning, or the seed's levelless rule 1


def test_a_step_past_the_next_one_is_sent_with_the_next_ones_text() -> None:
    assert reminder_level(2, 0) == 1  # billed late: warning 2's day, no warning 1 given
    assert reminder_level(3, 0) == 1
    assert reminder_level(3, 1) == 2  # warning 2's day was missed, warning 3's came


@given(st.integers(1, 3), st.integers(0, 3))
def test_the_text_never_counts_a_warning_not_given(level: int, given_so_far: int) -> None:
    text = reminder_level(level, given_so_far)
    sent_as = level if text is None else text
    assert sent_as <= given_so_far + 1 or sent_as == level <= given_so_far
    assert sent_as <= level
    assert (text is None) == (level <= given_so_far + 1)
