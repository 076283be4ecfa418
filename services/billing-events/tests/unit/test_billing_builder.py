"""The balance-event builder's fast paths (issue 17, the bill run) say what the plain code
said: the one-walk allocation against the per-product rescan it replaced, the one-pass
split of closed and open bills, and the event ids."""

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_events.adapters.ledger import Ledger
from billing_events.domain.allocation import ProductPosition, allocate, product_positions
from billing_events.domain.model import MonthDue, position
from billing_events.service_layer.balances import month_text, state_of

MONTHS = [date(2026, m, 1) for m in (7, 8, 9, 10)]
PRODUCTS = ["P1", "P10", "P2", "P3"]


def rescan(billed: dict[tuple[date, str], int], unbilled: dict[str, int], credits: int,
           product_ids: list[str]) -> tuple[ProductPosition, ...]:
    """product_positions as it was before the one-walk rewrite (per product, a rescan)."""
    owed = allocate(billed, credits)
    ids = sorted(set(product_ids) | {p for _, p in billed} | set(unbilled))
    result = []
    for pid in ids:
        bills = sorted((m, v) for (m, p), v in billed.items() if p == pid)
        dues = tuple(MonthDue(m, owed[(m, pid)]) for m, _ in bills if owed[(m, pid)] > 0)
        billed_fen = sum(v for _, v in bills)
        due = sum(d.amount_due_fen for d in dues)
        result.append(ProductPosition(pid, billed_fen, billed_fen - due, due, dues,
                                      unbilled.get(pid, 0)))
    return tuple(result)


BILLS = st.dictionaries(st.tuples(st.sampled_from(MONTHS), st.sampled_from(PRODUCTS)),
                        st.integers(0, 300_000), max_size=12)


@settings(max_examples=400, deadline=None)
@given(BILLS, st.dictionaries(st.sampled_from(PRODUCTS), st.integers(0, 50_000), max_size=3),
       st.integers(0, 1_500_000), st.lists(st.sampled_from([*PRODUCTS, "P0"]), max_size=5))
def test_one_walk_gives_what_the_rescan_gave(
    billed: dict[tuple[date, str], int], unbilled: dict[str, int], credits: int,
    product_ids: list[str],
) -> None:
    assert product_positions(billed, unbilled, credits, product_ids) == rescan(
        billed, unbilled, credits, product_ids)


@settings(max_examples=300, deadline=None)
@given(BILLS, st.integers(0, 1_500_000), st.sets(st.sampled_from(MONTHS)))
def test_state_splits_closed_and_open_months_as_the_position_says(
    bills: dict[tuple[date, str], int], credits: int, closed: set[date],
) -> None:
    ledger = Ledger("A1", "G1", 5, bills=dict(bills), credits_fen=credits,
                    product_ids=["P0", "P1"])
    state = state_of(ledger, closed)
    closed_bills = {b: v for b, v in bills.items() if b[0] in closed}
    by_month: dict[date, int] = {}
    for (m, _), v in closed_bills.items():
        by_month[m] = by_month.get(m, 0) + v
    unbilled = sum(v for (m, _), v in bills.items() if m not in closed)
    assert state.position == position(by_month, unbilled, credits)
    assert sum(p.unbilled_fen for p in state.products) == unbilled
    assert state.products == rescan(
        closed_bills, {p: sum(v for (m, q), v in bills.items() if q == p and m not in closed)
                       for p in {q for (m, q) in bills if m not in closed}},
        credits, ["P0", "P1"])


def test_month_text() -> None:
    assert month_text(date(2026, 9, 1)) == "2026-09" == month_text(date(2026, 9, 1))


def test_gc_is_paused_only_for_a_bulk_publish_and_restored() -> None:
    import gc

    from billing_events.service_layer.balances import gc_paused

    assert gc.isenabled()
    with gc_paused(bulk=False):
        assert gc.isenabled()
    try:
        with gc_paused(bulk=True):
            assert not gc.isenabled()
            raise RuntimeError("the publish failed")
    except RuntimeError:
        pass
    assert gc.isenabled()  # restored, even after a failure
    gc.disable()
    try:
        with gc_paused(bulk=True):
            assert not gc.isenabled()
        assert not gc.isenabled()  # whoever disabled it keeps it so
    finally:
        gc.enable()
