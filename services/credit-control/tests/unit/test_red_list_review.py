"""Red-list review's pure rules (docs/collections.md "Red-list review")."""

from datetime import date

import pytest

from credit_control.collections.domain.red_list_review import (
    add_months,
    due_in,
    lapses,
    month_end,
    renewal_date,
    review_date,
)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 15), 6, date(2026, 7, 15)),
    (date(2026, 8, 31), 6, date(2027, 2, 28)),  # the month's last day where it is shorter
    (date(2027, 8, 31), 6, date(2028, 2, 29)),
    (date(2026, 12, 3), 1, date(2027, 1, 3)),
    (date(2026, 7, 1), 12, date(2027, 7, 1)),
])
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_the_review_date_is_the_renewals_or_the_period_after_adding() -> None:
    assert review_date(None, date(2026, 12, 3), 6) == date(2027, 6, 3)
    assert review_date(date(2027, 1, 10), date(2026, 12, 3), 6) == date(2027, 1, 10)


def test_the_monthly_worklist_holds_what_is_due_by_the_months_end() -> None:
    june = date(2027, 6, 1)
    assert month_end(june) == date(2027, 6, 30)
    assert due_in(date(2027, 6, 30), june)
    assert due_in(date(2027, 5, 2), june)  # overdue and not lapsed yet: still listed
    assert not due_in(date(2027, 7, 1), june)


def test_an_entry_lapses_the_day_after_its_review_date() -> None:
    assert not lapses(date(2027, 6, 3), date(2027, 6, 3))
    assert lapses(date(2027, 6, 3), date(2027, 6, 4))


def test_a_renewal_moves_the_review_date_forward() -> None:
    today = date(2027, 6, 10)
    # by default the period after the later of the current date and today
    assert renewal_date(date(2027, 6, 30), today, 6, None) == date(2027, 12, 30)
    assert renewal_date(date(2027, 6, 3), today, 6, None) == date(2027, 12, 10)
    assert renewal_date(date(2027, 6, 3), today, 6, date(2027, 9, 1)) == date(2027, 9, 1)
    for asked in (today, date(2027, 1, 1)):
        with pytest.raises(ValueError, match="not after today"):
            renewal_date(date(2027, 6, 3), today, 6, asked)
    # at most a year ahead: a review date years away (or in 9999) makes the entry permanent
    assert renewal_date(date(2027, 6, 3), today, 6, date(2028, 6, 10)) == date(2028, 6, 10)
    for asked in (date(2028, 6, 11), date(9999, 12, 31)):
        with pytest.raises(ValueError, match="more than 12 months ahead"):
            renewal_date(date(2027, 6, 3), today, 6, asked)
