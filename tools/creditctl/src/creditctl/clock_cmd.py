"""creditctl clock …: the simulation clock (docs/simulation-clock.md) from a terminal, over
HTTP: look at business time, move it forward (role credit-admin)."""

import uuid
from typing import Annotated, Any

import typer

from . import render
from .commands import main_module
from .output import Output, OutputOption, emit

clock_app = typer.Typer(help="The simulation clock: show business time, move it forward.")


@clock_app.command("show")
def show(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Business time now: the simulation clock's reading and offset, or the wall clock."""
    m = main_module()
    with m.api(ctx) as client:
        answer = client.get("credit-control", "/v1/clock")
    emit(output, answer, lambda yuan: render.fields(
        "SIMULATED TIME" if answer.get("simulation_clock") else "wall clock", answer),
        console=m.out)


@clock_app.command("advance")
def advance(ctx: typer.Context,
            reason: Annotated[str, typer.Option(help="why the clock moves (kept with it)")],
            to: Annotated[str | None, typer.Option(
                help="a business time, ISO-8601 (2026-11-25T20:01:00+08:00)")] = None,
            days: Annotated[float, typer.Option(help="or move by days")] = 0,
            hours: Annotated[float, typer.Option(help="and hours")] = 0,
            minutes: Annotated[float, typer.Option(help="and minutes")] = 0,
            move_id: Annotated[str | None, typer.Option(
                help="the move's id (sending it again moves once); default a new one")] = None,
            output: OutputOption = Output.table) -> None:
    """Move the simulation clock forward, never back (role credit-admin; the services must
    run with <PREFIX>SIMULATION_CLOCK=true)."""
    m = main_module()
    body: dict[str, Any] = {"move_id": move_id or f"cli-{uuid.uuid4().hex[:12]}",
                            "reason": reason}
    if to is not None:
        body["to"] = to
    body.update({k: v for k, v in {"days": days, "hours": hours, "minutes": minutes}.items()
                 if v})
    with m.api(ctx) as client:
        answer = client.post("credit-control", "/v1/clock/advance", body)
    emit(output, answer, lambda yuan: render.fields("moved", answer), console=m.out)
