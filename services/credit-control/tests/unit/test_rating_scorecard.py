"""The rating model's scorecard and its two models (seed 004), pure."""

from datetime import date

import pytest
from pydantic import ValidationError

from credit_control.rating.domain.model import Rating, RatingInputs
from credit_control.rating.domain.models import basic, guide, limit_step_fen
from credit_control.rating.domain.scorecard import DEFAULT_SCORECARD as CARD
from credit_control.rating.domain.scorecard import Scorecard

AS_OF = date(2026, 11, 30)


def inputs(brand: str | None = "C", months: int = 24, spend: int = 200_00,
           suspensions: int = 0, period: int = 0, black: bool = False) -> RatingInputs:
    opened = date(AS_OF.year - months // 12 - (1 if AS_OF.month - months % 12 < 1 else 0),
                  (AS_OF.month - months % 12 - 1) % 12 + 1, 1)
    return RatingInputs("G1", brand, opened, spend, suspensions, period, black,
                        "bad debt" if black else None)


def test_tenure_is_whole_months() -> None:
    i = RatingInputs("G", None, date(2026, 5, 31), 0, 0)
    assert i.tenure_months(date(2026, 11, 30)) == 5
    assert i.tenure_months(date(2026, 12, 1)) == 6
    assert inputs(months=24).tenure_months(AS_OF) == 24


@pytest.mark.parametrize(("brand", "points"), [("A", 100), ("B", 75), ("C", 45), ("D", 20),
                                               ("high", 80), ("mid", 50), ("low", 20),
                                               (None, 0), ("unknown", 0)])
def test_brand_factor(brand: str | None, points: int) -> None:
    assert CARD.factor_points(inputs(brand=brand), AS_OF)["brand"] == points


@pytest.mark.parametrize(("months", "points"), [(6, 20), (11, 20), (12, 40), (23, 40),
                                                (24, 60), (36, 75), (60, 90), (96, 100)])
def test_tenure_factor(months: int, points: int) -> None:
    assert CARD.factor_points(inputs(months=months), AS_OF)["tenure"] == points


@pytest.mark.parametrize(("spend", "points"), [(0, 0), (29_99, 0), (30_00, 15), (49_99, 15),
                                               (50_00, 25), (100_00, 40), (200_00, 55),
                                               (500_00, 70), (1000_00, 85), (3000_00, 100)])
def test_spend_factor(spend: int, points: int) -> None:
    assert CARD.factor_points(inputs(spend=spend), AS_OF)["spend"] == points


@pytest.mark.parametrize(("n", "points"), [(0, 100), (1, 60), (2, 30), (3, 0), (9, 0)])
def test_suspension_factor(n: int, points: int) -> None:
    assert CARD.factor_points(inputs(suspensions=n), AS_OF)["suspensions"] == points


def test_score_is_the_weighted_sum() -> None:
    # brand C 45×20 + tenure 24m 60×20 + spend 200 yuan 55×40 + no suspension 100×20
    assert CARD.score(inputs(), AS_OF) == (45 * 20 + 60 * 20 + 55 * 40 + 100 * 20) // 100


@pytest.mark.parametrize("star", [5, 4, 3, 2, 1])
def test_each_cut_off(star: int) -> None:
    cut = CARD.cutoffs[star]
    assert CARD.star_for(cut) == star
    assert CARD.star_for(cut - 1) == star - 1


def test_unrated_rules() -> None:
    assert basic(CARD, inputs(months=5, brand="A", spend=5000_00), AS_OF).rating == Rating(
        None, 0)
    assert basic(CARD, inputs(months=6, brand="A", spend=5000_00), AS_OF).rating.star == 4
    black = basic(CARD, inputs(black=True, brand="A", spend=5000_00), AS_OF)
    assert black.rating == Rating(None, 0) and "blacklisted" in black.reason
    unknown = RatingInputs("G", "A", None, 5000_00, 0)
    assert basic(CARD, unknown, AS_OF).rating.star is None


@pytest.mark.parametrize(("star", "limit"), [(5, 300_00), (4, 200_00), (3, 50_00), (2, 20_00),
                                             (1, 10_00), (0, 0)])
def test_basic_gives_the_initial_limit(star: int, limit: int) -> None:
    # find inputs scoring into that star: brand, tenure and spend are the levers
    levers = [(b, m, spend) for b, m in (("D", 12), ("B", 36), ("A", 120))
              for spend in range(0, 5000_00, 5_00)]
    for brand, months, spend in levers:
        out = basic(CARD, inputs(brand=brand, months=months, spend=spend), AS_OF)
        if out.rating.star == star:
            assert out.rating.limit_fen == limit and out.score is not None
            assert set(out.points) == {"brand", "tenure", "spend", "suspensions"}
            return
    pytest.fail(f"no spend reaches {star}★")


