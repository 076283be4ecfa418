"""creditctl red-list … and late-fees …: the red-list review (docs/collections.md "Red-list
review") and late fees (docs/billing.md "Late fees") from a terminal, over HTTP."""

from typing import Annotated, Any

import typer

from . import render
from .commands import main_module
from .output import Output, OutputOption, emit

red_list_app = typer.Typer(help="Red-list review: entries due, renewal, lapse.")
late_fees_app = typer.Typer(help="Late fees (滞纳金): an account's lines, waiver.")


@red_list_app.command("reviews")
def reviews(ctx: typer.Context,
            month: Annotated[str | None, typer.Option(help="YYYY-MM; default this month")]
            = None,
            output: OutputOption = Output.table) -> None:
    """Red-list entries due for review by the end of the month, with arrears and history."""
    m = main_module()
    with m.api(ctx) as client:
        answer = client.get("credit-control", "/v1/red-list/reviews", {"month": month})
    rows = [{k: v for k, v in e.items() if k != "history"} for e in answer["entries"]]
    emit(output, answer, lambda yuan: [(f"red list due by {answer['due_by']}",
                                        *render.records_table(rows, yuan=yuan))],
         console=m.out)


@red_list_app.command("renew")
def renew(ctx: typer.Context, exemption_id: str,
          note: Annotated[str, typer.Option(help="why the customer stays on the red list")],
          review_on: Annotated[str | None, typer.Option(help="next review date YYYY-MM-DD")]
          = None,
          output: OutputOption = Output.table) -> None:
    """Renew a red-list entry until its next review date (role credit-admin)."""
    m = main_module()
    body: dict[str, Any] = {"note": note}
    if review_on:
        body["review_on"] = review_on
    with m.api(ctx) as client:
        answer = client.post("credit-control", f"/v1/red-list/{exemption_id}/renew", body)
    emit(output, answer, lambda yuan: render.fields("renewed", answer), console=m.out)


@red_list_app.command("lapse")
def lapse(ctx: typer.Context,
          as_of: Annotated[str, typer.Option(help="the run's moment")],
          output: OutputOption = Output.table) -> None:
    """Lapse the red-list entries not renewed by their review date."""
    m = main_module()
    at = m.parse_as_of(as_of)
    with m.api(ctx) as client:
        answer = client.post("credit-control", "/v1/red-list/lapse", {"as_of": at.isoformat()})
    emit(output, answer, lambda yuan: [("lapsed", *render.records_table(answer["lapsed"],
                                                                        yuan=yuan))],
         console=m.out)


@late_fees_app.command("list")
def late_fee_lines(ctx: typer.Context, account_id: str,
                   output: OutputOption = Output.table) -> None:
    """An account's late-fee lines."""
    m = main_module()
    with m.api(ctx) as client:
        found = client.get("billing-events", f"/v1/accounts/{account_id}/late-fees")
    emit(output, found, lambda yuan: [("late fees", *render.records_table(found, yuan=yuan))],
         console=m.out)


@late_fees_app.command("waive")
def waive(ctx: typer.Context, line_id: str,
          reason: Annotated[str, typer.Option(help="why it is waived")],
          output: OutputOption = Output.table) -> None:
    """Waive a late-fee line (role credit-admin): an adjustment of its bill."""
    m = main_module()
    with m.api(ctx) as client:
        answer = client.post("billing-events", f"/v1/late-fees/{line_id}/waive",
                             {"reason": reason})
    emit(output, answer, lambda yuan: render.fields("waived", answer["line"]), console=m.out)
