"""What a rating is made of: its inputs and its outcome. Pure."""

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class RatingInputs:
    """The four factors' raw values for one customer, from events credit-control consumed
    (billing's snapshots and bill runs) and its own history (suspensions)."""

    customer_id: str
    brand: str | None  # value class A/B/C/D, else billing's tier
    opened_on: date | None
    avg_monthly_spend_fen: int  # over the scorecard's spend window (months billed in it)
    suspensions: int  # in the scorecard's suspension window
    suspensions_period: int = 0  # in the guidance period (six months)
    blacklisted: bool = False
    blacklist_reason: str | None = None

    def tenure_months(self, as_of: date) -> int | None:
        """Whole months since the customer opened (网龄)."""
        if self.opened_on is None:
            return None
        months = (as_of.year - self.opened_on.year) * 12 + as_of.month - self.opened_on.month
        if as_of.day < self.opened_on.day:
            months -= 1
        return max(months, 0)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["opened_on"] = self.opened_on.isoformat() if self.opened_on else None
        return d


@dataclass(frozen=True)
class Rating:
    """A customer's star (None: unrated) and credit limit in fen."""

    star: int | None
    limit_fen: int


@dataclass(frozen=True)
class Outcome:
    """A model's verdict: the new rating, its score and factor points, and why."""

    rating: Rating
    score: int | None
    points: dict[str, int]
    reason: str
