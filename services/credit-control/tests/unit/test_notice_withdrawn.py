"""A suspension warning the notifier withdrew at send time (`cancelled`: its reason went — paid,
exempt, a promise to pay, the ladder restarted) is owed again, but it is not a failed
delivery: it never counts toward `max_warnings`, so it never makes the suspension an exception
(credit/domain/ladder.py WITHDRAWN, docs/rules.md "The notice reached the customer")."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.ladder import (
    DEFAULT_POLICY,
    FAILED,
    LOST,
    WITHDRAWN,
    Notice,
    notice_allows,
    warning_owed_again,
)
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.domain.rules import AccountFacts, Intent, ProductFacts, on_calendar

S, D = CreditState, DecisionType
OWING = AccountFacts(-12345, 12345, oldest_due_month=date(2026, 10, 1))
WARNED_ON, DEADLINE = date(2026, 11, 25), date(2026, 11, 30)


def intents(notice: Notice, day: date = DEADLINE) -> list[Intent]:
    facts = ProductFacts(ProductFamily.ADC, Tier.LOW, S.SUSPENSION_WARNED,
                         suspension_warned_on=WARNED_ON, suspension_deadline=DEADLINE,
                         notice=notice)
    return on_calendar(DEFAULT_RULES, OWING, facts, day)


def withdrawn(failures: int = 0, withdrawals: int = 1) -> Notice:
    return Notice(WITHDRAWN, None, None, notice_days=5, failures=failures,
                  reason="a promise to pay deferred the suspension", withdrawals=withdrawals)


def test_withdrawn_is_lost_but_not_failed() -> None:
    assert WITHDRAWN == "cancelled" and WITHDRAWN in LOST and WITHDRAWN not in FAILED


def test_three_withdrawn_in_a_row_are_warned_again_not_suspended() -> None:
    """Promised twice and broke it, red-listed and removed: three warnings withdrawn, none
    reached the customer. Before: "3 suspension warnings in a row cancelled", suspended."""
    notice = withdrawn(withdrawals=3)
    assert notice.exception(DEFAULT_POLICY) is None
    assert warning_owed_again(notice, DEFAULT_POLICY)
    assert not notice_allows(notice, DEFAULT_POLICY, DEADLINE)
    [intent] = intents(notice)
    assert intent.decision is D.SUSPENSION_WARNING
    assert intent.deadline == date(2026, 12, 5)  # today + the notice period: a date of its own
    assert intent.period.endswith("~3")  # named for every lost one: a new decision


def test_failures_before_a_withdrawal_keep_counting_and_name_the_next_warning() -> None:
    notice = withdrawn(failures=2, withdrawals=1)
    [intent] = intents(notice)
    assert intent.decision is D.SUSPENSION_WARNING and intent.period.endswith("~3")
    # A withdrawal neither counts nor breaks the streak: the next failure is the third.
    third = Notice("failed", WARNED_ON, None, notice_days=5, failures=3, reason="rejected",
                   withdrawals=1)
    [(suspend)] = intents(third)
    assert suspend.decision is D.SUSPEND
    assert suspend.reason.endswith("; exception: 3 suspension warnings in a row failed: rejected")


def test_a_withdrawn_warning_is_never_an_exception_even_past_the_limit() -> None:
    # Failures at the limit from before (a policy raised since, say): still owed again.
    notice = withdrawn(failures=5, withdrawals=1)
    assert notice.exception(DEFAULT_POLICY) is None
    assert [i.decision for i in intents(notice)] == [D.SUSPENSION_WARNING]


@given(st.integers(0, 6), st.integers(0, 6), st.sampled_from(["failed", WITHDRAWN]))
def test_only_failures_make_an_exception(failures: int, withdrawals: int, status: str) -> None:
    notice = Notice(status, None, None, notice_days=5, failures=failures, reason="x",
                    withdrawals=withdrawals)
    exception = notice.exception(DEFAULT_POLICY) is not None
    assert exception == (status == "failed" and failures >= DEFAULT_POLICY.max_warnings)
    assert warning_owed_again(notice, DEFAULT_POLICY) == (not exception)
    assert notice.losses == failures + withdrawals
