"""A balance event's business moment may precede the product's last state change (a payment
of 11:59Z reaching credit-control after the 12:00Z sweep suspended): what it decides is dated
at that change, never before, and a restore says what it overtook."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from common.contracts.credit_control import CreditState, DecisionType
from credit_control.credit.domain.product_credit import not_before_last_change
from credit_control.credit.domain.rules import Intent

NOON = datetime(2200, 9, 30, 12, tzinfo=UTC)
RESTORE = Intent(DecisionType.RESTORE, "adc-restore-low", "amount due 0 fen ≤ limit 0 fen "
                 "after payment", period="seq:2")


def test_a_late_payment_is_dated_at_the_suspension_it_overtakes() -> None:
    at, intent = not_before_last_change(NOON, NOON - timedelta(minutes=1), RESTORE,
                                        CreditState.SUSPENDED)
    assert at == NOON
    assert intent.reason == (f"{RESTORE.reason}; made 2200-09-30T11:59:00+00:00, before the "
                             "suspended of 2200-09-30T12:00:00+00:00 it overtakes")
    assert intent.period == RESTORE.period  # the same decision id


def test_an_event_after_the_last_change_keeps_its_moment_and_reason() -> None:
    later = NOON + timedelta(hours=1)
    assert not_before_last_change(NOON, later, RESTORE, CreditState.SUSPENDED) == (
        later, RESTORE)
    assert not_before_last_change(None, later, RESTORE, CreditState.SUSPENDED) == (
        later, RESTORE)


@given(st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=1, max_size=30),
       st.integers(min_value=-10_000, max_value=10_000))
def test_any_order_of_arrival_gives_an_ordered_history(offsets: list[int], first: int) -> None:
    """Events arriving in any order of their business moments: each move is dated no earlier
    than its event and no earlier than the move before it."""
    last = NOON + timedelta(minutes=first)
    history = [last]
    for offset in offsets:
        as_of = NOON + timedelta(minutes=offset)
        at, intent = not_before_last_change(last, as_of, RESTORE, CreditState.SUSPENDED)
        assert at >= as_of and at >= last
        assert at == max(as_of, last)
        assert ("it overtakes" in intent.reason) is (as_of < last)
        history.append(at)
        last = at
    assert history == sorted(history)
