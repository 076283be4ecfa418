"""Pacing the release of a backlog (messages held by quiet hours): a token bucket. Pure; the
moment is always a parameter.

At the end of quiet hours every held message becomes due at once; without pacing the SMSC gets
them in one burst (the issue saw a contact receive 30 SMS in the same instant). The bucket lets
`rate_per_s` held messages leave per second, after a first `burst`. Per recipient, the sender
also keeps a minimum gap between two messages (the claim SQL); the two together spread a
backlog over time and each contact's messages one by one, in decision order.
"""

from dataclasses import dataclass
from datetime import datetime

UNLIMITED = 1_000_000_000


@dataclass
class TokenBucket:
    rate_per_s: float  # 0: unlimited
    burst: float
    tokens: float = 0.0
    at: datetime | None = None  # when `tokens` was last brought up to date

    def available(self, now: datetime) -> int:
        """How many may leave now."""
        if self.rate_per_s <= 0:
            return UNLIMITED
        self._refill(now)
        return int(self.tokens)

    def take(self, n: int, now: datetime) -> None:
        if self.rate_per_s <= 0 or n <= 0:
            return
        self._refill(now)
        self.tokens = max(0.0, self.tokens - n)

    def _refill(self, now: datetime) -> None:
        if self.at is None:
            self.tokens, self.at = self.burst, now
            return
        elapsed = max(0.0, (now - self.at).total_seconds())  # a clock set back adds nothing
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        self.at = max(self.at, now)
