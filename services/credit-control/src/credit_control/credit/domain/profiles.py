"""Credit profiles (seed 004: star level → credit limit, retention) and exemptions (red list,
emergency no-suspension). Pure."""

from dataclasses import dataclass, field
from datetime import datetime

from common.contracts.snapshots import Tier

# seed 004: star → (initial limit, lowest, highest), in fen. 0★ and unrated: no credit.
STAR_LIMITS_FEN: dict[int, tuple[int, int, int]] = {
    5: (300_00, 300_00, 500_00),
    4: (200_00, 200_00, 300_00),
    3: (50_00, 50_00, 100_00),
    2: (20_00, 20_00, 50_00),
    1: (10_00, 10_00, 20_00),
    0: (0, 0, 0),
}
LONG_RETENTION_STARS = frozenset({4, 5})
LONG_RETENTION_DAYS = 120
RETENTION_DAYS = 90


def initial_limit_fen(star_level: int | None) -> int:
    return STAR_LIMITS_FEN[star_level][0] if star_level is not None else 0


def limit_in_range(star_level: int | None, limit_fen: int) -> bool:
    """A limit staff may set for this star level (unrated customers get none)."""
    if star_level is None:
        return limit_fen == 0
    _, low, high = STAR_LIMITS_FEN[star_level]
    return low <= limit_fen <= high


def retention_days(star_level: int | None) -> int:
    """保号期: how long a suspended number is kept before pre-cancellation."""
    return LONG_RETENTION_DAYS if star_level in LONG_RETENTION_STARS else RETENTION_DAYS


@dataclass(frozen=True)
class Exemption:
    kind: str  # red_list | emergency
    reason: str
    approver: str
    until: datetime | None  # None: until removed

    def active(self, at: datetime) -> bool:
        return self.until is None or at < self.until


@dataclass(frozen=True)
class CreditProfile:
    """What credit-control knows about a customer beyond the event's snapshot."""

    customer_id: str
    star_level: int | None = None
    credit_limit_fen: int | None = None  # None: the star level's initial limit
    exemptions: tuple[Exemption, ...] = field(default=())
    tier: str | None = None  # the rating's tier (docs/rating.md); None: the snapshot's

    def decision_tier(self, snapshot_tier: Tier) -> Tier:
        """The tier the rule ladder runs with: the rating's, else billing's snapshot."""
        return Tier(self.tier) if self.tier else snapshot_tier

    def limit_fen(self, snapshot_star: int | None) -> int:
        if self.credit_limit_fen is not None:
            return self.credit_limit_fen
        return initial_limit_fen(self.star(snapshot_star))

    def star(self, snapshot_star: int | None) -> int | None:
        return self.star_level if self.star_level is not None else snapshot_star

    def active_exemptions(self, at: datetime) -> tuple[Exemption, ...]:
        return tuple(e for e in self.exemptions if e.active(at))

    def suspension_exempt(self, at: datetime) -> bool:
        return bool(self.active_exemptions(at))
