"""The scorecard of seed 004's basic model: four factors (brand, tenure, average monthly spend,
number of suspensions), each scored 0–100 by bands, weighted into a score 0–100; star cut-offs
on the score; who is unrated. Versioned, audited data (like the rule table). Pure."""

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .model import RatingInputs

STARS = (5, 4, 3, 2, 1)


class Band(BaseModel):
    """`points` for a value of at least `at_least` (the highest such band applies)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    at_least: int = Field(ge=0)
    points: int = Field(ge=0, le=100)


class Factor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    weight: int = Field(ge=0, le=100)  # percent of the score
    bands: tuple[Band, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> "Factor":
        lows = [b.at_least for b in self.bands]
        if lows != sorted(set(lows)) or lows[0] != 0:
            raise ValueError("bands must start at 0 and rise strictly")
        return self

    def points(self, value: int) -> int:
        found = self.bands[0].points
        for band in self.bands:
            if value >= band.at_least:
                found = band.points
        return found


class Guidance(BaseModel):
    """The guidance model's rules (导向模型: simple, easy to explain to a customer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    period_months: int = Field(6, ge=1, le=24)
    demote_suspensions: int = Field(2, ge=1)  # this many suspensions in the period: down a level
    down_margin: int = Field(5, ge=0, le=100)  # score this far below the star's cut-off: down
    up_margin: int = Field(0, ge=0, le=100)  # score this far above the next cut-off: up
    limit_steps: int = Field(4, ge=1, le=20)  # the limit moves by 1/limit_steps of the range
    raise_max_suspensions: int = Field(0, ge=0)  # at most this many in the period: limit up
    cut_min_suspensions: int = Field(1, ge=1)  # at least this many in the period: limit down


class MultipleCheck(BaseModel):
    """Credit multiples (信控倍数, seed 002: checked daily): a limit above `max_multiple_milli`
    / 1000 times the customer's average monthly bill over `window_months` goes for review."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_multiple_milli: int = Field(2000, ge=1)
    window_months: int = Field(3, ge=1, le=24)

    def multiple_milli(self, limit_fen: int, avg_bill_fen: int) -> int | None:
        """limit / average bill × 1000, rounded down; None when there is no bill to compare."""
        return limit_fen * 1000 // avg_bill_fen if avg_bill_fen > 0 else None

    def too_high(self, limit_fen: int, avg_bill_fen: int) -> bool:
        """A limit with no bill behind it, or above the allowed multiple of the bill."""
        if limit_fen <= 0:
            return False
        # exact, in integers: limit / bill > max / 1000 (the shown multiple is rounded down)
        return avg_bill_fen <= 0 or limit_fen * 1000 > self.max_multiple_milli * avg_bill_fen


class ChurnWatch(BaseModel):
    """Who goes on the potential-churn list (潜在离网, seeds 003 and 004)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    high_star: int = Field(4, ge=1, le=5)  # a suspended customer of this star or above
    repeated_suspensions: int = Field(2, ge=2)  # this many suspension days in 12 months
    lookback_days: int = Field(31, ge=1, le=366)  # a scan looks this far back (catch-up)
    quiet_days: int = Field(90, ge=1)  # no second entry of one cause within this many days
    revisit_within_days: int = Field(7, ge=1)  # the revisit is due this many days after


