"""Reminder timeliness (seed 000: only 66% of arrears had a timely reminder; the standard is
≥95%). Pure: the counting is done by the repository, the judgement here."""

from dataclasses import dataclass
from datetime import date

REMINDER_STANDARD = 0.95


def reminder_bill_month(as_of_date: date) -> str:
    """The bill month a reminder is about: bills close at month end, and reminders about them
    (bill notice, warnings, the 25th's suspension warning) go out during the next month."""
    year, month = (as_of_date.year, as_of_date.month - 1) if as_of_date.month > 1 else (
        as_of_date.year - 1, 12)
    return f"{year:04d}-{month:02d}"


@dataclass(frozen=True)
class ReminderTimeliness:
    bill_month: str
    decisions: int  # arrears decisions that led to a customer reminder
    timely: int  # … whose reminder reached a group contact within the deadline
    deadline_hours: float
    standard: float = REMINDER_STANDARD

    @property
    def share(self) -> float | None:
        return None if self.decisions == 0 else self.timely / self.decisions

    @property
    def meets_standard(self) -> bool | None:
        return None if self.share is None else self.share >= self.standard
