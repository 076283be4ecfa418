"""`creditctl rules what-if`: replay a past month under the current rule table and a draft
(issue 19, docs/credit-control.md "What-if replay"). Plain HTTP client of credit-control."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from . import render
from .client import CliError
from .main import api, out, parse_as_of
from .output import Output, OutputOption, emit

app: typer.Typer = typer.Typer(help="The rule table: what-if replay of a change.",
                               no_args_is_help=True)


def draft_rows(path: Path) -> list[Any]:
    """The draft's rows from a JSON file: a list of rows, or an object with `rows` (what
    `GET /v1/rules` answers, edited)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the draft {path}: {exc}") from exc
    rows = body.get("rows") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise CliError(f"{path}: expected a list of rule rows or an object with 'rows'")
    return rows


def sections(answer: dict[str, Any], yuan: bool) -> list[render.Section]:
    summary = {k: answer.get(k) for k in ("month", "channel", "current_version",
                                          "draft_version", "accounts", "products_replayed",
                                          "same")}
    cur, new = answer["current"], answer["draft"]
    side_rows = [{"figure": k, "current": cur[k], "draft": new[k]}
                 for k in ("arrears_at_month_end_fen", "suspended_arrears_at_month_end_fen",
                           "suspended_at_month_end", "deductions_fen")]
    sms = [{"template": t, "current": cur["sms_per_template"].get(t, 0),
            "draft": new["sms_per_template"].get(t, 0)}
           for t in sorted({*cur["sms_per_template"], *new["sms_per_template"]})]
    days = [{"day": d, "current": cur["suspended_per_day"].get(d, 0),
             "draft": new["suspended_per_day"].get(d, 0)}
            for d in sorted({*cur["suspended_per_day"], *new["suspended_per_day"]})]
    return [
        ("what-if", ["field", "value"], [(k, render.cell(v)) for k, v in summary.items()]),
        ("products that change", *render.records_table(answer["products"] or [{"": "(none)"}],
                                                       yuan=yuan)),
        ("SMS per template", *render.records_table(sms or [{"": "(none)"}], yuan=yuan)),
        ("suspended per day", *render.records_table(days or [{"": "(none)"}], yuan=yuan)),
        ("month end", *render.records_table(side_rows, yuan=yuan)),
    ]


@app.command("what-if")
def what_if(ctx: typer.Context,
            month: Annotated[str, typer.Option(help="the past month to replay, YYYY-MM")],
            draft: Annotated[Path | None, typer.Option(
                help="JSON file: the draft's rows (or GET /v1/rules's answer, edited)")] = None,
            version: Annotated[int | None, typer.Option(
                help="a stored rule table version as the draft, instead of --draft")] = None,
            channel: Annotated[str | None, typer.Option(help="only this sales channel")]
            = None,
            as_of: Annotated[str | None, typer.Option(
                help="business time of the question (default: now)")] = None,
            output: OutputOption = Output.table) -> None:
    """Replay MONTH under the current rules and the draft; show who would be warned or
    suspended earlier or later, SMS per template, suspensions per day, month-end arrears.
    Nothing is changed."""
    with api(ctx) as client:  # a CliError (bad draft file) is reported like the API's
        body = request(month, draft, version, channel, as_of)
        answer = client.post("credit-control", "/v1/rules/what-if", body)
    emit(output, answer, lambda yuan: sections(answer, yuan), console=out)


def request(month: str, draft: Path | None, version: int | None, channel: str | None,
            as_of: str | None) -> dict[str, Any]:
    if (draft is None) == (version is None):
        raise CliError("give the draft as --draft FILE or --version N, exactly one")
    body: dict[str, Any] = {"month": month}
    if draft is not None:
        body["rows"] = draft_rows(draft)
    else:
        body["version"] = version
    if channel:
        body["channel"] = channel
    if as_of:
        body["as_of"] = parse_as_of(as_of).isoformat()
    return body
