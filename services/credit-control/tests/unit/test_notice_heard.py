"""What credit-control records of a suspension warning's SMS, as the pure domain says it
(credit/domain/ladder.py `Notice.heard`, `next_notice`): the reference the invariant checker's
replay follows; the consumer's SQL (adapters/notice_sql.py) and the sweep's (sweep_sql.py)
write the same on the product's row."""

from datetime import date

from credit_control.credit.domain.ladder import DEFAULT_POLICY, Notice, next_notice

D1, D2 = date(2026, 11, 25), date(2026, 11, 26)
DEADLINE = date(2026, 11, 30)


def test_sent_then_delivered_fills_in_what_is_not_known_yet() -> None:
    n = Notice(notice_days=5).heard("sent", D1).heard("delivered", D2)
    assert (n.status, n.sent_on, n.delivered_on) == ("delivered", D1, D2)
    assert Notice().heard("delivered", D2).sent_on == D2  # no `sent` heard: delivered is sent
    assert Notice().heard("sent", D1).heard("sent", D2).sent_on == D1


def test_final_outcomes_are_final() -> None:
    delivered = Notice().heard("delivered", D1)
    assert delivered.heard("failed", D2, "late UNDELIV") == delivered
    failed = Notice().heard("sent", D1).heard("failed", D1, "UNDELIV")
    assert (failed.status, failed.failures, failed.withdrawals, failed.reason) == (
        "failed", 1, 0, "UNDELIV")
    assert failed.heard("delivered", D2) == failed
    assert failed.heard("cancelled", D2) == failed


def test_withdrawn_counts_apart_from_failed_and_only_a_failure_is_permanent() -> None:
    withdrawn = Notice(failures=2).heard("cancelled", D1, "exempt", permanent=True)
    assert (withdrawn.status, withdrawn.failures, withdrawn.withdrawals, withdrawn.permanent) == (
        "cancelled", 2, 1, False)
    assert Notice().heard("failed", D1, "no number", permanent=True).permanent


def test_a_new_warning_carries_the_lost_ones_of_its_ladder_only() -> None:
    lost = Notice(failures=1, withdrawals=1).heard("cancelled", D1)
    assert next_notice(lost, DEADLINE, DEFAULT_POLICY, DEADLINE, 6) == Notice(
        notice_days=6, failures=1, withdrawals=2)
    # no suspension warning on the ladder (it restarted): the counts start afresh
    assert next_notice(lost, None, DEFAULT_POLICY, DEADLINE, 6) == Notice(notice_days=6)
    # delivered (an upgrade voided it): afresh too
    assert next_notice(Notice(failures=2).heard("delivered", D1), DEADLINE, DEFAULT_POLICY,
                       DEADLINE, 6) == Notice(notice_days=6)
    assert next_notice(None, None, DEFAULT_POLICY, DEADLINE, 6) == Notice(notice_days=6)


def test_an_unheard_warning_counts_as_one_more_failure_from_its_limit() -> None:
    sent = Notice(failures=1).heard("sent", D1)
    assert next_notice(sent, DEADLINE, DEFAULT_POLICY, date(2026, 12, 1), 6).failures == 0
    assert next_notice(sent, DEADLINE, DEFAULT_POLICY, date(2026, 12, 2), 6) == Notice(
        notice_days=6, failures=2)
