"""creditctl promise …: promises to pay (承诺缴费, docs/collections.md "Promises to pay") from a
terminal: record one on a worklist entry, list them, show one. Plain HTTP calls to
credit-control; the limits (days ahead, promises a year, who may approve a longer one) are
the service's."""

from typing import Annotated, Any

import typer

from . import render
from .commands import main_module
from .output import Output, OutputOption, emit

promise_app = typer.Typer(help="Promises to pay on worklist entries: add, list, show.")


def _instalment(text: str) -> dict[str, Any]:
    day, _, fen = text.partition("=")
    if not day or not fen.isdigit():
        raise typer.BadParameter(f"expected YYYY-MM-DD=FEN, got {text!r}")
    return {"due_on": day, "amount_fen": int(fen)}


@promise_app.command("add")
def add(ctx: typer.Context, entry_id: str,
        promise_id: Annotated[str, typer.Option(help="your idempotency key for this promise")],
        date: Annotated[str, typer.Option(help="the promised date, YYYY-MM-DD")],
        amount_fen: Annotated[int, typer.Option(help="the promised amount in fen")],
        reason: Annotated[str, typer.Option(help="why the customer asks for time")],
        instalment: Annotated[list[str] | None, typer.Option(
            help="YYYY-MM-DD=FEN, repeatable; they add up to the amount, the last on the "
                 "promised date")] = None,
        note: str = "",
        at: Annotated[str | None, typer.Option(help="when it was made (default now)")] = None,
        output: OutputOption = Output.table) -> None:
    """Record a promise to pay on a worklist entry: it defers the account's suspension."""
    m = main_module()
    body: dict[str, Any] = {"promise_id": promise_id, "promised_date": date,
                            "amount_fen": amount_fen, "reason": reason, "note": note,
                            "instalments": [_instalment(i) for i in instalment or []]}
    if at is not None:
        body["at"] = m.parse_as_of(at).isoformat()
    with m.api(ctx) as client:
        made = client.post("credit-control", f"/v1/worklists/{entry_id}/promises", body)
    emit(output, made, lambda yuan: _one(made), console=m.out)


@promise_app.command("list")
def listed(ctx: typer.Context, status: str | None = None, account_id: str | None = None,
           manager: str | None = None, entry_id: str | None = None,
           output: OutputOption = Output.table) -> None:
    """Promises, newest first (status open, kept or broken)."""
    m = main_module()
    with m.api(ctx) as client:
        found = client.get("credit-control", "/v1/promises", {
            "status": status, "account_id": account_id, "manager": manager,
            "entry_id": entry_id})
    emit(output, found, lambda yuan: [("promises", *render.records_table(found, yuan=yuan))],
         console=m.out)


@promise_app.command("show")
def show(ctx: typer.Context, promise_id: str, output: OutputOption = Output.table) -> None:
    """One promise: its schedule, what was paid towards it, until when it defers."""
    m = main_module()
    with m.api(ctx) as client:
        found = client.get("credit-control", f"/v1/promises/{promise_id}")
    emit(output, found, lambda yuan: _one(found), console=m.out)


def _one(promise: dict[str, Any]) -> list[Any]:
    return [("promise", ["field", "value"],
             [(k, render.cell(v)) for k, v in promise.items()])]
