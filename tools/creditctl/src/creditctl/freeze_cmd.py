"""creditctl freeze …: scoped emergency freezes (紧急冻结, docs/credit-control.md "Scoped
emergency freezes") from a terminal, over HTTP: list, show, what one held back, make one and
end one (a credit-admin's token for the last two)."""

from typing import Annotated, Any

import typer

from . import render
from .commands import main_module
from .output import Output, OutputOption, emit

freeze_app = typer.Typer(help="Scoped emergency freezes: no automatic suspension for a scope.")


@freeze_app.command("list")
def list_freezes(ctx: typer.Context,
                 active_at: Annotated[str | None, typer.Option(
                     help="only those in force at this moment")] = None,
                 limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
                 output: OutputOption = Output.table) -> None:
    """Freezes, newest first."""
    m = main_module()
    params: dict[str, Any] = {"limit": limit}
    if active_at:
        params["active_at"] = m.parse_as_of(active_at).isoformat()
    with m.api(ctx) as client:
        found = client.get("credit-control", "/v1/freezes", params)
    emit(output, found, lambda yuan: [("freezes", *render.records_table(found, yuan=yuan))],
         console=m.out)


@freeze_app.command("show")
def show(ctx: typer.Context, freeze_id: str, output: OutputOption = Output.table) -> None:
    """One freeze, with how many products it held back per decision."""
    m = main_module()
    with m.api(ctx) as client:
        found = client.get("credit-control", f"/v1/freezes/{freeze_id}")
    emit(output, found, lambda yuan: render.fields(f"freeze {freeze_id}", found), console=m.out)


@freeze_app.command("holds")
def holds(ctx: typer.Context, freeze_id: str,
          limit: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
          output: OutputOption = Output.table) -> None:
    """What a freeze held back: product, decision, first and last day, amount due."""
    m = main_module()
    with m.api(ctx) as client:
        found = client.get("credit-control", f"/v1/freezes/{freeze_id}/holds",
                           {"limit": limit})
    emit(output, found, lambda yuan: [(f"held back by {freeze_id}",
                                       *render.records_table(found, yuan=yuan))],
         console=m.out)


@freeze_app.command("add")
def add(ctx: typer.Context, freeze_id: str,
        scope: Annotated[str, typer.Option(
            help="all, family, tier, star_level, vendor, channel, customer or region "
                 "(区县分公司, e.g. 南城)")],
        reason: Annotated[str, typer.Option(help="what happened (a billing error, a fault…)")],
        approver: Annotated[str, typer.Option(help="who approved it (not yourself)")],
        until: Annotated[str, typer.Option(help="when it expires (at most 31 days)")],
        value: Annotated[str | None, typer.Option(help="the scope's value, e.g. MAS")] = None,
        starts_at: Annotated[str | None, typer.Option(help="default: now")] = None,
        warnings: Annotated[bool, typer.Option(
            help="hold the suspension warnings back too")] = False,
        output: OutputOption = Output.table) -> None:
    """Freeze automatic suspensions for a scope (role credit-admin); the same id and values
    again is the same freeze."""
    m = main_module()
    body: dict[str, Any] = {"freeze_id": freeze_id, "scope": scope, "reason": reason,
                            "approver": approver, "covers_warnings": warnings,
                            "until": m.parse_as_of(until).isoformat()}
    if value is not None:
        body["value"] = value
    if starts_at:
        body["starts_at"] = m.parse_as_of(starts_at).isoformat()
    with m.api(ctx) as client:
        answer = client.post("credit-control", "/v1/freezes", body)
    emit(output, answer, lambda yuan: render.fields("freeze made", answer), console=m.out)


@freeze_app.command("end")
def end(ctx: typer.Context, freeze_id: str,
        reason: Annotated[str, typer.Option(help="why it ends (fault repaired, …)")],
        at: Annotated[str | None, typer.Option(help="default: now")] = None,
        output: OutputOption = Output.table) -> None:
    """End a freeze (role credit-admin): what it held back is warned again, with a full
    notice period, before any suspension."""
    m = main_module()
    body: dict[str, Any] = {"reason": reason}
    if at:
        body["at"] = m.parse_as_of(at).isoformat()
    with m.api(ctx) as client:
        answer = client.post("credit-control", f"/v1/freezes/{freeze_id}/end", body)
    emit(output, answer, lambda yuan: render.fields("freeze ended", answer), console=m.out)