def test_guidance_raises_the_limit_a_step_up_to_the_top() -> None:
    steady = inputs(brand="C", months=36, spend=200_00)  # score 64 → 3★ band [68..)? keep 3★
    star = CARD.star_for(CARD.score(steady, AS_OF))
    low, high = {3: (50_00, 100_00), 2: (20_00, 50_00), 1: (10_00, 20_00)}[star]
    step = limit_step_fen(CARD, star)
    out = guide(CARD, Rating(star, low), steady, AS_OF)
    assert out.rating == Rating(star, low + step)
    assert guide(CARD, Rating(star, high - 1), steady, AS_OF).rating == Rating(star, high)
    assert guide(CARD, Rating(star, high), steady, AS_OF).rating == Rating(star, high)


@pytest.mark.parametrize(("star", "step"), [(5, 50_00), (4, 25_00), (3, 12_00), (2, 7_00),
                                            (1, 2_00)])
def test_limit_steps_per_star(star: int, step: int) -> None:
    assert limit_step_fen(CARD, star) == step


def test_guidance_lowers_the_limit_after_a_suspension_down_to_the_bottom() -> None:
    one = inputs(brand="A", months=120, spend=3000_00, suspensions=1, period=1)
    assert CARD.star_for(CARD.score(one, AS_OF)) == 5
    assert guide(CARD, Rating(5, 400_00), one, AS_OF).rating == Rating(5, 350_00)
    assert guide(CARD, Rating(5, 310_00), one, AS_OF).rating == Rating(5, 300_00)
    assert guide(CARD, Rating(5, 300_00), one, AS_OF).rating == Rating(5, 300_00)


def test_guidance_demotes_on_repeated_suspensions() -> None:
    two = inputs(brand="A", months=120, spend=3000_00, suspensions=2, period=2)
    out = guide(CARD, Rating(5, 500_00), two, AS_OF)
    assert out.rating == Rating(4, 200_00) and "2 suspensions" in out.reason


def test_guidance_moves_one_level_by_score() -> None:
    weak = inputs(brand="D", months=6, spend=0)  # score far below any cut-off
    out = guide(CARD, Rating(4, 250_00), weak, AS_OF)
    assert out.rating == Rating(3, 50_00)  # one level only, however low the score
    strong = inputs(brand="A", months=120, spend=3000_00)
    up = guide(CARD, Rating(2, 50_00), strong, AS_OF)
    assert up.rating == Rating(3, 50_00) and "up to 3★" in up.reason
    # down margin: a score just under the cut-off keeps the level
    g = CARD.guidance
    assert g.down_margin > 0


def test_guidance_unrates_and_refuses_unrated() -> None:
    assert guide(CARD, Rating(3, 80_00), inputs(black=True), AS_OF).rating == Rating(None, 0)
    with pytest.raises(ValueError):
        guide(CARD, Rating(0, 0), inputs(), AS_OF)


def test_a_limit_outside_the_range_comes_back_in() -> None:
    steady = inputs(brand="A", months=120, spend=3000_00)
    assert guide(CARD, Rating(5, 900_00), steady, AS_OF).rating == Rating(5, 500_00)


def test_the_scorecard_refuses_nonsense() -> None:
    data = CARD.model_dump()
    with pytest.raises(ValidationError):
        Scorecard.model_validate({**data, "brand_weight": 30})  # weights 110
    with pytest.raises(ValidationError):
        Scorecard.model_validate({**data, "cutoffs": {5: 50, 4: 60, 3: 40, 2: 30, 1: 20}})
    with pytest.raises(ValidationError):
        Scorecard.model_validate({**data, "tier_by_star": {0: "low"}})
    assert Scorecard.model_validate(CARD.model_dump(mode="json")) == CARD


def test_tier_from_star() -> None:
    assert [CARD.tier(s) for s in (None, 0, 1, 2, 3, 4, 5)] == [
        "low", "low", "low", "mid", "mid", "high", "high"]


@pytest.mark.parametrize(("limit", "avg", "multiple", "flagged"), [
    (300_00, 100_00, 3000, True),     # 3× the average bill
    (300_00, 150_00, 2000, False),    # exactly the allowed 2×
    (300_00, 149_99, 2000, True),     # a fen over: 2.0001× (milli rounds down to 2000)
    (20_00, 0, None, True),           # a limit with no bill behind it
    (0, 0, None, False),              # no limit, nothing to check
    (10_00, 100_00, 100, False),
])
def test_credit_multiples(limit: int, avg: int, multiple: int | None, flagged: bool) -> None:
    rule = CARD.multiples
    assert rule.multiple_milli(limit, avg) == multiple
    assert rule.too_high(limit, avg) is flagged
