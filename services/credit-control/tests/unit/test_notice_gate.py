"""Notice before suspension, the delivery half (credit/domain/ladder.py Notice, rules.on_calendar):
the warning's SMS must have reached the customer a notice period before the suspension."""

from datetime import date

from common.contracts.bounds import TEXT_MAX
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.ladder import (
    DEFAULT_POLICY,
    NOTICE_REASON_MAX,
    Notice,
    NoticePolicy,
)
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.domain.rules import AccountFacts, ProductFacts, on_calendar

S, D = CreditState, DecisionType
OWING = AccountFacts(-12345, 12345, oldest_due_month=date(2026, 10, 1))
WARNED_ON, DEADLINE = date(2026, 11, 25), date(2026, 11, 30)


def warned(notice: Notice | None) -> ProductFacts:
    return ProductFacts(ProductFamily.ADC, Tier.LOW, S.SUSPENSION_WARNED,
                        suspension_warned_on=WARNED_ON, suspension_deadline=DEADLINE,
                        notice=notice)


def decided(notice: Notice | None, day: date,
            policy: NoticePolicy = DEFAULT_POLICY) -> list[tuple[D, str]]:
    return [(i.decision, i.reason) for i in on_calendar(DEFAULT_RULES, OWING, warned(notice),
                                                         day, policy)]


def test_delivered_on_the_25th_suspends_on_the_last_day() -> None:
    notice = Notice("delivered", WARNED_ON, WARNED_ON, notice_days=5)
    [(decision, reason)] = decided(notice, DEADLINE)
    assert decision is D.SUSPEND and "late" not in reason


def test_sent_but_not_delivered_waits_unless_receipts_are_not_expected() -> None:
    notice = Notice("sent", WARNED_ON, None, notice_days=5)
    assert decided(notice, DEADLINE) == []
    assert [d for d, _ in decided(notice, DEADLINE, NoticePolicy(requires_delivery=False))] \
        == [D.SUSPEND]


def test_delivered_a_day_late_suspends_a_notice_period_after_it_as_late() -> None:
    notice = Notice("delivered", WARNED_ON, date(2026, 11, 26), notice_days=5)
    assert decided(notice, DEADLINE) == []
    [(decision, reason)] = decided(notice, date(2026, 12, 1))
    assert decision is D.SUSPEND
    assert reason.endswith("; late: suspension warning reached the customer on 2026-11-26")


def test_a_lost_warning_is_owed_again_with_a_new_id() -> None:
    lost = Notice("failed", WARNED_ON, None, notice_days=5, failures=1, reason="rejected")
    [intent] = on_calendar(DEFAULT_RULES, OWING, warned(lost), DEADLINE)
    assert intent.decision is D.SUSPENSION_WARNING
    assert intent.deadline == date(2026, 12, 5) and intent.period.endswith("~1")


def test_undeliverable_or_too_many_lost_is_an_exception_at_the_deadline() -> None:
    never = Notice("failed", None, None, notice_days=5, permanent=True, failures=1,
                   reason="no valid phone")
    [(decision, reason)] = decided(never, DEADLINE)
    assert decision is D.SUSPEND
    assert reason.endswith("; exception: suspension warning undeliverable: no valid phone")
    assert decided(never, date(2026, 11, 29)) == []  # not before the deadline it named
    thrice = Notice("failed", None, None, notice_days=5, failures=3, reason="rejected")
    [(decision, reason)] = decided(thrice, DEADLINE)
    assert reason.endswith("; exception: 3 suspension warnings in a row failed: rejected")


def test_nothing_heard_yet_waits_until_the_unheard_limit() -> None:
    # The warning named the 30th: still waiting on the 1st, lost from the 2nd (2 days after).
    assert decided(Notice(None, notice_days=5), date(2026, 12, 1)) == []
    [intent] = on_calendar(DEFAULT_RULES, OWING, warned(Notice(None, notice_days=5)),
                           date(2026, 12, 2))
    assert intent.decision is D.SUSPENSION_WARNING and intent.period.endswith("~1")


def test_a_late_warning_delivered_the_day_it_was_decided_is_late_once() -> None:
    late = ProductFacts(ProductFamily.ADC, Tier.LOW, S.SUSPENSION_WARNED,
                        suspension_warned_on=date(2026, 12, 2),
                        suspension_deadline=date(2026, 12, 8),
                        notice=Notice("delivered", date(2026, 12, 2), date(2026, 12, 2),
                                      notice_days=6))
    [intent] = on_calendar(DEFAULT_RULES, OWING, late, date(2026, 12, 8))
    assert intent.reason.endswith("; late: suspension warning of 2026-12-02 named 2026-12-08")


def test_an_exception_suspension_quoting_the_longest_kept_reason_fits_the_contract() -> None:
    """The notifier's reason may be 4,000 characters (its contacts' provider errors); kept to
    NOTICE_REASON_MAX, the suspension that quotes it stays within the contracts' text bound."""
    longest = Notice("failed", WARNED_ON, None, notice_days=5, permanent=True,
                     failures=99, reason="供应商错误" * NOTICE_REASON_MAX)
    kept = Notice("failed", WARNED_ON, None, notice_days=5, permanent=True, failures=99,
                  reason=longest.reason[:NOTICE_REASON_MAX])
    [(decision, reason)] = decided(kept, date(2026, 12, 1))
    assert decision is D.SUSPEND and "exception: suspension warning undeliverable" in reason
    assert len(reason) <= NOTICE_REASON_MAX + 500 < TEXT_MAX
