"""The collections escalation's pure rules (docs/collections.md "Escalation"): the three
phases' timing, and when associated suspension may act."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_control.collections.domain.escalation import (
    Candidate,
    CaseStatus,
    Phase,
    PhasePlan,
    association_refusal,
    case_id,
    product_refusal,
)

OPENED = date(2203, 5, 1)


@pytest.mark.parametrize(("day", "phase"), [
    (0, Phase.INVESTIGATE), (9, Phase.INVESTIGATE),  # days 1-10
    (10, Phase.FORCED), (19, Phase.FORCED),  # days 11-20
    (20, Phase.DISCONNECT), (29, Phase.DISCONNECT), (30, Phase.DISCONNECT), (400, Phase.DISCONNECT),
])
def test_the_seeds_three_ten_day_phases(day: int, phase: Phase) -> None:
    assert PhasePlan().phase_on(OPENED, OPENED + timedelta(days=day)) is phase


def test_a_day_before_the_case_opened_is_phase_one() -> None:
    assert PhasePlan().phase_on(OPENED, OPENED - timedelta(days=3)) is Phase.INVESTIGATE


def test_phase_starts_and_the_last_day() -> None:
    plan = PhasePlan((5, 7, 3))
    assert plan.starts(OPENED) == {Phase.INVESTIGATE: OPENED,
                                   Phase.FORCED: date(2203, 5, 6),
                                   Phase.DISCONNECT: date(2203, 5, 13)}
    assert plan.ends_on(OPENED) == date(2203, 5, 15)
    assert PhasePlan().ends_on(OPENED) == date(2203, 5, 30)


def test_a_run_that_missed_days_enters_each_phase_in_order() -> None:
    plan = PhasePlan()
    assert plan.phases_entered(OPENED, Phase.INVESTIGATE, date(2203, 6, 15)) == [
        Phase.FORCED, Phase.DISCONNECT]
    assert plan.phases_entered(OPENED, Phase.FORCED, date(2203, 5, 21)) == [Phase.DISCONNECT]
    # A repeated or older run enters nothing (phases only move forward).
    assert plan.phases_entered(OPENED, Phase.DISCONNECT, date(2203, 5, 21)) == []
    assert plan.phases_entered(OPENED, Phase.FORCED, date(2203, 5, 2)) == []


@pytest.mark.parametrize("days", [(0, 10, 10), (10, -1, 10), (10, 10)])
def test_phase_lengths_are_three_positive_numbers(days: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        PhasePlan(days)  # type: ignore[arg-type]


@given(st.tuples(*[st.integers(1, 60)] * 3), st.integers(0, 200))
def test_the_phase_never_goes_back_and_changes_only_at_the_starts(
        days: tuple[int, int, int], offset: int) -> None:
    plan = PhasePlan(days)
    today = OPENED + timedelta(days=offset)
    now, tomorrow = plan.phase_on(OPENED, today), plan.phase_on(OPENED, today + timedelta(1))
    assert tomorrow >= now
    if tomorrow != now:
        assert plan.starts(OPENED)[tomorrow] == today + timedelta(1)


def test_one_case_per_account_and_day() -> None:
    assert case_id("A1", OPENED) == case_id("A1", OPENED)
    assert case_id("A1", OPENED) != case_id("A1", OPENED + timedelta(1))
    assert case_id("A1", OPENED) != case_id("A2", OPENED)
    assert case_id("A1", OPENED).startswith("CC-")


def test_associated_suspension_only_with_everything_in_order() -> None:
    ok = {"case_status": CaseStatus.OPEN, "phase": Phase.FORCED, "approved": True,
          "arrears_fen": 1, "exempt": False}
    assert association_refusal(**ok) is None  # type: ignore[arg-type]
    assert association_refusal(**{**ok, "phase": Phase.DISCONNECT}) is None  # type: ignore[arg-type]
    for change, why in (({"case_status": CaseStatus.PAID}, "paid"),
                        ({"phase": Phase.INVESTIGATE}, "phase 1"),
                        ({"approved": False}, "approval"),
                        ({"arrears_fen": 0}, "paid"),
                        ({"exempt": True}, "red list"),
                        ({"promise": ("PR1", OPENED + timedelta(9))}, "promise to pay PR1")):
        refusal = association_refusal(**{**ok, **change})  # type: ignore[arg-type]
        assert refusal is not None and why in refusal


@pytest.mark.parametrize(("state", "own_due", "why"), [
    ("normal", 0, None), ("warned", 0, None), ("suspension_warned", 0, None),
    ("normal", 1, "in arrears itself"), ("suspended", 0, "suspended"),
    ("pre_cancel", 0, "pre_cancel"), ("suspend_requested", 0, "suspend_requested"),
    ("restore_requested", 0, "restore_requested"),
])
def test_which_products_are_suspended_by_association(state: str, own_due: int,
                                                      why: str | None) -> None:
    refusal = product_refusal(Candidate("P1", "A2", state, own_due))
    if why is None:
        assert refusal is None
    else:
        assert refusal is not None and why in refusal
