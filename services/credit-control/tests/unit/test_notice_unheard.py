"""A suspension warning never heard of (docs/rules.md "The notice reached the customer"): no
receipt, no outcome `unheard_after_days` after the deadline it named, it counts as lost —
warned again (`~n`), then an exception after `max_warnings` in a row (ladder.heard_as_of,
rules.on_calendar). Business days are parameters: the sweep's day, never the wall clock."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.ladder import (
    DEFAULT_POLICY,
    UNHEARD,
    Notice,
    NoticePolicy,
    heard_as_of,
    notice_allows,
    unheard_limit,
    warning_owed_again,
)
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.domain.rules import AccountFacts, Intent, ProductFacts, on_calendar

S, D = CreditState, DecisionType
OWING = AccountFacts(-12345, 12345, oldest_due_month=date(2026, 10, 1))
WARNED_ON, DEADLINE = date(2026, 11, 25), date(2026, 11, 30)
LIMIT = date(2026, 12, 2)  # the deadline + 2 days (the default)
SENT = Notice("sent", WARNED_ON, None, notice_days=5)


def warned(notice: Notice | None, deadline: date = DEADLINE) -> ProductFacts:
    return ProductFacts(ProductFamily.ADC, Tier.LOW, S.SUSPENSION_WARNED,
                        suspension_warned_on=WARNED_ON, suspension_deadline=deadline,
                        notice=notice)


def intents(notice: Notice | None, day: date, policy: NoticePolicy = DEFAULT_POLICY,
            deadline: date = DEADLINE) -> list[Intent]:
    return on_calendar(DEFAULT_RULES, OWING, warned(notice, deadline), day, policy)


def test_the_limit_is_the_deadline_plus_the_setting() -> None:
    assert unheard_limit(DEADLINE, DEFAULT_POLICY) == LIMIT
    assert unheard_limit(DEADLINE, NoticePolicy(unheard_after_days=0)) == DEADLINE


def test_just_before_the_limit_a_sent_warning_still_waits() -> None:
    day = LIMIT - timedelta(days=1)
    assert heard_as_of(SENT, DEADLINE, DEFAULT_POLICY, day) == SENT
    assert intents(SENT, day) == []  # neither suspended nor warned again


def test_at_the_limit_it_is_lost_and_warned_again_with_a_new_id() -> None:
    lost = heard_as_of(SENT, DEADLINE, DEFAULT_POLICY, LIMIT)
    assert lost is not None and lost.status == UNHEARD and lost.failures == 1
    assert lost.reason == ("never heard of by 2026-12-02, 2 days after its deadline "
                           "2026-11-30: sent, no delivery receipt")
    assert warning_owed_again(lost, DEFAULT_POLICY)
    assert not notice_allows(lost, DEFAULT_POLICY, LIMIT)
    [intent] = intents(SENT, LIMIT)
    assert intent.decision is D.SUSPENSION_WARNING
    # A new warning naming today + the notice period, its id counting the lost one.
    assert intent.deadline == date(2026, 12, 8) and intent.period.endswith("~1")  # 6 days


def test_after_the_limit_it_stays_lost_and_nothing_heard_at_all_says_so() -> None:
    later = LIMIT + timedelta(days=10)
    [intent] = intents(SENT, later)
    assert intent.decision is D.SUSPENSION_WARNING and intent.period.endswith("~1")
    nothing = heard_as_of(Notice(None, notice_days=5), DEADLINE, DEFAULT_POLICY, later)
    assert nothing is not None and nothing.reason.endswith(": no outcome from the notifier")


def test_a_delivered_receipt_arriving_late_still_counts() -> None:
    # Delivered on the 1st (after the deadline, before the limit) and read after the limit:
    # not lost; the suspension comes a notice period after it reached the customer, late.
    late = Notice("delivered", WARNED_ON, date(2026, 12, 1), notice_days=5)
    assert heard_as_of(late, DEADLINE, DEFAULT_POLICY, LIMIT) == late
    assert intents(late, LIMIT) == []  # the 1st + 5 days: not yet, and no new warning
    [intent] = intents(late, date(2026, 12, 6))
    assert intent.decision is D.SUSPEND
    assert intent.reason.endswith(
        "; late: suspension warning reached the customer on 2026-12-01")


def test_sent_counts_as_heard_where_receipts_are_not_expected() -> None:
    policy = NoticePolicy(requires_delivery=False)
    assert heard_as_of(SENT, DEADLINE, policy, LIMIT + timedelta(days=30)) == SENT
    [intent] = intents(SENT, LIMIT, policy)
    assert intent.decision is D.SUSPEND


def test_an_outcome_already_lost_is_not_counted_twice() -> None:
    failed = Notice("failed", WARNED_ON, None, notice_days=5, failures=1, reason="rejected")
    assert heard_as_of(failed, DEADLINE, DEFAULT_POLICY, LIMIT) == failed
    [intent] = intents(failed, LIMIT)
    assert intent.period.endswith("~1")


def test_after_max_warnings_unheard_in_a_row_the_suspension_is_an_exception() -> None:
    # Two lost before; the third (the current one, naming the 14th) unheard by the 16th.
    third = Notice("sent", date(2026, 12, 9), None, notice_days=5, failures=2)
    assert intents(third, date(2026, 12, 15), deadline=date(2026, 12, 14)) == []
    [intent] = intents(third, date(2026, 12, 16), deadline=date(2026, 12, 14))
    assert intent.decision is D.SUSPEND
    assert intent.reason.endswith(
        "; exception: 3 suspension warnings in a row unheard: never heard of by 2026-12-16, "
        "2 days after its deadline 2026-12-14: sent, no delivery receipt")


def test_a_smaller_setting_loses_the_warning_sooner() -> None:
    policy = NoticePolicy(unheard_after_days=0)
    [intent] = intents(SENT, DEADLINE, policy)
    assert intent.decision is D.SUSPENSION_WARNING and intent.period.endswith("~1")


@given(st.integers(-5, 40), st.integers(0, 10), st.sampled_from([None, "sent"]),
       st.integers(0, 5))
def test_unheard_exactly_from_the_limit_on(offset: int, after: int, status: str | None,
                                           failures: int) -> None:
    policy = NoticePolicy(unheard_after_days=after)
    notice = Notice(status, WARNED_ON if status else None, None, notice_days=5,
                    failures=failures)
    today = DEADLINE + timedelta(days=offset)
    read = heard_as_of(notice, DEADLINE, policy, today)
    assert read is not None
    assert (read.status == UNHEARD) == (offset >= after)
    assert read.failures == failures + (1 if offset >= after else 0)
    # Never both waiting for ever and not lost: lost, or the limit is still ahead.
    assert read.lost or today < unheard_limit(DEADLINE, policy)
