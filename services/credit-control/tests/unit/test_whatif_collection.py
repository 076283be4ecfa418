"""whatif/domain/collection.py: what billing's deduction would collect for a deduction the
what-if decides, and which products it pays (billing's `deduction_to_collect` and
`allocation.paid_by`, on billing's own examples: services never import each other)."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from credit_control.whatif.domain.collection import Taken, collect

AUG, SEP = date(2026, 8, 1), date(2026, 9, 1)
DAY = date(2026, 10, 15)


def test_the_oldest_bills_first_and_product_id_order_within_a_month() -> None:
    # billing's test_balance_history: 70 yuan pay P1's 60 then 10 of P2's 40
    assert collect(70_00, 100_00, ((SEP, "P1", 60_00), (SEP, "P2", 40_00)), Taken(),
                   DAY) == (("P1", 60_00), ("P2", 10_00))
    # asked for P1, but P2's August bill is older: the money pays it first
    assert collect(80_00, 100_00, ((SEP, "P1", 80_00), (AUG, "P2", 50_00)), Taken(),
                   DAY) == (("P1", 30_00), ("P2", 50_00))


def test_never_more_than_asked_held_or_owed() -> None:
    owing = ((SEP, "P1", 40_00),)
    assert collect(100_00, 30_00, owing, Taken(), DAY) == (("P1", 30_00),)  # the deposit
    assert collect(100_00, 100_00, owing, Taken(), DAY) == (("P1", 40_00),)  # the debt
    assert collect(10_00, 100_00, owing, Taken(), DAY) == (("P1", 10_00),)  # the ask
    assert collect(10_00, 0, owing, Taken(), DAY) == ()  # an empty deposit: no notice
    assert collect(10_00, 100_00, (), Taken(), DAY) == ()  # nothing owed: none either


def test_deductions_before_the_next_point_share_the_deposit_and_the_bills() -> None:
    owing = ((AUG, "P2", 50_00), (SEP, "P1", 80_00))
    taken = Taken()
    assert collect(80_00, 100_00, owing, taken, DAY) == (("P1", 30_00), ("P2", 50_00))
    assert collect(50_00, 100_00, owing, taken, DAY) == (("P1", 20_00),)  # 20 left
    assert collect(50_00, 100_00, owing, taken, DAY) == ()  # the deposit is empty
    assert (taken.deposit_fen, taken.bills) == (100_00, {(AUG, "P2"): 50_00,
                                                         (SEP, "P1"): 50_00})
    assert taken.before(DAY) == 0 and taken.before(date(2026, 10, 16)) == 100_00


@given(st.integers(0, 10**6), st.integers(0, 10**6),
       st.lists(st.tuples(st.sampled_from([AUG, SEP]), st.sampled_from(["P1", "P2", "P3"]),
                          st.integers(1, 10**6)), max_size=6, unique_by=lambda b: b[:2]))
def test_what_is_collected_is_what_billing_would_take(
    ask: int, deposit: int, owing: list[tuple[date, str, int]],
) -> None:
    parts = collect(ask, deposit, tuple(owing), Taken(), DAY)
    owed = {pid: 0 for _, pid, _ in owing}
    for _, pid, fen in owing:
        owed[pid] += fen
    assert sum(fen for _, fen in parts) == max(min(ask, deposit, sum(owed.values())), 0)
    assert all(0 < fen <= owed[pid] for pid, fen in parts)
    assert [pid for pid, _ in parts] == sorted({pid for pid, _ in parts})
