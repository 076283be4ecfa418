"""Where a move of the simulation clock may take business time (admin/domain/clock.py)."""

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from common.clock import BUSINESS_TZ
from credit_control.admin.domain.clock import AdvanceClock, ClockRefusal, target_offset

WALL = datetime(2026, 11, 3, 9, 0, tzinfo=BUSINESS_TZ)


def test_to_sets_the_offset_that_makes_now_read_it() -> None:
    to = datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)
    assert target_offset(timedelta(0), WALL, to, timedelta(0)) == to - WALL


def test_by_adds_to_the_current_offset() -> None:
    assert target_offset(timedelta(days=1), WALL, None, timedelta(hours=6)) == timedelta(
        days=1, hours=6)


@pytest.mark.parametrize("to, by", [
    (WALL + timedelta(days=1), timedelta(0)),  # behind the simulated now (2 days ahead)
    (WALL + timedelta(days=2), timedelta(0)),  # the simulated now itself: no move
    (None, timedelta(0)),
    (datetime(8999, 12, 31, tzinfo=BUSINESS_TZ) + timedelta(days=1), timedelta(0)),
])
def test_backwards_nowhere_and_past_the_ceiling_are_refused(to: datetime | None,
                                                             by: timedelta) -> None:
    with pytest.raises(ClockRefusal):
        target_offset(timedelta(days=2), WALL, to, by)


def test_a_move_names_either_a_time_or_a_span() -> None:
    assert AdvanceClock(move_id="m1", days=1, hours=2, reason="demo").by == timedelta(
        days=1, hours=2)
    assert AdvanceClock(move_id="m2", to="2026-11-25T20:00:00+08:00", reason="demo").to
    for bad in ({"move_id": "m", "reason": "r"},
                {"move_id": "m", "reason": "r", "days": 1, "to": "2026-11-25"},
                {"move_id": "m", "reason": "r", "days": -1},
                {"move_id": "m", "reason": "", "days": 1}):
        with pytest.raises(ValidationError):
            AdvanceClock.model_validate(bad)
