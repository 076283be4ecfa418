"""The simulation clock over HTTP (docs/simulation-clock.md): look (ops-viewer), move forward
(credit-admin). Without CREDIT_SIMULATION_CLOCK=true a move is refused (409) and GET says
the clock is the wall clock's."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from common.auth import Principal, require
from common.auth import Role as Access

from ...service_layer.context import CreditContext
from ..domain.clock import AdvanceClock
from ..service_layer import clock

CreditAdmin = Annotated[Principal, Depends(require(Access.CREDIT_ADMIN))]


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter()

    @api.get("/clock")
    async def show_clock() -> dict[str, Any]:
        """Business time now: the simulation clock's reading, offset and latest move when it
        is on; the wall clock (and how to turn it on) when it is off."""
        return await clock.show(ctx)

    @api.post("/clock/advance", status_code=201, responses={
        409: {"description": "the simulation clock is off (CREDIT_SIMULATION_CLOCK), or the "
                             "move_id was used with another body"}})
    async def advance_clock(cmd: AdvanceClock, caller: CreditAdmin) -> JSONResponse:
        """Move the simulation clock forward, `to` a business time or by days/hours/minutes
        (never back: 422). Every service started with the setting follows within a second;
        the scheduler's sweeps due by then run by themselves."""
        stored = await clock.advance(ctx, cmd.model_copy(update={"moved_by": caller.subject}))
        return JSONResponse(jsonable_encoder(stored.body), status_code=stored.status_code)

    return api
