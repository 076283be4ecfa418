"""The simulation's fault knobs and the deterministic draw of each step's fate. Pure.

Every draw is seeded by (seed, command id, attempt, step), so the same command meets the same
delays and failures on every run, whatever else runs beside it.
"""

import random
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.clock import BUSINESS_TZ, ensure_aware

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Millis = Annotated[float, Field(ge=0.0, le=86_400_000.0)]


class Step(StrEnum):
    """Where an attempt is in the chain. `gateway_confirm` is the second half of a vendor that
    acknowledges asynchronously (the gateway took the command, confirms it later)."""

    BOSS = "boss"
    EMOS = "emos"
    GATEWAY = "gateway"
    GATEWAY_CONFIRM = "gateway_confirm"


class Fate(StrEnum):
    OK = "ok"
    FAIL = "fail"
    TIMEOUT = "timeout"


class Latency(BaseModel):
    """How long a step takes: fixed (min_ms), uniform in [min_ms, max_ms], or min_ms plus an
    exponential tail with mean mean_ms (a few orders take much longer, as EMOS's did)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    min_ms: Millis = 0.0
    max_ms: Millis = 0.0
    mean_ms: Millis = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> "Latency":
        if self.distribution == "uniform" and self.max_ms < self.min_ms:
            raise ValueError("uniform latency needs max_ms >= min_ms")
        return self

    def sample_s(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            return rng.uniform(self.min_ms, self.max_ms) / 1000
        if self.distribution == "exponential" and self.mean_ms > 0:
            return (self.min_ms + rng.expovariate(1 / self.mean_ms)) / 1000
        return self.min_ms / 1000


class StageFaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    latency: Latency = Latency()
    failure_rate: Share = 0.0
    # A step slower than this gives up as timed_out when the timeout expires.
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    # The stage is down until this instant: every step due before it fails.
    down_until: datetime | None = None

    def down_at(self, at: datetime) -> bool:
        return self.down_until is not None and at < ensure_aware(self.down_until)


class Faults(BaseModel):
    """What `PUT /v1/faults` takes; the defaults are a healthy chain without delays."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = 0
    boss: StageFaults = StageFaults()
    emos: StageFaults = StageFaults()
    gateway: StageFaults = StageFaults()
    # Share of EMOS orders that are worked only in the next month (seed 000: ≤0.5% standard).
    emos_cross_month_share: Share = 0.0

    def stage(self, step: Step) -> StageFaults:
        if step is Step.BOSS:
            return self.boss
        if step is Step.EMOS:
            return self.emos
        return self.gateway


class Draw(NamedTuple):
    fate: Fate
    due_at: datetime
    cross_month: bool = False


class StepPlan(NamedTuple):
    """What the knobs say about one step, worked out once per set of knobs: its delay when
    there is nothing to draw (else None), and until when its stage is down."""

    certain_delay: timedelta | None
    down_until: datetime | None


def plan(faults: Faults) -> dict[Step, StepPlan]:
    """Every step's plan under these knobs (the last knobs' plan is kept: a batch asks for
    it once per step of every command)."""
    if _last_plan[0] is not faults:
        _last_plan[:] = [faults, {step: _plan(faults, step) for step in Step}]
    return _last_plan[1]  # type: ignore[return-value]


def _plan(faults: Faults, step: Step) -> StepPlan:
    stage = faults.stage(step)
    delay = timedelta(seconds=stage.latency.min_ms / 1000)
    return StepPlan(delay if _certain(faults, stage, step) else None,
                    None if stage.down_until is None else ensure_aware(stage.down_until))


_last_plan: list[object] = [None, {}]


def draw(faults: Faults, command_id: str, attempt: int, step: Step, start: datetime) -> Draw:
    """When the step completes and how: seeded per (seed, command, attempt, step)."""
    delay = plan(faults)[step].certain_delay
    if delay is not None:
        # Nothing to draw: the same answer the seeded draw gives, without seeding a generator
        # (SHA-512 of the seed string) for every step of every command.
        return Draw(Fate.OK, start + delay)
    stage = faults.stage(step)
    rng = random.Random(f"{faults.seed}|{command_id}|{attempt}|{step.value}")
    latency = stage.latency.sample_s(rng)
    failed = rng.random() < stage.failure_rate
    late = step is Step.EMOS and rng.random() < faults.emos_cross_month_share
    if late:
        # Worked only after the month closed: late, but not a timeout, as in the seed.
        return Draw(fate=Fate.FAIL if failed else Fate.OK, cross_month=True,
                    due_at=next_month_start(start) + timedelta(seconds=latency))
    if stage.timeout_s is not None and latency > stage.timeout_s:
        return Draw(fate=Fate.TIMEOUT, due_at=start + timedelta(seconds=stage.timeout_s))
    return Draw(fate=Fate.FAIL if failed else Fate.OK,
                due_at=start + timedelta(seconds=latency))


def _certain(faults: Faults, stage: StageFaults, step: Step) -> bool:
    """A fixed latency within the timeout, no failures, no cross-month share for this step."""
    fixed_s = stage.latency.min_ms / 1000
    return (stage.latency.distribution == "fixed" and stage.failure_rate == 0.0
            and (step is not Step.EMOS or faults.emos_cross_month_share == 0.0)
            and (stage.timeout_s is None or fixed_s <= stage.timeout_s))


def next_month_start(at: datetime) -> datetime:
    """The first instant of the next business month (Asia/Shanghai)."""
    local = ensure_aware(at).astimezone(BUSINESS_TZ)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=BUSINESS_TZ)
