"""Which scheduled daily sweeps are due: the day's own, and every earlier one the scheduler
missed (credit-control was down at its time), oldest first. Pure: the caller says what time
it is and which days have a finished run.

A missed day is run as of its own scheduled moment under its own id (`auto-YYYY-MM-DD`), so
running it late decides what running it on time would have decided (every decision id is
deterministic and every step is state-guarded). The look-back is bounded: after a long
outage staff decide what to run. A month's last day (the month-end suspension, 月末停机)
is looked for further back, so an outage that outlasts the bound still never skips it.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from common.clock import BUSINESS_TZ, business_date, is_last_day_of_month

AUTO_PREFIX = "auto-"


@dataclass(frozen=True)
class ScheduledRun:
    day: date
    at: datetime  # the day's scheduled moment, the sweep's as_of
    catch_up: bool  # run later than its moment (past the grace): labelled as a catch-up

    @property
    def sweep_id(self) -> str:
        return sweep_id_for(self.day)


def sweep_id_for(day: date) -> str:
    return f"{AUTO_PREFIX}{day.isoformat()}"


def parse_slot(text: str) -> time:
    """'20:00' → 20:00 (Asia/Shanghai); the setting's pattern already checked the shape."""
    hour, minute = map(int, text.split(":"))
    return time(hour, minute)


def scheduled_at(day: date, slot: time) -> datetime:
    return datetime.combine(day, slot, BUSINESS_TZ)


def next_slot(now: datetime, slot: time) -> datetime:
    """The first scheduled moment strictly after `now`."""
    at = scheduled_at(business_date(now), slot)
    return at if at > now else scheduled_at(business_date(now) + timedelta(days=1), slot)


def candidate_days(now: datetime, lookback_days: int, month_end_lookback_days: int) -> list[date]:
    """Every day the planner may consider, oldest first (today included)."""
    today = business_date(now)
    back = max(lookback_days, month_end_lookback_days)
    return [today - timedelta(days=n) for n in range(back, -1, -1)]


def due_runs(now: datetime, slot: time, finished: Collection[date], *, lookback_days: int,
             month_end_lookback_days: int, grace: timedelta) -> list[ScheduledRun]:
    """The scheduled days whose moment has come (at ≤ now) and that have no finished run,
    oldest first: at most `lookback_days` back, a month's last day up to
    `month_end_lookback_days` back. A run later than `grace` after its moment is a catch-up."""
    today = business_date(now)
    runs = []
    for day in candidate_days(now, lookback_days, month_end_lookback_days):
        at = scheduled_at(day, slot)
        age = (today - day).days
        in_reach = age <= lookback_days or (is_last_day_of_month(day)
                                            and age <= month_end_lookback_days)
        if at <= now and in_reach and day not in finished:
            runs.append(ScheduledRun(day, at, catch_up=now - at > grace))
    return runs
