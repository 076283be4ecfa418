"""Rating runs (seed 004): the basic model monthly, the guidance model every half-year.

Set-based: one read of every candidate's inputs, the models in memory, one write per table.
Idempotent per period: a run claims `model:period` first; a second call returns the first
one's summary and changes nothing. `as_of` decides the period and every window."""

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import BUSINESS_TZ, business_date
from common.errors import Unprocessable

from ...service_layer.context import CreditContext
from ..adapters import rating_sql as sql
from ..domain import models
from ..domain.model import Outcome, Rating, RatingInputs
from ..domain.scorecard import Scorecard
from .overrides import apply_ended_overrides
from .profiles import feed

MODELS = ("basic", "guidance")


def months_back(d: date, months: int) -> date:
    """The first day of the month `months` before `d`'s month."""
    index = d.year * 12 + d.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def period_of(model: str, day: date) -> str:
    if model == "basic":
        return f"{day:%Y-%m}"
    return f"{day.year}-H{1 if day.month <= 6 else 2}"


def _start(d: date) -> datetime:
    return datetime.combine(d, time(), BUSINESS_TZ)


def windows(card: Scorecard, as_of: datetime) -> dict[str, Any]:
    """The run's windows: spend over the closed months before as_of's month, suspensions
    over the window and the guidance period up to as_of."""
    day = business_date(as_of)
    month_start = day.replace(day=1)
    return {"as_of": as_of, "month_start": month_start,
            "spend_from": months_back(day, card.spend_window_months),
            "susp_from": _start(months_back(day, card.suspension_window_months)),
            "period_from": _start(months_back(day, card.guidance.period_months))}


@dataclass(frozen=True)
class Verdict:
    customer_id: str
    before: Rating
    outcome: Outcome
    inputs: RatingInputs


async def run(ctx: CreditContext, model: str, as_of: datetime | None, actor: str
              ) -> dict[str, Any]:
    if model not in MODELS:
        raise Unprocessable(f"unknown rating model {model!r}: basic or guidance",
                            field="model")
    at = as_of or ctx.clock.now()
    day = business_date(at)
    period = period_of(model, day)
    run_id = f"{model}:{period}"
    async with ctx.engine.begin() as conn:
        await apply_ended_overrides(ctx, conn, at, actor)
        card, _ = await sql.scorecard(conn)
        claimed = await sql.claim_run(conn, {
            "run_id": run_id, "model": model, "period": period, "as_of": at,
            "scorecard_version": card.version, "considered": 0, "changed": 0,
            "started_by": actor, "finished_at": ctx.clock.now()})
        if claimed:
            verdicts = await _decide(conn, card, model, at, day)
            changed = await _write(ctx, conn, card, model, period, verdicts, at, actor)
            await sql.finish_run(conn, run_id, len(verdicts), changed)
        summary = await sql.run_row(conn, run_id)
    assert summary is not None
    return {**summary, "already_done": not claimed}


async def _decide(conn: AsyncConnection, card: Scorecard, model: str, at: datetime,
                  day: date) -> list[Verdict]:
    if model == "basic":
        rows = await sql.basic_candidates(conn, at)
    else:
        half_start = date(day.year, 1 if day.month <= 6 else 7, 1)
        rows = await sql.guidance_candidates(conn, at, _start(half_start))
    current = {row.customer_id: Rating(row.star_level, int(row.limit_fen)) for row in rows}
    inputs = await sql.inputs_for(conn, list(current), windows(card, at))
    verdicts = []
    for i in inputs:
        before = current[i.customer_id]
        if model == "basic" or before.star is None or before.star == 0:
            outcome = models.basic(card, i, day)
        else:
            outcome = models.guide(card, before, i, day)
        verdicts.append(Verdict(i.customer_id, before, outcome, i))
    return verdicts


async def _write(ctx: CreditContext, conn: AsyncConnection, card: Scorecard, model: str,
                 period: str, verdicts: list[Verdict], at: datetime, actor: str) -> int:
    """Every verdict is kept with its inputs (also an unchanged one: the run's evidence);
    the rating, the credit profile and the products' tier follow the new rating."""
    changes, ratings, profiles = [], [], []
    for v in verdicts:
        new = v.outcome.rating
        changes.append({
            "customer_id": v.customer_id, "star_before": v.before.star,
            "star_after": new.star, "limit_before_fen": v.before.limit_fen,
            "limit_after_fen": new.limit_fen, "score": v.outcome.score,
            "inputs": {**v.inputs.as_json(), "points": v.outcome.points},
            "reason": v.outcome.reason})
        ratings.append({"customer_id": v.customer_id, "star_level": new.star,
                        "limit_fen": new.limit_fen, "score": v.outcome.score})
        profiles.append(sql.profile_values(card, v.customer_id, new,
                                           f"rating:{model}:{period}", at))
    run = {"model": model, "period": period, "version": card.version, "actor": actor, "at": at}
    await sql.write_changes(conn, run, changes)
    await sql.upsert_ratings(conn, run, ratings)
    await feed(ctx, conn, profiles, at, trigger=f"rating run {model}:{period}")
    return sum(1 for v in verdicts if v.outcome.rating != v.before)
