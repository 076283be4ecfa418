"""The scheduler's catch-up planning (credit.domain.catch_up): which scheduled days run, how far
back, in which order, and which are labelled catch-ups."""

from datetime import date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from common.clock import BUSINESS_TZ, business_date, is_last_day_of_month
from credit_control.credit.domain.catch_up import (
    candidate_days,
    due_runs,
    next_slot,
    parse_slot,
    sweep_id_for,
)

SLOT = time(20, 0)
GRACE = timedelta(minutes=5)


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BUSINESS_TZ)


def plan(now: datetime, finished: set[date] = frozenset(), back: int = 7,  # type: ignore[assignment]
         month_end: int = 31) -> list[tuple[str, datetime, bool]]:
    return [(r.sweep_id, r.at, r.catch_up) for r in due_runs(
        now, SLOT, finished, lookback_days=back, month_end_lookback_days=month_end, grace=GRACE)]


def test_on_time_the_days_own_run_is_due_and_not_a_catch_up() -> None:
    now = sh(2026, 10, 25, 20, 0)
    earlier = {date(2026, 10, d) for d in range(1, 25)} | {date(2026, 9, 30)}
    assert plan(now, earlier) == [("auto-2026-10-25", now, False)]
    assert plan(now - timedelta(seconds=1), earlier) == []  # not yet


def test_missed_days_run_oldest_first_each_as_of_its_own_time() -> None:
    now = sh(2026, 10, 28, 9, 15)  # down from the 25th's morning until the 28th's
    done = {date(2026, 10, d) for d in range(1, 25)} | {date(2026, 9, 30)}
    assert plan(now, done) == [
        ("auto-2026-10-25", sh(2026, 10, 25, 20), True),
        ("auto-2026-10-26", sh(2026, 10, 26, 20), True),
        ("auto-2026-10-27", sh(2026, 10, 27, 20), True)]


def test_a_run_late_within_the_grace_is_not_a_catch_up() -> None:
    assert plan(sh(2026, 10, 25, 20, 4), {date(2026, 10, d) for d in range(1, 25)}
                | {date(2026, 9, 30)}) == [("auto-2026-10-25", sh(2026, 10, 25, 20), False)]


def test_the_bound_limits_how_far_back_but_never_skips_the_month_end() -> None:
    now = sh(2026, 11, 12, 21)  # down since October's last day, 12 days
    ids = [i for i, _, _ in plan(now, back=3)]
    assert ids == ["auto-2026-10-31", "auto-2026-11-09", "auto-2026-11-10", "auto-2026-11-11",
                   "auto-2026-11-12"]
    assert [i for i, _, _ in plan(now, back=3, month_end=3)] == ids[1:]
    assert [i for i, _, _ in plan(now, back=0, month_end=0)] == ["auto-2026-11-12"]


def test_the_slot_and_the_next_one() -> None:
    assert parse_slot("09:30") == time(9, 30)
    assert next_slot(sh(2026, 10, 25, 9, 29), time(9, 30)) == sh(2026, 10, 25, 9, 30)
    assert next_slot(sh(2026, 10, 25, 9, 30), time(9, 30)) == sh(2026, 10, 26, 9, 30)
    assert sweep_id_for(date(2026, 2, 28)) == "auto-2026-02-28"


@given(now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(BUSINESS_TZ)),
       back=st.integers(0, 20), month_end=st.integers(0, 40),
       done=st.sets(st.integers(0, 45)))
def test_the_plan_is_ordered_bounded_due_and_unfinished(
    now: datetime, back: int, month_end: int, done: set[int]
) -> None:
    today = business_date(now)
    finished = {today - timedelta(days=n) for n in done}
    runs = due_runs(now, SLOT, finished, lookback_days=back,
                    month_end_lookback_days=month_end, grace=GRACE)
    days = [r.day for r in runs]
    assert days == sorted(set(days))  # oldest first, each once
    considered = set(candidate_days(now, back, month_end))
    for r in runs:
        assert r.day in considered and r.day not in finished
        assert r.at <= now and r.at == datetime.combine(r.day, SLOT, BUSINESS_TZ)
        age = (today - r.day).days
        assert age <= back or (is_last_day_of_month(r.day) and age <= month_end)
        assert r.catch_up == (now - r.at > GRACE)
    # nothing due is left out: every unfinished day within the bound whose time has come
    for n in range(back + 1):
        day = today - timedelta(days=n)
        if day not in finished and datetime.combine(day, SLOT, BUSINESS_TZ) <= now:
            assert day in days