class Scorecard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    version: int = Field(1, ge=1)
    # Brand: a group customer's value class (集团客户价值分类 A/B/C/D) when billing sends it,
    # else billing's credit tier (seed 000's low/mid/high). Anything else scores 0.
    brand_weight: int = Field(ge=0, le=100)
    brand_points: dict[Annotated[str, Field(pattern=r"^[^\x00]*$")], int]  # stored: no NUL
    tenure_months: Factor
    spend_fen: Factor  # average monthly bill, fen
    suspensions: Factor  # suspensions in the window (distinct days a product was suspended)
    spend_window_months: int = Field(6, ge=1, le=24)
    suspension_window_months: int = Field(12, ge=1, le=36)
    cutoffs: dict[int, int]  # star → the lowest score of that star
    min_tenure_months: int = Field(6, ge=0)  # below it: unrated (seed 004: 入网未满半年)
    guidance: Guidance = Guidance()
    multiples: MultipleCheck = MultipleCheck()
    churn: ChurnWatch = ChurnWatch()
    tier_by_star: dict[int, str]  # star (0: 0★ and unrated) → seed 000 tier

    @model_validator(mode="after")
    def _consistent(self) -> "Scorecard":
        total = (self.brand_weight + self.tenure_months.weight + self.spend_fen.weight
                 + self.suspensions.weight)
        if total != 100:
            raise ValueError(f"weights must add up to 100, not {total}")
        if sorted(self.cutoffs) != sorted(STARS):
            raise ValueError("cutoffs needs one score per star 1–5")
        scores = [self.cutoffs[s] for s in STARS]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != 5:
            raise ValueError("cut-offs must fall strictly from 5★ to 1★")
        if sorted(self.tier_by_star) != [0, 1, 2, 3, 4, 5] or not set(
                self.tier_by_star.values()) <= {"low", "mid", "high"}:
            raise ValueError("tier_by_star maps every star 0–5 to low, mid or high")
        if any(not 0 <= p <= 100 for p in self.brand_points.values()):
            raise ValueError("brand points are 0–100")
        return self

    # --- scoring -------------------------------------------------------------------------

    def factor_points(self, inputs: RatingInputs, as_of: date) -> dict[str, int]:
        """Each factor's points 0–100 (kept with the rating: the why of its score)."""
        return {
            "brand": self.brand_points.get(inputs.brand or "", 0),
            "tenure": self.tenure_months.points(inputs.tenure_months(as_of) or 0),
            "spend": self.spend_fen.points(inputs.avg_monthly_spend_fen),
            "suspensions": self.suspensions.points(inputs.suspensions),
        }

    def score(self, inputs: RatingInputs, as_of: date) -> int:
        p = self.factor_points(inputs, as_of)
        weighted = (p["brand"] * self.brand_weight + p["tenure"] * self.tenure_months.weight
                    + p["spend"] * self.spend_fen.weight
                    + p["suspensions"] * self.suspensions.weight)
        return weighted // 100

    def star_for(self, score: int) -> int:
        for star in STARS:
            if score >= self.cutoffs[star]:
                return star
        return 0

    def unrated_reason(self, inputs: RatingInputs, as_of: date) -> str | None:
        """Why the customer is unrated (seed 004: tenure under six months, blacklist)."""
        if inputs.blacklisted:
            return f"blacklisted ({inputs.blacklist_reason or 'no reason given'})"
        months = inputs.tenure_months(as_of)
        if months is None:
            return "tenure unknown (no open date from billing yet)"
        if months < self.min_tenure_months:
            return f"tenure {months} months < {self.min_tenure_months}"
        return None

    def tier(self, star: int | None) -> str:
        return self.tier_by_star[star or 0]


def _bands(*pairs: tuple[int, int]) -> tuple[Band, ...]:
    return tuple(Band(at_least=a, points=p) for a, p in pairs)


# Defaults: calibrated on the synthetic base (rating/synthetic.py) so the star shares land on
# seed 004's (5★ 1 %, 4★ 7 %, 3★ 7 %, 2★ 15 %, 1★ 20 %); docs/rating.md says why each.
DEFAULT_SCORECARD = Scorecard(
    version=1,
    brand_weight=20,
    brand_points={"A": 100, "B": 75, "C": 45, "D": 20, "high": 80, "mid": 50, "low": 20},
    tenure_months=Factor(weight=20, bands=_bands((0, 0), (6, 20), (12, 40), (24, 60),
                                                  (36, 75), (60, 90), (96, 100))),
    spend_fen=Factor(weight=40, bands=_bands(
        (0, 0), (30_00, 15), (50_00, 25), (100_00, 40), (200_00, 55), (500_00, 70),
        (1000_00, 85), (3000_00, 100))),
    suspensions=Factor(weight=20, bands=_bands((0, 100), (1, 60), (2, 30), (3, 0))),
    cutoffs={5: 90, 4: 76, 3: 68, 2: 59, 1: 49},
    tier_by_star={5: "high", 4: "high", 3: "mid", 2: "mid", 1: "low", 0: "low"},
)
