"""`creditctl rating …`: the rating model (seed 004, docs/rating.md) from a terminal: runs,
a customer's rating and history, overrides, the credit-multiple check, the churn scan and
seed 004's reports. Plain HTTP client of credit-control."""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from . import render
from .main import api, out, parse_as_of
from .output import Output, OutputOption, emit

app: typer.Typer = typer.Typer(help="The credit rating model (seed 004): runs, ratings, overrides, "
                  "credit multiples, potential churn, reports.", no_args_is_help=True)
AsOf = Annotated[str | None, typer.Option(
    help="business time: YYYY-MM-DD or an ISO-8601 timestamp (default: now)")]
REPORTS = ("stars", "suspension-time", "emergency-recovery", "churn-rate")


def _show(output: Output, answer: Any, title: str,
          records: Sequence[Mapping[str, Any]]) -> None:
    rows = list(records) or [{"": "(none)"}]
    emit(output, answer, lambda yuan: [(title, *render.records_table(rows, yuan=yuan))],
         console=out)


def _as_of(as_of: str | None) -> dict[str, Any]:
    return {"as_of": parse_as_of(as_of).isoformat()} if as_of else {}


@app.command("run")
def run(ctx: typer.Context,
        model: Annotated[str, typer.Argument(help="basic (monthly) or guidance (half-yearly)")],
        as_of: AsOf = None, output: OutputOption = Output.table) -> None:
    """Run a model for the period of `as_of`; again for the same period changes nothing."""
    with api(ctx) as client:
        answer = client.post("credit-control", "/v1/ratings/runs",
                             {"model": model, **_as_of(as_of)})
    _show(output, answer, f"rating run {answer.get('run_id')}", [answer])


@app.command("show")
def show(ctx: typer.Context, customer_id: str, output: OutputOption = Output.table) -> None:
    """A customer's rating and every change with its reason."""
    with api(ctx) as client:
        answer = client.get("credit-control", f"/v1/ratings/{customer_id}")
    history = [{k: h.get(k) for k in ("at", "model", "period", "star_before", "star_after",
                                      "limit_before_fen", "limit_after_fen", "score", "reason")}
               for h in answer.get("history", [])]
    _show(output, answer, f"rating of {customer_id}", history)


@app.command("override")
def override(ctx: typer.Context, customer_id: str,
             override_id: Annotated[str, typer.Option(help="your id for it (idempotent)")],
             star: Annotated[int | None, typer.Option(help="0–5; omit for unrated")],
             reason: Annotated[str, typer.Option()],
             expires: Annotated[str, typer.Option(help="when it ends (YYYY-MM-DD or ISO)")],
             limit_fen: Annotated[int | None, typer.Option(help="default: the star's")] = None,
             output: OutputOption = Output.table) -> None:
    """Override a customer's rating until a date, with a reason (credit-admin)."""
    body = {"override_id": override_id, "star_level": star, "reason": reason,
            "expires_at": parse_as_of(expires).isoformat(),
            **({"limit_fen": limit_fen} if limit_fen is not None else {})}
    with api(ctx) as client:
        answer = client.post("credit-control", f"/v1/ratings/{customer_id}/overrides", body)
    _show(output, answer, "override", [answer])


@app.command("multiples")
def check_multiples(ctx: typer.Context, as_of: AsOf = None,
                    output: OutputOption = Output.table) -> None:
    """Run the day's credit-multiple check and list its findings (信控倍数)."""
    with api(ctx) as client:
        done = client.post("credit-control", "/v1/credit-multiples/checks", _as_of(as_of))
        found = client.get("credit-control", "/v1/credit-multiples",
                           {"check_date": done["check_date"]})
    _show(output, found, f"credit multiples {done['check_date']} (above "
          f"{done['max_multiple']}× the average bill)", found)


@app.command("churn")
def churn_scan(ctx: typer.Context, as_of: AsOf = None,
               output: OutputOption = Output.table) -> None:
    """Scan for potential churn and list the open revisit tasks."""
    with api(ctx) as client:
        client.post("credit-control", "/v1/churn/scans", _as_of(as_of))
        found = client.get("credit-control", "/v1/churn/entries", {"status": "open"})
    _show(output, found, "potential churn (open revisits)", found)


@app.command("report")
def report(ctx: typer.Context,
           name: Annotated[str, typer.Argument(help=", ".join(REPORTS))],
           month: Annotated[str | None, typer.Option(help="YYYY-MM (not for stars)")] = None,
           output: OutputOption = Output.table) -> None:
    """One of seed 004's reports."""
    if name not in REPORTS:
        raise typer.BadParameter(f"one of {', '.join(REPORTS)}")
    with api(ctx) as client:
        answer = client.get("credit-control", f"/v1/reports/{name}",
                            {"month": month} if month else None)
    _show(output, answer, f"{name} {month or ''}".strip(), answer.get("rows", []))
