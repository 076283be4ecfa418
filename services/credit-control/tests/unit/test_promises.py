"""Promises to pay (collections/domain/promises.py): the policy's limits, the instalment
schedule, kept and broken, and the balance path's threshold suspension deferred."""

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState
from common.contracts.snapshots import ProductFamily
from credit_control.collections.domain.promises import (
    Promise,
    PromisePolicy,
    PromiseStatus,
    problems,
    schedule,
    year_window,
)
from credit_control.credit.adapters.memory import InMemoryBalanceStore
from credit_control.credit.service_layer.balance_events import apply_balance_events

from .test_balance_use_cases import T0, _event, _product, _thresholds_on

TODAY = date(2200, 5, 26)
POLICY = PromisePolicy(max_days=15, admin_max_days=30, per_year=2, max_instalments=6)


def _promise(amount: int = 60_000, until: date = date(2200, 6, 5),
             parts: list[tuple[date, int]] | None = None, baseline: int = 60_000,
             status: PromiseStatus = PromiseStatus.OPEN, account: str = "A1",
             at: datetime = T0) -> Promise:
    return Promise("PR1", account, status, until, amount, schedule(until, amount, parts or []),
                   "2200-03", baseline, at)


def _problems(ahead: int, amount: int = 60_000, parts: list[tuple[date, int]] | None = None,
              admin: bool = False) -> dict[str, str]:
    return problems(POLICY, TODAY, TODAY + timedelta(days=ahead), amount, parts or [], 60_000,
                    admin)


def test_staff_promise_up_to_the_normal_maximum_and_a_credit_admin_further() -> None:
    assert _problems(0) == {} and _problems(15) == {}
    staff = _problems(16)
    assert "promised_date" in staff and "credit-admin may approve up to 30" in staff[
        "promised_date"]
    assert _problems(16, admin=True) == {} and _problems(30, admin=True) == {}
    assert "promised_date" in _problems(31, admin=True)
    assert "promised_date" in _problems(-1)


def test_the_amount_is_positive_and_at_most_the_arrears() -> None:
    assert "amount_fen" in _problems(5, amount=0)
    assert "amount_fen" in _problems(5, amount=60_001)
    assert _problems(5, amount=1) == {}


@pytest.mark.parametrize("parts", [
    [(date(2200, 5, 30), 30_000), (date(2200, 6, 5), 20_000)],  # adds up to 50,000
    [(date(2200, 6, 5), 30_000), (date(2200, 5, 30), 30_000)],  # out of order
    [(date(2200, 5, 30), 30_000), (date(2200, 5, 30), 30_000)],  # the same date twice
    [(date(2200, 5, 30), 30_000), (date(2200, 6, 4), 30_000)],  # the last is not the date
    [(date(2200, 5, 25), 30_000), (date(2200, 6, 5), 30_000)],  # before the business date
    [(date(2200, 5, 30), 0), (date(2200, 6, 5), 60_000)],  # an empty instalment
    [(date(2200, 5, 27 + i), 10_000) for i in range(5)] + [(date(2200, 6, 5), 10_000),
                                                           (date(2200, 6, 4), 0)],  # 7 of them
])
def test_bad_instalments_are_refused(parts: list[tuple[date, int]]) -> None:
    assert "instalments" in _problems(10, parts=parts)


def test_instalments_make_a_cumulative_schedule() -> None:
    steps = schedule(date(2200, 6, 5), 60_000,
                     [(date(2200, 5, 30), 20_000), (date(2200, 6, 5), 40_000)])
    assert [(s.due_on, s.cumulative_fen) for s in steps] == [
        (date(2200, 5, 30), 20_000), (date(2200, 6, 5), 60_000)]
    assert [(s.due_on, s.cumulative_fen) for s in schedule(date(2200, 6, 5), 9, [])] == [
        (date(2200, 6, 5), 9)]
    assert _problems(10, parts=[(date(2200, 5, 30), 20_000), (date(2200, 6, 5), 40_000)]) == {}


