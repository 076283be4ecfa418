"""The simulation clock's moves (docs/simulation-clock.md): where a move may take business
time. Pure: the current offset and the wall clock's reading are parameters."""

from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.clock import SIMULATION_CEILING, IsoMoment, ensure_aware

from ...credit.domain.commands import NO_NUL, ByToken

# A month of demo in one move at most a few years: beyond, a typo (days for hours) is likelier.
MAX_DAYS = 3660.0


class ClockRefusal(ValueError):
    """A move the clock does not make (backwards, nowhere, past the ceiling)."""


class AdvanceClock(BaseModel):
    """Move the simulation clock forward: `to` a business time, or `by` days/hours/minutes.
    `move_id` is the client's id: the same move sent again is answered once."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    move_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    to: IsoMoment | None = None
    days: Annotated[float, Field(ge=0, le=MAX_DAYS)] = 0
    hours: Annotated[float, Field(ge=0, le=MAX_DAYS * 24)] = 0
    minutes: Annotated[float, Field(ge=0, le=MAX_DAYS * 24 * 60)] = 0
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
    moved_by: ByToken = ""

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.to is None) == (self.by == timedelta(0)):
            raise ValueError("give either `to` (a business time) or a positive `days`, "
                             "`hours` or `minutes`, not both and not neither")
        return self

    @property
    def by(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


def target_offset(current: timedelta, wall_now: datetime, to: datetime | None,
                  by: timedelta) -> timedelta:
    """The offset after the move: `to` − wall now, or `current` + `by`. Refused when it would
    not move the clock forward or would reach the simulation ceiling."""
    if to is not None:
        to = ensure_aware(to)
        offset = to - wall_now
        if offset <= current:
            raise ClockRefusal(
                f"{to.isoformat()} is not ahead of the simulated now "
                f"{(wall_now + current).isoformat()}: the simulation clock only moves forward")
    else:
        if by <= timedelta(0):
            raise ClockRefusal("a move must be forward, by more than nothing")
        offset = current + by
    if wall_now + offset >= SIMULATION_CEILING:
        raise ClockRefusal(f"business time may not reach {SIMULATION_CEILING.year}")
    return offset
