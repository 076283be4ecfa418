"""Seed 004's two models over the scorecard. Pure.

- basic model (基础模型): monthly, for the unrated and 0★ customers; gives the initial star and
  the star's initial limit (授信额度).
- guidance model (导向模型): every six months, for 1–5★ customers; moves the level by at most
  one star and the limit within the star's range, by rules simple enough to tell a customer.
"""

from datetime import date

from ...credit.domain.profiles import STAR_LIMITS_FEN
from .model import Outcome, Rating, RatingInputs
from .scorecard import Scorecard

UNRATED = Rating(None, 0)


def initial(star: int) -> Rating:
    return Rating(star, STAR_LIMITS_FEN[star][0])


def limit_step_fen(card: Scorecard, star: int) -> int:
    """How far the guidance model moves a limit: a share of the star's range, in whole yuan."""
    _, low, high = STAR_LIMITS_FEN[star]
    step = (high - low) // card.guidance.limit_steps
    return max(step - step % 100, 100) if high > low else 0


def basic(card: Scorecard, inputs: RatingInputs, as_of: date) -> Outcome:
    why_not = card.unrated_reason(inputs, as_of)
    if why_not is not None:
        return Outcome(UNRATED, None, {}, f"unrated: {why_not}")
    points = card.factor_points(inputs, as_of)
    score = card.score(inputs, as_of)
    star = card.star_for(score)
    cut = f"cut-off {card.cutoffs[star]}" if star else f"below 1★ cut-off {card.cutoffs[1]}"
    return Outcome(initial(star), score, points,
                   f"basic model: score {score} ({cut}) → {star}★")


def guide(card: Scorecard, current: Rating, inputs: RatingInputs, as_of: date) -> Outcome:
    """The guidance model for a 1–5★ customer. First rule that applies wins:
    unrated rules; many suspensions → down; score well under the cut-off → down; score at the
    next star's cut-off → up; else the limit moves a step within the range (up without
    suspensions, down with)."""
    star = current.star
    if star is None or star == 0:
        raise ValueError("the guidance model re-rates 1–5★ customers only")
    why_not = card.unrated_reason(inputs, as_of)
    if why_not is not None:
        return Outcome(UNRATED, None, {}, f"unrated: {why_not}")
    g = card.guidance
    points = card.factor_points(inputs, as_of)
    score = card.score(inputs, as_of)
    n = inputs.suspensions_period
    if n >= g.demote_suspensions:
        return Outcome(initial(star - 1), score, points,
                       f"guidance: {n} suspensions in {g.period_months} months "
                       f"(≥ {g.demote_suspensions}) → down to {star - 1}★")
    if score < card.cutoffs[star] - g.down_margin:
        return Outcome(initial(star - 1), score, points,
                       f"guidance: score {score} < {star}★ cut-off {card.cutoffs[star]} − "
                       f"{g.down_margin} → down to {star - 1}★")
    if star < 5 and score >= card.cutoffs[star + 1] + g.up_margin:
        return Outcome(initial(star + 1), score, points,
                       f"guidance: score {score} ≥ {star + 1}★ cut-off "
                       f"{card.cutoffs[star + 1]} + {g.up_margin} → up to {star + 1}★")
    return Outcome(_limit_move(card, current, n), score, points,
                   _limit_reason(card, current, n))


def _limit_move(card: Scorecard, current: Rating, suspensions: int) -> Rating:
    star = current.star or 0
    _, low, high = STAR_LIMITS_FEN[star]
    limit = min(max(current.limit_fen, low), high)  # an out-of-range limit comes back in
    step = limit_step_fen(card, star)
    if suspensions <= card.guidance.raise_max_suspensions:
        return Rating(star, min(limit + step, high))
    if suspensions >= card.guidance.cut_min_suspensions:
        return Rating(star, max(limit - step, low))
    return Rating(star, limit)


def _limit_reason(card: Scorecard, current: Rating, suspensions: int) -> str:
    new = _limit_move(card, current, suspensions)
    star = current.star or 0
    if new.limit_fen > current.limit_fen:
        return (f"guidance: {suspensions} suspensions in {card.guidance.period_months} months, "
                f"{star}★ kept, limit raised a step")
    if new.limit_fen < current.limit_fen:
        return (f"guidance: {suspensions} suspension(s) in {card.guidance.period_months} "
                f"months, {star}★ kept, limit lowered a step")
    return f"guidance: {star}★ and limit kept (at the edge of the range)"
