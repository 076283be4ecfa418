"""A suspension warning's notice counts from the day its SMS can first leave (docs/rules.md
"Notice before suspension"; `ladder.first_sending_day`): the notifier holds a customer's SMS
decided outside the customer sending window (08:00-21:00 Asia/Shanghai by default, one
constant both services default to) until it next opens, so one decided at or after 21:00
leaves the next day and names that day + the notice period when that is later than the
tier's day; one decided before 08:00 leaves the same day. The warning then names a day on
which the sweep can suspend (`Notice.suspend_from`: delivered + the notice period), never
one on which nothing happens (QA pass 37: decided at 23:00 on 02-25 of a leap year it named
02-29, the sweep suspended on 03-01)."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.clock import BUSINESS_TZ
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from common.sending_hours import CUSTOMER_SENDING_HOURS, DEFAULT_CUSTOMER_WINDOW, SendingWindow
from credit_control.config import Settings
from credit_control.credit.domain import ladder as ladders
from credit_control.credit.domain import rules
from credit_control.credit.domain.ladder import DEFAULT_POLICY, Notice, first_sending_day
from credit_control.credit.domain.rule_table import DEFAULT_RULES

S, D, F, T = CreditState, DecisionType, ProductFamily, Tier
W = DEFAULT_CUSTOMER_WINDOW
LEAP, JAN = 2028, date(2028, 1, 1)


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), BUSINESS_TZ)


@pytest.mark.parametrize(("hh", "mm", "ss", "leaves"), [
    (0, 0, 0, 0), (7, 0, 0, 0), (7, 59, 59, 0), (8, 0, 0, 0), (12, 0, 0, 0),
    (20, 59, 59, 0), (21, 0, 0, 1), (23, 0, 0, 1), (23, 59, 59, 1)])
def test_the_day_an_sms_decided_at_a_business_moment_can_first_leave(
        hh: int, mm: int, ss: int, leaves: int) -> None:
    day = date(2028, 2, 25)
    assert first_sending_day(at(day, hh, mm, ss), W) == day + timedelta(days=leaves)


@pytest.mark.parametrize(("decided", "leaves"), [
    (at(date(2028, 2, 28), 23), date(2028, 2, 29)),  # a leap February
    (at(date(2027, 2, 28), 21), date(2027, 3, 1)),
    (at(date(2028, 2, 29), 21, 30), date(2028, 3, 1)),
    (at(date(2027, 12, 31), 23), date(2028, 1, 1)),  # the year ends
    (at(date(2027, 4, 30), 20, 59), date(2027, 4, 30)),
    # business time, whatever the zone the moment is written in: 15:00 UTC is 23:00 there
    (datetime(2028, 2, 25, 15, 0, tzinfo=UTC), date(2028, 2, 26)),
    (datetime(2028, 2, 24, 23, 30, tzinfo=UTC), date(2028, 2, 25)),  # 07:30 on the 25th
])
def test_month_and_year_ends(decided: datetime, leaves: date) -> None:
    assert first_sending_day(decided, W) == leaves


def test_other_windows_an_always_open_one_and_one_over_midnight() -> None:
    day = date(2028, 2, 25)
    always = SendingWindow.parse("00:00-24:00")
    assert first_sending_day(at(day, 23, 59), always) == day
    night = SendingWindow.parse("22:00-06:00")  # over midnight
    assert first_sending_day(at(day, 7), night) == day  # opens at 22:00 that day
    assert first_sending_day(at(day, 23), night) == day
    assert first_sending_day(at(day, 5), night) == day
    late = SendingWindow.parse("09:30-20:00")
    assert first_sending_day(at(day, 20), late) == day + timedelta(days=1)
    assert first_sending_day(at(day, 9, 29), late) == day


def test_a_catch_up_leaves_when_it_really_runs() -> None:
    missed = at(date(2026, 10, 25), 20)
    assert first_sending_day(missed, W, at(date(2026, 10, 28), 10)) == date(2026, 10, 28)
    assert first_sending_day(missed, W, at(date(2026, 10, 28), 22)) == date(2026, 10, 29)
    # a real moment before the decided one (a clock behind) changes nothing
    assert first_sending_day(missed, W, at(date(2026, 10, 25), 10)) == date(2026, 10, 25)


def _deadline(decided: datetime, family: F = F.ADC, tier: T = T.LOW,
              oldest: date = JAN) -> date:
    today = decided.astimezone(BUSINESS_TZ).date()
    return ladders.suspension_deadline(DEFAULT_RULES, family, tier, oldest, today,
                                       first_sending_day(decided, W))


def test_qa_pass_37_a_warning_decided_at_23_names_the_day_after_the_hold_plus_the_notice() -> None:
    feb_25 = date(LEAP, 2, 25)
    assert DEFAULT_RULES.notice_days(F.ADC, T.LOW, feb_25) == 4  # 25 → 29
    assert _deadline(at(feb_25, 23)) == date(LEAP, 3, 1)  # 02-26 + 4, not 02-29
    assert _deadline(at(feb_25, 21)) == date(LEAP, 3, 1)
    assert _deadline(at(feb_25, 20, 59)) == date(LEAP, 2, 29)  # leaves the same evening
    assert _deadline(at(feb_25, 7)) == date(LEAP, 2, 29)  # leaves at 08:00 the same day
    # a year that is not a leap year: 3 days' notice, 02-26 + 3
    assert _deadline(at(date(2027, 2, 25), 23), oldest=date(2027, 1, 1)) == date(2027, 3, 1)
    assert _deadline(at(date(2027, 2, 25), 20), oldest=date(2027, 1, 1)) == date(2027, 2, 28)


def test_a_warning_decided_before_its_day_still_names_the_tiers_day() -> None:
    # Decided late in the evening a few days before the suspension day: the hold still
    # leaves the notice period before it (the seed: the 20th's evening, 8 days ahead).
    assert _deadline(at(date(LEAP, 3, 20), 23), oldest=date(LEAP, 2, 1)) == date(LEAP, 3, 31)


@given(st.dates(date(2026, 1, 1), date(2030, 12, 31)), st.integers(0, 23), st.integers(0, 59),
       st.sampled_from(list(T)), st.sampled_from([F.ADC, F.MAS]))
def test_the_named_day_is_one_the_sweep_can_suspend_on(
        day: date, hh: int, mm: int, tier: T, family: F) -> None:
    """Delivered the day it can first leave, the warning's notice (`Notice.suspend_from`)
    allows the suspension on the day it names: the SMS never names a day on which nothing
    happens."""
    decided = at(day, hh, mm)
    oldest = (day.replace(day=1) - timedelta(days=1)).replace(day=1)  # the month before
    named = _deadline(decided, family, tier, oldest)
    days = max(1, DEFAULT_RULES.notice_days(family, tier, day))
    notice = Notice("delivered", first_sending_day(decided, W), first_sending_day(decided, W),
                    notice_days=days)
    assert notice.suspend_from(DEFAULT_POLICY) is not None
    assert notice.suspend_from(DEFAULT_POLICY) <= named
    assert ladders.notice_allows(notice, DEFAULT_POLICY, named)


def _warning(decided: datetime) -> rules.Intent:
    today = decided.astimezone(BUSINESS_TZ).date()
    facts = rules.AccountFacts(balance_fen=-8_800, amount_due_fen=8_800, credit_limit_fen=0,
                               oldest_due_month=JAN)
    product = rules.ProductFacts(family=F.ADC, tier=T.LOW, state=S.WARNED, warning_level=1)
    [intent] = [i for i in rules.on_calendar(DEFAULT_RULES, facts, product, today,
                                             sent_on=first_sending_day(decided, W))
                if i.decision is D.SUSPENSION_WARNING]
    return intent


def test_on_calendar_and_the_sweep_plan_name_the_same_day() -> None:
    for decided, named in ((at(date(LEAP, 2, 25), 23), date(LEAP, 3, 1)),
                           (at(date(LEAP, 2, 25), 10), date(LEAP, 2, 29))):
        intent = _warning(decided)
        assert intent.deadline == named
        assert intent.period.endswith(f":{named}")
        today = decided.date()
        [step] = [s for s in rules.sweep_plan(DEFAULT_RULES, today,
                                              sent_on=first_sending_day(decided, W))
                  if s.row.rule_id == "adc-suspension-warning-low"]
        # the SQL names GREATEST(the tier's day, notice_date) (sweep_sql._sw_deadline_date)
        assert step.notice_date is not None and step.suspend_row is not None
        assert max(step.suspend_row.scheduled(JAN), step.notice_date) == named


def test_a_reversal_at_night_names_what_a_warning_decided_then_would() -> None:
    from common.contracts.billing import BalanceCause
    decided = at(date(LEAP, 2, 25), 23)
    facts = rules.AccountFacts(balance_fen=-8_800, amount_due_fen=8_800, credit_limit_fen=0,
                               oldest_due_month=JAN, cause=BalanceCause.REVERSAL)
    product = rules.ProductFacts(family=F.ADC, tier=T.LOW, state=S.NORMAL)
    intent = rules.on_balance(DEFAULT_RULES, facts, product, decided.date(), "seq:1",
                              sent_on=first_sending_day(decided, W))
    assert intent is not None and intent.decision is D.PAYMENT_REVERSED
    assert intent.deadline == date(LEAP, 3, 1) == _warning(decided).deadline


def test_credit_control_and_the_notifier_default_to_one_window() -> None:
    from notifier.config import Settings as NotifierSettings
    assert Settings().customer_sending_hours == CUSTOMER_SENDING_HOURS
    assert NotifierSettings().customer_sending_hours == CUSTOMER_SENDING_HOURS
    assert Settings().sending_window == W == SendingWindow.parse("08:00-21:00")
    assert Settings(customer_sending_hours="07:30-22:00").sending_window == SendingWindow(
        450, 1320)
    with pytest.raises(ValueError):
        Settings(customer_sending_hours="8-21")