def test_kept_when_paid_broken_the_day_after_the_date_open_until_then() -> None:
    p = _promise()
    assert p.outcome(0, date(2200, 6, 5)) is PromiseStatus.OPEN  # the promised day itself
    assert p.defers(0, date(2200, 6, 5))
    assert p.outcome(0, date(2200, 6, 6)) is PromiseStatus.BROKEN
    assert not p.defers(0, date(2200, 6, 6))
    assert p.outcome(59_999, date(2200, 6, 6)) is PromiseStatus.BROKEN
    assert p.outcome(60_000, date(2200, 6, 6)) is PromiseStatus.KEPT
    assert p.outcome(60_000, date(2200, 5, 27)) is PromiseStatus.KEPT
    assert not _promise(status=PromiseStatus.BROKEN).defers(0, date(2200, 5, 27))


def test_a_missed_instalment_breaks_it_before_the_promised_date() -> None:
    p = _promise(parts=[(date(2200, 5, 30), 20_000), (date(2200, 6, 5), 40_000)])
    assert p.deferred_until(0) == date(2200, 5, 30)
    assert p.outcome(19_999, date(2200, 5, 31)) is PromiseStatus.BROKEN
    assert p.outcome(20_000, date(2200, 5, 31)) is PromiseStatus.OPEN
    assert p.deferred_until(20_000) == date(2200, 6, 5)
    assert p.outcome(20_000, date(2200, 6, 6)) is PromiseStatus.BROKEN
    assert p.deferred_until(60_000) is None


def test_paid_counts_the_covered_months_only() -> None:
    p = _promise(baseline=60_000)
    assert p.paid_fen([("2200-03", 60_000)]) == 0
    assert p.paid_fen([("2200-03", 10_000), ("2200-05", 99_000)]) == 50_000  # a new bill later
    assert p.paid_fen([]) == 60_000
    assert p.paid_fen([("2200-02", 70_000)]) == 0  # owing more than at the start: never < 0


def test_the_year_counts_the_365_days_before() -> None:
    assert year_window(date(2201, 5, 26)) == date(2200, 5, 27)


@given(amounts=st.lists(st.integers(1, 50_000), min_size=1, max_size=6),
       paid=st.integers(0, 400_000), day=st.integers(0, 40))
def test_more_paid_never_breaks_and_deferral_is_not_broken(amounts: list[int], paid: int,
                                                          day: int) -> None:
    dates = [TODAY + timedelta(days=3 * i) for i in range(len(amounts))]
    total = sum(amounts)
    p = _promise(amount=total, until=dates[-1], parts=list(zip(dates, amounts, strict=True)),
                 baseline=total)
    today = TODAY + timedelta(days=day)
    assert problems(POLICY, TODAY, dates[-1], total, list(zip(dates, amounts, strict=True)),
                    total, admin=True) == {}  # a schedule the policy accepts
    assert p.defers(paid, today) == (not p.broken(paid, today))
    if p.broken(paid + 1, today):
        assert p.broken(paid, today)  # paying more never breaks a promise
    if paid >= total:
        assert p.outcome(paid, today) is PromiseStatus.KEPT
    if today <= dates[0]:
        assert p.defers(paid, today)  # nothing is due before the first date has passed
    until = p.deferred_until(paid)
    assert until is None or until in dates


async def test_an_open_promise_defers_the_balance_paths_threshold_suspension() -> None:
    mas = _product(ProductFamily.MAS)
    store = InMemoryBalanceStore(T0, table=_thresholds_on())
    store.promises = [Promise("PR1", "A1", PromiseStatus.OPEN, date(2200, 11, 10), 5_000,
                              schedule(date(2200, 11, 10), 5_000), "2200-10", 5_000,
                              T0 - timedelta(days=1))]
    await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 5_000,
                                              balance=-10_000_000, product=mas)])
    assert store.products.products["P1"].state is CreditState.NORMAL
    # Broken (its date passed unpaid): the next event below the limit suspends.
    await apply_balance_events(store, [_event(2, BalanceCause.CHARGE, 5_000,
                                              balance=-10_000_001, product=mas,
                                              at=datetime(2200, 11, 11, 2, tzinfo=T0.tzinfo))])
    assert store.products.products["P1"].state is CreditState.SUSPEND_REQUESTED
