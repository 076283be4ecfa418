"""When a customer SMS may reach a phone: the sending window (quiet hours outside it). Pure;
the moment is always a parameter.

One definition for the two services that must agree on it: the notifier holds a customer's
message decided outside the window until it opens (`NOTIFIER_CUSTOMER_SENDING_HOURS`,
notifier/domain/quiet_hours.py), and credit-control counts a suspension warning's notice
period from the day its SMS can first leave (`CREDIT_CUSTOMER_SENDING_HOURS`,
credit/domain/ladder.py `first_sending_day`). Both settings default to
`CUSTOMER_SENDING_HOURS`; changed, they must be changed together (docs/operations.md).

A window is local (Asia/Shanghai) wall time, "08:00-21:00"; "00:00-24:00" is always open, and a
window that opens after it closes ("22:00-06:00") runs over midnight.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from .clock import BUSINESS_TZ, ensure_aware

# The customer sending window both services default to (Asia/Shanghai).
CUSTOMER_SENDING_HOURS = "08:00-21:00"
# Staff (account managers) are told at once by default.
MANAGER_SENDING_HOURS = "00:00-24:00"

_WINDOW = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class SendingWindow:
    opens_min: int  # minutes after local midnight
    closes_min: int  # 1440 = midnight at the end of the day

    @classmethod
    def parse(cls, text: str) -> "SendingWindow":
        m = _WINDOW.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"a sending window looks like 08:00-21:00, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        opens, closes = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or closes > DAY_MINUTES or opens == closes:
            raise ValueError(f"not a sending window: {text!r}")
        return cls(opens, closes)

    @property
    def always_open(self) -> bool:
        return self.opens_min == 0 and self.closes_min == DAY_MINUTES

    def is_open(self, at: datetime) -> bool:
        local = ensure_aware(at).astimezone(BUSINESS_TZ)
        minute = local.hour * 60 + local.minute
        if self.opens_min < self.closes_min:
            return self.opens_min <= minute < self.closes_min
        return minute >= self.opens_min or minute < self.closes_min  # over midnight

    def hold_until(self, at: datetime) -> datetime | None:
        """None while the window is open; else the next moment it opens."""
        if self.is_open(at):
            return None
        local = ensure_aware(at).astimezone(BUSINESS_TZ)
        opening = datetime.combine(local.date(), time(self.opens_min // 60, self.opens_min % 60),
                                   tzinfo=BUSINESS_TZ)
        if opening <= local:
            opening += timedelta(days=1)
        return opening

    def first_moment(self, at: datetime) -> datetime:
        """The first moment from `at` on at which a message may reach a phone."""
        return self.hold_until(at) or ensure_aware(at)

    def __str__(self) -> str:
        return (f"{self.opens_min // 60:02d}:{self.opens_min % 60:02d}-"
                f"{self.closes_min // 60:02d}:{self.closes_min % 60:02d}")


DEFAULT_CUSTOMER_WINDOW = SendingWindow.parse(CUSTOMER_SENDING_HOURS)
