"""Red-list review (红名单复核): seed 002 "对高信控及红名单客户持续清理", seed 001 "每月督促集团客户
事业部对红名单用户及时做下帐工作". Every red-list entry has a review date; the monthly worklist
shows the entries due by the end of a month; an entry not renewed by its review date lapses
(the day after it). Pure: no I/O."""

import calendar
from datetime import date

DEFAULT_REVIEW_MONTHS = 6  # a red list is re-confirmed twice a year unless staff say otherwise
LAPSE_ACTOR = "red-list-review"


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day where it has fewer days
    (31 Aug + 6 months = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def review_date(stored: date | None, created_on: date, months: int) -> date:
    """An entry's review date: the one staff set (at renewal), else `months` after it was
    added."""
    return stored if stored is not None else add_months(created_on, months)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def due_in(review_on: date, month_first: date) -> bool:
    """On the monthly worklist of `month_first`'s month: due by the end of that month (an
    overdue one too, until it lapses or is renewed)."""
    return review_on <= month_end(month_first)


def lapses(review_on: date, today: date) -> bool:
    """Not renewed by its review date: it lapses from the day after."""
    return today > review_on


# The furthest a renewal may set the next review: the red list is cleaned continuously
# (seed 002 对红名单客户持续清理); an entry reviewed years away (or in 9999) would exempt its
# customer from every suspension for good.
MAX_RENEWAL_MONTHS = 12


def renewal_date(current: date, today: date, months: int, asked: date | None) -> date:
    """The next review date of a renewal: the one asked for (after today, at most
    MAX_RENEWAL_MONTHS ahead), else `months` after the later of the current review date and
    today."""
    if asked is not None:
        if asked <= today:
            raise ValueError(f"review_on {asked} is not after today ({today})")
        latest = add_months(today, MAX_RENEWAL_MONTHS)
        if asked > latest:
            raise ValueError(f"review_on {asked} is more than {MAX_RENEWAL_MONTHS} months "
                             f"ahead (at most {latest}): a red list is reviewed at least "
                             "once a year")
        return asked
    return add_months(max(current, today), months)
