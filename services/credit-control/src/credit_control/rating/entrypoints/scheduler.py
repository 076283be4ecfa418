"""The rating model's scheduled work, on credit-control's in-process scheduler (on when
`scheduler_enabled`): every tick, as of the clock, whatever is due and not yet done.

- the basic model for the month, from the RUN_DAY-th (after the month's bill run, which
  billing does on the 2nd in the seeds' calendar, so last month's bill is in);
- the guidance model for the half-year, from the RUN_DAY-th of January and July;
- the day's credit-multiple check and potential-churn scan.

Each is idempotent for its period (month, half-year, day), so a tick after a restart, or a
second instance, runs nothing twice; a month missed while the service was down is run on the
first tick of the month after the RUN_DAY-th, a half-year likewise on any day of it."""

import asyncio
import logging
from datetime import date, datetime
from typing import Any

from common.clock import business_date
from common.poll_loop import PollLoop
from common.simulation import wake_on_move

from ...service_layer.context import CreditContext
from ..service_layer import churn, multiples, runs

log = logging.getLogger(__name__)
RUN_DAY = 5
ACTOR = "scheduler"


async def run_due(ctx: CreditContext, now: datetime, daily_done: date | None = None
                  ) -> list[str]:
    """What is due as of `now`; the daily check and scan only when `daily_done` (the day they
    last ran in this process) is not today: they read every profile and a year of history, so
    once a day, not once a tick (a restart runs them again: both are idempotent)."""
    day = business_date(now)
    done: list[str] = []
    if day.day >= RUN_DAY:
        done.append((await runs.run(ctx, "basic", now, ACTOR))["run_id"])
    if day.day >= RUN_DAY or day.month not in (1, 7):
        done.append((await runs.run(ctx, "guidance", now, ACTOR))["run_id"])
    if daily_done != day:
        await multiples.check(ctx, now)
        await churn.scan(ctx, now)
        done.append(f"daily:{day.isoformat()}")
    return done


def scheduler(ctx: CreditContext) -> Any:
    async def rating_schedule(stop: asyncio.Event) -> None:
        daily_done: date | None = None

        async def step() -> bool:
            nonlocal daily_done
            now = ctx.clock.now()
            await run_due(ctx, now, daily_done)
            daily_done = business_date(now)
            return False

        await PollLoop("rating scheduler", step, idle_s=ctx.settings.scheduler_tick_s,
                       backoff_min_s=1.0, backoff_max_s=60.0,
                       wake=wake_on_move(ctx.clock)).run(stop)

    return rating_schedule
