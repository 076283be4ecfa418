"""creditctl collections …: the collections escalation (docs/collections.md "Escalation") from
a terminal: run the phases as of a day, list and show cases, approve associated suspension
(关联停机) for a case (role credit-admin). Plain HTTP calls to credit-control."""

from typing import Annotated, Any

import typer

from . import render
from .commands import main_module
from .output import Output, OutputOption, emit

collections_app = typer.Typer(help="Collections cases: three phases, associated suspension.")


@collections_app.command("run")
def run(ctx: typer.Context,
        as_of: Annotated[str, typer.Option(help="the run's moment, e.g. 2026-05-11T20:00")],
        account: Annotated[list[str] | None, typer.Option(
            help="only this account (repeatable); default: every account")] = None,
        output: OutputOption = Output.table) -> None:
    """Open cases, settle the paid ones, move the others into their phase (idempotent)."""
    m = main_module()
    at = m.parse_as_of(as_of)
    body: dict[str, Any] = {"as_of": at.isoformat()}
    if account:
        body["account_ids"] = account
    with m.api(ctx) as client:
        answer = client.post("credit-control", "/v1/collections/run", body)
    emit(output, answer, lambda yuan: [("collections run", ["field", "value"],
                                        [(k, render.cell(v)) for k, v in answer.items()])],
         console=m.out)


@collections_app.command("cases")
def cases(ctx: typer.Context, status: str | None = None, phase: int | None = None,
          account_id: str | None = None, customer_id: str | None = None,
          output: OutputOption = Output.table) -> None:
    """Collections cases, oldest first."""
    m = main_module()
    with m.api(ctx) as client:
        found = client.get("credit-control", "/v1/collections/cases", {
            "status": status, "phase": phase, "account_id": account_id,
            "customer_id": customer_id})
    emit(output, found, lambda yuan: [("collections cases",
                                       *render.records_table(found, yuan=yuan))],
         console=m.out)


@collections_app.command("show")
def show(ctx: typer.Context, case_id: str, output: OutputOption = Output.table) -> None:
    """One case with its steps and associations."""
    m = main_module()
    with m.api(ctx) as client:
        case = client.get("credit-control", f"/v1/collections/cases/{case_id}")
    emit(output, case, lambda yuan: _sections(case, yuan), console=m.out)


@collections_app.command("associate")
def associate(ctx: typer.Context, case_id: str,
              note: Annotated[str, typer.Option(help="why (required)")],
              as_of: Annotated[str | None, typer.Option(help="date the decisions")] = None,
              output: OutputOption = Output.table) -> None:
    """Approve associated suspension (关联停机) for a case and carry it out (credit-admin)."""
    m = main_module()
    body: dict[str, Any] = {"note": note}
    if as_of is not None:
        body["as_of"] = m.parse_as_of(as_of).isoformat()
    with m.api(ctx) as client:
        case = client.post("credit-control",
                           f"/v1/collections/cases/{case_id}/associated-suspension", body)
    emit(output, case, lambda yuan: _sections(case, yuan), console=m.out)


def _sections(case: dict[str, Any], yuan: bool) -> list[render.Section]:
    head = {k: v for k, v in case.items() if k not in ("steps", "associations")}
    return [("case", ["field", "value"], [(k, render.cell(v)) for k, v in head.items()]),
            ("steps", *render.records_table(case.get("steps", []), yuan=yuan)),
            ("associations", *render.records_table(case.get("associations", []), yuan=yuan))]
