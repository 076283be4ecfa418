"""Arrears rate (欠费率) arithmetic. Pure; money in integer fen, the rate as exact decimals."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class Receivables:
    """One bill month (or a group of them): what was billed and what of it is still unpaid."""

    receivables_fen: int
    arrears_fen: int
    written_off_fen: int = 0  # of the billed, what write-offs cover (not arrears, not paid)

    def __add__(self, other: "Receivables") -> "Receivables":
        return Receivables(self.receivables_fen + other.receivables_fen,
                           self.arrears_fen + other.arrears_fen,
                           self.written_off_fen + other.written_off_fen)

    @property
    def rate(self) -> Decimal | None:
        """arrears / receivables, exact to 6 decimal places (half up); None when nothing billed."""
        if self.receivables_fen == 0:
            return None
        return (Decimal(self.arrears_fen) / Decimal(self.receivables_fen)).quantize(
            Decimal("0.000001"), rounding=ROUND_HALF_UP)

    @property
    def rate_percent(self) -> str | None:
        """The seed's way of writing it: 0.38 (%), two places, half up."""
        if self.receivables_fen == 0:
            return None
        pct = Decimal(self.arrears_fen * 100) / Decimal(self.receivables_fen)
        return str(pct.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
