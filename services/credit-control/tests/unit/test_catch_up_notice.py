"""A caught-up suspension warning's notice counts from the day it is really sent
(docs/rules.md "Late suspension, not missed"): a catch-up sweep decides as of the missed day,
but the warning it decides names the later of the tier's suspension day and the real send day
+ the notice period, in the pure domain (`ladder.suspension_deadline`, `rules.on_calendar`)
and in the sweep plan the SQL runs (`rules.sweep_plan`). An on-time sweep is unchanged."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain import ladder as ladders
from credit_control.credit.domain import rules
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable

S, D, F, T = CreditState, DecisionType, ProductFamily, Tier
SEP, OCT_25, OCT_28, OCT_31 = date(2026, 9, 1), date(2026, 10, 25), date(2026, 10, 28), \
    date(2026, 10, 31)


def test_the_seeds_notice_period_in_october_is_six_days() -> None:
    # The 25th → the 31st: the period a caught-up warning must still give.
    assert DEFAULT_RULES.notice_days(F.ADC, T.LOW, OCT_25) == 6


def test_a_warning_caught_up_three_days_late_names_the_real_day_plus_the_notice() -> None:
    deadline = ladders.suspension_deadline(DEFAULT_RULES, F.ADC, T.LOW, SEP, OCT_25,
                                           sent_on=OCT_28)
    assert deadline == date(2026, 11, 3)  # the 28th + 6 days, not the 31st


@pytest.mark.parametrize("sent_on", [None, OCT_25, date(2026, 10, 24)])
def test_an_on_time_warning_still_names_the_suspension_day(sent_on: date | None) -> None:
    # Sent the day it is decided (or a clock behind it): the tier's day, as before.
    assert ladders.suspension_deadline(DEFAULT_RULES, F.ADC, T.LOW, SEP, OCT_25,
                                       sent_on=sent_on) == OCT_31


def test_a_small_catch_up_that_still_leaves_the_notice_keeps_the_suspension_day() -> None:
    # A fixed 3-day period: caught up on the 27th, 27 + 3 = the 30th < the 31st.
    rows = tuple(r.model_copy(update={"notice_days": 3})
                 if r.rule_id == "adc-suspend-low" else r for r in DEFAULT_RULES.rows)
    table = RuleTable(version=2, rows=rows)
    assert ladders.suspension_deadline(table, F.ADC, T.LOW, SEP, OCT_25,
                                       sent_on=date(2026, 10, 27)) == OCT_31


def _warning(sent_on: date | None) -> rules.Intent:
    facts = rules.AccountFacts(balance_fen=-5_000, amount_due_fen=5_000, credit_limit_fen=0,
                               oldest_due_month=SEP)
    product = rules.ProductFacts(family=F.ADC, tier=T.LOW, state=S.WARNED, warning_level=3)
    [intent] = [i for i in rules.on_calendar(DEFAULT_RULES, facts, product, OCT_25,
                                             sent_on=sent_on)
                if i.decision is D.SUSPENSION_WARNING]
    return intent


def test_on_calendar_names_the_real_day_for_a_caught_up_warning() -> None:
    on_time, caught_up = _warning(None), _warning(OCT_28)
    assert on_time.deadline == OCT_31
    assert caught_up.deadline == date(2026, 11, 3)
    # The deadline is part of the id: the sweep SQL computes the same one.
    assert caught_up.period.endswith(":2026-11-03")


def _sw_step(sent_on: date | None) -> rules.SweepStep:
    [step] = [s for s in rules.sweep_plan(DEFAULT_RULES, OCT_25, sent_on=sent_on)
              if s.row.decision is D.SUSPENSION_WARNING and s.row.family is F.ADC
              and s.row.tier is T.LOW]
    return step


def test_the_sweep_plan_of_a_catch_up_moves_the_notice_date_not_the_notice_period() -> None:
    on_time, caught_up = _sw_step(None), _sw_step(OCT_28)
    assert (on_time.notice_date, on_time.notice_days) == (OCT_31, 6)
    # The SQL names GREATEST(suspension day, notice_date) and records notice_days: 6 days of
    # notice from the delivery, whenever that is.
    assert (caught_up.notice_date, caught_up.notice_days) == (date(2026, 11, 3), 6)
    assert caught_up.today == OCT_25  # still the missed day's sweep


def test_an_on_time_plan_is_unchanged_step_for_step() -> None:
    assert rules.sweep_plan(DEFAULT_RULES, OCT_25) == rules.sweep_plan(DEFAULT_RULES, OCT_25,
                                                                        sent_on=OCT_25)


@given(st.dates(date(2024, 1, 1), date(2030, 12, 31)), st.integers(0, 40))
def test_a_caught_up_warning_never_gives_less_than_the_notice_period(missed: date,
                                                                     late: int) -> None:
    sent = missed + timedelta(days=late)
    oldest = (missed.replace(day=1) - timedelta(days=1)).replace(day=1)
    deadline = ladders.suspension_deadline(DEFAULT_RULES, F.ADC, T.LOW, oldest, missed,
                                           sent_on=sent)
    notice = DEFAULT_RULES.notice_days(F.ADC, T.LOW, missed)
    assert deadline >= sent + timedelta(days=notice)
    assert deadline >= ladders.scheduled_suspension(DEFAULT_RULES, F.ADC, T.LOW, oldest)
    # and never more than needed: one of the two bounds is the deadline
    assert deadline in (sent + timedelta(days=notice),
                        ladders.scheduled_suspension(DEFAULT_RULES, F.ADC, T.LOW, oldest))
