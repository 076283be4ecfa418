"""notifier.domain.recheck, quiet_hours.release_at and pacing: the pure rules of the send-time
re-check (what makes a waiting message stale), quiet hours by business time, the release
budget."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.clock import BUSINESS_TZ
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditEvent,
    CreditState,
    CreditStateChanged,
    DecisionType,
    SuspensionDeferred,
)
from notifier.domain.pacing import UNLIMITED, TokenBucket
from notifier.domain.quiet_hours import SendingWindow, release_at
from notifier.domain.recheck import (
    EXEMPT_REASON,
    KIND_OF,
    ProductFacts,
    Queued,
    Recheck,
    cancel_on_receipt,
    cancel_reason,
    fold,
)
from notifier.domain.templates import TemplateName
from notifier.service_layer.receiving import _deferral

from .test_notifier_notices import CTX, collected

S, T, R = CreditState, TemplateName, Recheck
AT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
CLEARED = "arrears cleared since the decision: the product is back to normal"
RESTORED = "restored since the decision"
SUSPENDED_SINCE = "superseded: the product was suspended since the decision"
AGAIN = "suspended again since the restore"


def facts(**kw: object) -> ProductFacts:
    base: dict[str, object] = {"state": S.WARNED, "event_seq": 10, "as_of": AT,
                               "decision_id": "d"}
    return ProductFacts(**{**base, **kw})


def test_every_template_has_a_recheck_kind() -> None:
    assert set(KIND_OF) == set(TemplateName)


@pytest.mark.parametrize(("template", "seq", "known", "reason"), [
    # Nothing heard since the message was made: it goes.
    (T.BILL_NOTICE, 5, None, None),
    (T.BILL_NOTICE, 5, facts(), None),
    # Paid: every arrears reminder and the reversal notice are stale.
    (T.BILL_NOTICE, 5, facts(normal_seq=7), CLEARED),
    (T.WARNING_2, 5, facts(normal_seq=7), CLEARED),
    (T.SUSPENSION_WARNING, 5, facts(normal_seq=7), CLEARED),
    (T.PAYMENT_REVERSED_NOTICE, 5, facts(normal_seq=7), CLEARED),
    # A clearing *before* the message (an earlier cycle) does not touch it.
    (T.WARNING_1, 5, facts(normal_seq=4), None),
    (T.WARNING_1, 5, facts(normal_seq=5), None),
    # Suspended since: the suspension notice says what holds now.
    (T.SUSPENSION_WARNING, 5, facts(suspended_seq=6), SUSPENDED_SINCE),
    (T.WARNING_3, 5, facts(suspended_seq=6), SUSPENDED_SINCE),
    # Suspension notices A and B and the pre-cancel notice: stale once restored.
    (T.SUSPENSION_NOTICE_CONTACT, 5, facts(normal_seq=6), RESTORED),
    (T.SUSPENSION_NOTICE_MANAGER, 5, facts(normal_seq=6), RESTORED),
    (T.SUSPENSION_NOTICE_CONTACT, 5, facts(suspended_seq=5), None),
    (T.PRE_CANCEL_NOTICE, 5, facts(normal_seq=9), RESTORED),
    # The restore notice: stale once suspended again; a later warning does not touch it.
    (T.RESTORE_NOTICE, 5, facts(suspended_seq=8), AGAIN),
    (T.RESTORE_NOTICE, 5, facts(normal_seq=5, cycle_seq=7), None),
    # A deduction already made stays true.
    (T.DEDUCTION_NOTICE, 5, facts(normal_seq=9, suspended_seq=8), None),
    # Exempt: no suspension warning.
    (T.SUSPENSION_WARNING, 5, facts(suspension_exempt=True), EXEMPT_REASON),
    (T.WARNING_3_EXEMPT, 5, facts(suspension_exempt=True), None),
    # A warning_3 still threatening: rendered as warning_3_exempt when its product became
    # exempt, so only one that could not be (no stored fields) meets this, as it leaves.
    (T.WARNING_3, 5, facts(suspension_exempt=True), EXEMPT_REASON),
    (T.WARNING_2, 5, facts(suspension_exempt=True), None),
    # The first rule that applies gives the reason.
    (T.SUSPENSION_WARNING, 5, facts(normal_seq=7, suspension_exempt=True), CLEARED),
], ids=str)
def test_cancel_reason(
    template: TemplateName, seq: int, known: ProductFacts | None, reason: str | None
) -> None:
    assert cancel_reason(Queued(template, seq), known) == reason


@pytest.mark.parametrize(("template", "newer", "reason"), [
    (T.BILL_NOTICE, ((R.REMINDER, T.WARNING_1),), "superseded by a newer notice: warning_1"),
    (T.WARNING_3, ((R.REVERSAL, T.PAYMENT_REVERSED_NOTICE),),
     "superseded by a newer notice: payment_reversed_notice"),
    # A ladder reminder does not replace the notice that says why the product owes again.
    (T.PAYMENT_REVERSED_NOTICE, ((R.REMINDER, T.SUSPENSION_WARNING),), None),
    (T.PAYMENT_REVERSED_NOTICE, ((R.REVERSAL, T.PAYMENT_REVERSED_NOTICE),),
     "superseded by a newer notice: payment_reversed_notice"),
    # Facts and status notices supersede no reminder.
    (T.WARNING_1, ((R.FACT, T.DEDUCTION_NOTICE),), None),
    (T.RESTORE_NOTICE, ((R.REMINDER, T.BILL_NOTICE),), None),
], ids=str)
def test_a_newer_notice_supersedes(
    template: TemplateName, newer: tuple[tuple[Recheck, TemplateName], ...], reason: str | None
) -> None:
    assert cancel_reason(Queued(template, 5, newer), facts()) == reason


def decided(before: CreditState, after: CreditState,
            kind: DecisionType = DecisionType.WARNING, exempt: bool = False) -> CreditEvent:
    ctx = msgspec.structs.replace(CTX, suspension_exempt=exempt, bill_month="2026-10")
    return CreditDecisionMade(
        decision_id="d", account_id="A", product_id="P", decision=kind, rule_id="r",
        reason="why", state_before=before, state_after=after, as_of=AT, context=ctx)


def changed(before: CreditState, after: CreditState) -> CreditEvent:
    return CreditStateChanged(account_id="A", product_id="P", decision_id="d",
                              state_before=before, state_after=after, as_of=AT, context=CTX)


def test_fold_records_the_moments_that_make_messages_stale() -> None:
    f = fold(None, decided(S.NORMAL, S.WARNED), 1)
    assert (f.state, f.event_seq, f.cycle_seq, f.normal_seq, f.bill_month) == (
        S.WARNED, 1, 1, None, "2026-10")
    f = fold(f, decided(S.WARNED, S.SUSPEND_REQUESTED, DecisionType.SUSPEND), 2)
    assert f.suspended_seq is None  # requested is not confirmed
    f = fold(f, changed(S.SUSPEND_REQUESTED, S.SUSPENDED), 3)
    assert (f.state, f.suspended_seq) == (S.SUSPENDED, 3)
    f = fold(f, changed(S.SUSPENDED, S.NORMAL), 4)
    assert (f.state, f.normal_seq, f.suspended_seq, f.cycle_seq) == (S.NORMAL, 4, 3, 1)
    # A deduction on a normal product is not a return to normal.
    f = fold(f, decided(S.NORMAL, S.NORMAL, DecisionType.DEDUCTION), 5)
    assert (f.normal_seq, f.cycle_seq, f.event_seq) == (4, 1, 5)
    f = fold(f, decided(S.NORMAL, S.WARNED, exempt=True), 6)
    assert (f.cycle_seq, f.suspension_exempt) == (6, True)


def test_a_suspension_warning_that_stopped_counting_is_not_sent() -> None:
    """credit-control's reconcile: suspension_warned → warned with no decision (the oldest
    owing month paid, the ladder restarted; an upgrade voided the warning). A suspension
    warning made before it names a date no suspension will follow; the other reminders
    still hold, and a suspension warning made after it names its own date."""
    f = fold(None, decided(S.WARNED, S.SUSPENSION_WARNED, DecisionType.SUSPENSION_WARNING), 1)
    assert f.withdrawn_seq is None
    f = fold(f, changed(S.SUSPENSION_WARNED, S.WARNED), 2)
    assert f.withdrawn_seq == 2
    reason = cancel_reason(Queued(T.SUSPENSION_WARNING, 1), f)
    assert reason is not None and reason.startswith("the suspension warning stopped counting")
    assert cancel_reason(Queued(T.WARNING_2, 1), f) is None
    assert cancel_reason(Queued(T.SUSPENSION_WARNING, 3), f) is None
    # A suspension confirmed is not a warning withdrawn.
    g = fold(fold(None, decided(S.SUSPENSION_WARNED, S.SUSPEND_REQUESTED,
                                DecisionType.SUSPEND), 4), changed(S.SUSPEND_REQUESTED,
                                                                   S.SUSPENDED), 5)
    assert g.withdrawn_seq is None


def test_a_promise_to_pay_withdraws_the_suspension_warnings_made_before_it() -> None:
    """credit.suspension_deferred (a promise to pay recorded, QA pass 31): into the batch's
    facts of the product when it has some, else onto its stored facts; either way a
    suspension warning made before it is cancelled and one made after it is not."""
    deferral = SuspensionDeferred(account_id="A", product_id="P", promise_id="pr",
                                  as_of=AT, promised_date=AT.date() + timedelta(days=9))
    f = fold(None, decided(S.WARNED, S.SUSPENSION_WARNED, DecisionType.SUSPENSION_WARNING), 1)
    facts, deferred = {"P": ("A", f)}, dict[str, int]()
    _deferral(facts, deferred, deferral, 2)
    assert (facts["P"][1].withdrawn_seq, deferred) == (2, {})
    reason = cancel_reason(Queued(T.SUSPENSION_WARNING, 1), facts["P"][1])
    assert reason is not None and "a promise to pay deferred the suspension" in reason
    assert cancel_reason(Queued(T.SUSPENSION_WARNING, 3), facts["P"][1]) is None
    assert cancel_reason(Queued(T.WARNING_3, 1), facts["P"][1]) is None
    elsewhere: dict[str, tuple[str, ProductFacts]] = {}
    _deferral(elsewhere, deferred, deferral, 7)
    assert (elsewhere, deferred) == ({}, {"P": 7})


def test_cancel_on_receipt_only_stops_a_threat_to_an_exempt_product() -> None:
    exempt = decided(S.WARNED, S.SUSPENSION_WARNED, DecisionType.SUSPENSION_WARNING, True)
    plain = decided(S.WARNED, S.SUSPENSION_WARNED, DecisionType.SUSPENSION_WARNING)
    assert cancel_on_receipt(T.SUSPENSION_WARNING, exempt) == EXEMPT_REASON
    assert cancel_on_receipt(T.SUSPENSION_WARNING, plain) is None
    assert cancel_on_receipt(T.WARNING_3_EXEMPT, exempt) is None
    back = changed(S.SUSPENDED, S.NORMAL)
    assert cancel_on_receipt(T.RESTORE_NOTICE, back) is None
    # What a deduction collected is a fact, for an exempt product too.
    exempt_ctx = msgspec.structs.replace(CTX, suspension_exempt=True)
    assert cancel_on_receipt(T.DEDUCTION_NOTICE, collected(ctx=exempt_ctx)) is None


@given(st.lists(st.sampled_from([S.NORMAL, S.WARNED, S.SUSPENSION_WARNED, S.SUSPEND_REQUESTED,
                                 S.SUSPENDED, S.RESTORE_REQUESTED]), min_size=1, max_size=12),
       st.sampled_from(list(TemplateName)))
def test_a_message_is_stale_only_after_a_later_event(
    states: list[CreditState], template: TemplateName
) -> None:
    """Whatever the history, a message made by the newest event is never stale by a "since"
    rule (only the exempt rule, which reads the product's own state), and the seqs the facts
    record are never newer than the newest event."""
    f: ProductFacts | None = None
    before = S.NORMAL
    for seq, after in enumerate(states, start=1):
        f = fold(f, changed(before, after), seq)
        before = after
    assert f is not None
    assert all(s is None or s <= f.event_seq for s in (f.normal_seq, f.suspended_seq,
                                                         f.cycle_seq))
    assert cancel_reason(Queued(template, f.event_seq), f) is None


# --- quiet hours by business time -------------------------------------------------------

DAY = SendingWindow.parse("08:00-21:00")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BUSINESS_TZ)


@pytest.mark.parametrize(("decided_at", "received", "expected"), [
    # In production business time is the wall clock.
    ("2026-11-25 10:00", "2026-11-25 10:00", None),
    ("2026-11-25 22:00", "2026-11-25 22:00", "2026-11-26 08:00"),
    ("2026-11-25 07:00", "2026-11-25 07:00", "2026-11-25 08:00"),
    # Decided inside the window, received after closing (a slow consumer): goes now.
    ("2026-11-25 20:59", "2026-11-25 21:30", None),
    # Decided during the day, received at night (a back-dated run in the evening): goes now.
    ("2026-11-02 10:00", "2026-11-25 23:00", None),
    # Decided at business 22:00 long ago: its opening is past on the wall clock: now.
    ("2026-11-02 22:00", "2026-11-25 10:00", None),
    ("2026-11-25 22:00", "2026-11-26 09:00", None),
    # Decided at 22:00 and received 23:30: waits till 08:00, not longer.
    ("2026-11-25 22:00", "2026-11-25 23:30", "2026-11-26 08:00"),
    # Business time ahead of the wall clock (a simulated future): no longer than the quiet
    # hours had left at the decision (10 hours).
    ("2200-11-25 22:00", "2026-11-25 10:00", "2026-11-25 20:00"),
])
def test_release_at_follows_the_business_time_of_the_decision(
    decided_at: str, received: str, expected: str | None
) -> None:
    got = release_at(DAY, local(decided_at), local(received))
    assert got == (None if expected is None else local(expected))


def test_release_never_holds_a_manager_s_notice() -> None:
    always = SendingWindow.parse("00:00-24:00")
    assert release_at(always, local("2026-11-25 23:00"), local("2026-11-25 23:00")) is None


# --- pacing ------------------------------------------------------------------------------

def test_token_bucket_lets_a_burst_then_the_rate() -> None:
    t0 = local("2026-11-26 08:00")
    bucket = TokenBucket(rate_per_s=5, burst=10)
    assert bucket.available(t0) == 10
    bucket.take(10, t0)
    assert bucket.available(t0) == 0
    assert bucket.available(t0 + timedelta(seconds=0.1)) == 0
    assert bucket.available(t0 + timedelta(seconds=1)) == 5
    bucket.take(3, t0 + timedelta(seconds=1))
    assert bucket.available(t0 + timedelta(seconds=1)) == 2
    assert bucket.available(t0 + timedelta(hours=1)) == 10  # never more than the burst
    # A clock set back adds nothing and takes nothing away.
    assert bucket.available(t0) == 10


def test_token_bucket_rate_zero_is_unlimited() -> None:
    bucket = TokenBucket(0, 0)
    bucket.take(1_000, AT)
    assert bucket.available(AT) == UNLIMITED


@given(st.lists(st.tuples(st.floats(0, 5), st.integers(0, 20)), max_size=30))
def test_token_bucket_never_releases_more_than_burst_plus_rate_times_time(
    steps: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate_per_s=3, burst=4)
    at, released = local("2026-11-26 08:00"), 0
    start = at
    for wait, want in steps:
        at += timedelta(seconds=wait)
        n = min(want, bucket.available(at))
        bucket.take(n, at)
        released += n
    assert released <= 4 + 3 * (at - start).total_seconds() + 1e-6
