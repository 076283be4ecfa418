"""creditctl: what operations staff do from a terminal, over the services' HTTP APIs.

Every command but import-csv/generate is a plain HTTP client (URLs and token from options or
CREDITCTL_* variables); bulk load runs billing's own loader (see bulk.py for why)."""

import csv
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console

from common.clock import BUSINESS_TZ, IsoMoment

from . import bulk, render
from .client import Api, CliError, Endpoints, error_for, is_missing_route

app = typer.Typer(help="Credit control from the terminal, over the services' HTTP APIs.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sweep_app = typer.Typer(help="Run a sweep as of a day; confirm one the guard held.")
app.add_typer(sweep_app, name="sweep")
out = Console(soft_wrap=True)
err = Console(stderr=True)
# Read as the API reads it; whether it may run ahead of the clock is the service's to judge
# (simulation mode), so the CLI checks only the shape and the years 2000..8999.
_AS_OF: TypeAdapter[datetime] = TypeAdapter(IsoMoment)
REPORTS = ("arrears", "recovery", "aging", "kpis", "states")


@app.callback()
def main(
    ctx: typer.Context,
    billing_url: Annotated[str, typer.Option(envvar="CREDITCTL_BILLING_URL")]
    = "http://127.0.0.1:8101",
    credit_url: Annotated[str, typer.Option(envvar="CREDITCTL_CREDIT_URL")]
    = "http://127.0.0.1:8102",
    notifier_url: Annotated[str, typer.Option(envvar="CREDITCTL_NOTIFIER_URL")]
    = "http://127.0.0.1:8103",
    gateway_url: Annotated[str, typer.Option(envvar="CREDITCTL_GATEWAY_URL")]
    = "http://127.0.0.1:8104",
    token: Annotated[str, typer.Option(envvar="CREDITCTL_TOKEN", help="bearer token")]
    = "dev-token",
    timeout: Annotated[float, typer.Option(envvar="CREDITCTL_TIMEOUT_S", min=1)] = 300.0,
) -> None:
    """Credit control from the terminal (URLs and token: options or CREDITCTL_* variables)."""
    ctx.obj = Endpoints(billing_url, credit_url, notifier_url, gateway_url, token, timeout)


@contextmanager
def api(ctx: typer.Context) -> Iterator[Api]:
    """The services' client; a CliError becomes its message on stderr and its exit code."""
    client = Api(ctx.find_root().obj)
    try:
        yield client
    except CliError as exc:
        err.print(f"[red]error:[/red] {exc.message}", markup=True, highlight=False)
        raise typer.Exit(exc.exit_code) from exc
    finally:
        client.close()


# --- bulk ------------------------------------------------------------------------------------

DatabaseUrl = Annotated[str | None, typer.Option(
    envvar="CREDITCTL_BILLING_DATABASE_URL",
    help="billing's database (default: BILLING_DATABASE_URL as billing reads it)")]


@app.command("import-csv")
def import_csv(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False,
                                                help="CSV files, loaded in the order given")],
    rejected: Annotated[Path | None, typer.Option(help="also write rejected rows here")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Load customers, accounts, products, charges or payments (billing's loader, with its
    progress bar). Exit 2 when some rows were rejected."""
    code = _billing(bulk.import_args(files, rejected), database_url)
    if code:
        raise typer.Exit(code)


@app.command()
def generate(
    groups: Annotated[int, typer.Option(min=1, help="number of group customers")] = 1000,
    seed: Annotated[int, typer.Option(help="same seed, same base")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", file_okay=False)] = Path("synthetic"),
    first_month: Annotated[str, typer.Option(help="first bill month, YYYY-MM")] = "2011-09",
    months: Annotated[int, typer.Option(min=1, max=24)] = 3,
    arrears_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.0038,
    load: Annotated[bool, typer.Option(help="import the files right after")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Write a synthetic base as CSVs in load order; with --load, import them too."""
    args = ["generate", "--groups", str(groups), "--seed", str(seed), "--out", str(out_dir),
            "--first-month", first_month, "--months", str(months),
            "--arrears-rate", str(arrears_rate)]
    code = _billing(args, database_url)
    if code == 0 and load:
        code = _billing(bulk.import_args(bulk.load_order(out_dir), None), database_url)
    if code:
        raise typer.Exit(code)


def _billing(args: list[str], database_url: str | None) -> int:
    try:
        return bulk.run_billing(args, database_url)
    except CliError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        return exc.exit_code


# --- sweeps ----------------------------------------------------------------------------------

def parse_as_of(text: str) -> datetime:
    """The API's reading (common.clock.BusinessTime), so a date means one moment everywhere:
    a date alone is 00:00 Asia/Shanghai, the start of that business day; a naive timestamp is
    Asia/Shanghai wall time; only ISO-8601 (no Unix seconds)."""
    try:
        return _AS_OF.validate_python(text)
    except ValidationError as exc:
        raise typer.BadParameter(f"expected YYYY-MM-DD or an ISO-8601 timestamp, got {text!r}") \
            from exc


@sweep_app.callback(invoke_without_command=True)
def sweep(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option(
        help="business time: YYYY-MM-DD (00:00 Asia/Shanghai) or an ISO-8601 timestamp; "
             "the scheduler's own sweep is at 20:00")] = None,
    sweep_id: Annotated[str | None, typer.Option(help="the same id again replays the answer")]
    = None,
) -> None:
    """`creditctl sweep --as-of 2026-12-31`: evaluate the calendar rules as of that day."""
    if ctx.invoked_subcommand:
        return
    if as_of is None:
        raise typer.BadParameter("give --as-of (or a subcommand: confirm, holds)")
    at = parse_as_of(as_of)
    body = {"sweep_id": sweep_id or f"cli-{at.date().isoformat()}-{uuid.uuid4().hex[:8]}",
            "as_of": at.isoformat()}
    with api(ctx) as client, err.status(f"sweeping as of {at.isoformat()} …"):
        answer = client.post("credit-control", "/v1/sweeps", body)
    _show_sweep(answer)


def _show_sweep(answer: dict[str, Any]) -> None:
    counts = answer.get("decisions") or {}
    rows = [(k, str(v)) for k, v in sorted(counts.items())] or [("(none)", "0")]
    out.print(render.table(
        f"sweep {answer.get('sweep_id')} as of {answer.get('business_date')} "
        f"(rules v{answer.get('rule_version')})", ["decision", "count"], rows))
    held = answer.get("held")
    if held:
        out.print("[yellow]held by the mass-suspension guard:[/yellow] no product was "
                  "suspended.")
        out.print(render.table("hold", ["field", "value"],
                               [(k, render.cell(v)) for k, v in held.items()]))
        out.print(f"release it with: creditctl sweep confirm {answer.get('sweep_id')}")


@sweep_app.command("confirm")
def confirm_sweep(
    ctx: typer.Context,
    sweep_id: str,
    by: Annotated[str | None, typer.Option(
        help="who confirms; services that attribute by token record the token's subject")]
    = None,
    note: str = "",
) -> None:
    """Release a sweep the mass-suspension guard held (role credit-admin)."""
    with api(ctx) as client, err.status(f"confirming sweep {sweep_id} …"):
        answer = client.post("credit-control", f"/v1/sweeps/{sweep_id}/confirm",
                             {"note": note, **({"confirmed_by": by} if by else {})})
    _show_sweep(answer)


@sweep_app.command("holds")
def sweep_holds(ctx: typer.Context, status: str | None = None) -> None:
    """Sweeps the guard is holding (or held)."""
    with api(ctx) as client:
        holds = client.get("credit-control", "/v1/sweeps/holds", {"status": status})
    columns, rows = render.records_table(holds)
    out.print(render.table("sweep holds", columns, rows))


# --- views -----------------------------------------------------------------------------------

@app.command()
def timeline(ctx: typer.Context, product_id: str) -> None:
    """A product's decisions and state changes, oldest first (the explain view)."""
    with api(ctx) as client:
        credit = client.get("credit-control", f"/v1/products/{product_id}/credit")
    facts = credit.get("facts") or {}
    since = render.when(credit.get("state_changed_at"))
    out.print(f"[bold]{product_id}[/bold] {credit.get('family')}  state "
              f"[bold]{credit.get('state')}[/bold] since {since}"
              f"  amount due {render.yuan(facts.get('amount_due_fen'))}"
              f"  balance {render.yuan(facts.get('balance_fen'))}")
    out.print(render.table("timeline", render.TIMELINE_COLUMNS, render.timeline_rows(credit)))
    if credit.get("work_orders"):
        columns, rows = render.records_table(
            [{k: w.get(k) for k in ("work_order_id", "action", "status", "role", "due_at")}
             for w in credit["work_orders"]])
        out.print(render.table("work orders", columns, rows))


@app.command("work-orders")
def work_orders(
    ctx: typer.Context,
    overdue: Annotated[bool, typer.Option(help="only open ones past their due time")] = False,
    status: str | None = None,
    product_id: str | None = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
) -> None:
    """Manual work orders (suspend/restore by hand), oldest first."""
    params = {"status": status, "product_id": product_id, "limit": limit,
              "overdue_at": datetime.now(BUSINESS_TZ).isoformat() if overdue else None}
    with api(ctx) as client:
        orders = client.get("credit-control", "/v1/work-orders", params)
    keep = ("work_order_id", "product_id", "action", "status", "role", "assignee", "due_at",
            "reason")
    columns, rows = render.records_table([{k: w.get(k) for k in keep} for w in orders])
    out.print(render.table(f"work orders ({len(orders)})", columns, rows))


@app.command()
def chain(ctx: typer.Context, product_id: str) -> None:
    """Where a product stands in BOSS → EMOS → gateway, and its command attempts."""
    with api(ctx) as client:
        view = client.get("gateway-adapter", f"/v1/products/{product_id}/chain")
    boss, gateway = view.get("boss") or {}, view.get("gateway") or {}
    orders = (view.get("emos") or {}).get("orders") or []
    out.print(render.table(
        f"{product_id} {view.get('family')} {view.get('vendor') or ''} (cpno {view.get('cpno')})",
        ["stage", "status", "sequence", "updated"],
        [("boss", render.cell(boss.get("status")), render.cell(boss.get("sequence")),
          render.when(boss.get("updated_at"))),
         ("emos", render.cell(orders[-1].get("status") if orders else None),
          render.cell(orders[-1].get("sequence") if orders else None),
          render.when(orders[-1].get("updated_at") if orders else None)),
         ("gateway", "blocked" if gateway.get("blocked") else "open",
          render.cell(gateway.get("sequence")), render.when(gateway.get("updated_at")))]))
    if view.get("attempts"):
        keep = ("command_id", "action", "sequence", "attempt", "outcome", "received_at")
        columns, rows = render.records_table(
            [{k: a.get(k) for k in keep} for a in view["attempts"]])
        out.print(render.table("attempts", columns, rows))


# --- reports ---------------------------------------------------------------------------------

@app.command()
def report(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=f"one of {', '.join(REPORTS)}")],
    month: Annotated[str, typer.Option(help="bill month, YYYY-MM")],
    as_of: Annotated[str | None, typer.Option(help="business day, YYYY-MM-DD")] = None,
    by: Annotated[str | None, typer.Option(help="family, tier or channel")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout")] = False,
    source: Annotated[str, typer.Option(
        help="auto: credit-control's report, else (arrears) billing's receivables")] = "auto",
) -> None:
    """A monthly report: credit-control's GET /v1/reports/{name}; for arrears, billing's
    receivables when credit-control has no such report (or with --source billing)."""
    if name not in REPORTS:
        raise typer.BadParameter(f"unknown report {name!r}; one of {', '.join(REPORTS)}")
    if source not in ("auto", "credit-control", "billing"):
        raise typer.BadParameter("--source is auto, credit-control or billing")
    with api(ctx) as client:
        title, sections = _report(client, name, month, as_of, by, source)
    if as_csv:
        _write_csv(sections)
        return
    for section, columns, rows in sections:
        out.print(render.table(f"{title} {section}".strip(), columns, rows))


def _report(client: Api, name: str, month: str, as_of: str | None, by: str | None,
            source: str) -> tuple[str, list[tuple[str, list[str], list[render.Row]]]]:
    if source != "billing":
        response = client.call("credit-control", "GET", f"/v1/reports/{name}", check=False,
                               params={"month": month, "as_of": as_of, "by": by})
        if response.status_code < 400:
            return f"{name} {month}", render.report_sections(response.json())
        if not (is_missing_route(response) and name == "arrears" and source == "auto"):
            raise error_for("credit-control", "GET", f"/v1/reports/{name}", response)
        err.print("credit-control has no arrears report here: reading billing's receivables")
    if name != "arrears":
        raise CliError(f"billing serves only the arrears figures, not {name!r}")
    body = client.get("billing-events", "/v1/receivables",
                      {"bill_month": month, "as_of": as_of, "by": by})
    lines = render.arrears_from_receivables(body)
    columns, rows = render.records_table(lines)
    return f"arrears {month} (billing receivables)", [("", columns, rows)]


def _write_csv(sections: list[tuple[str, list[str], list[render.Row]]]) -> None:
    writer = csv.writer(sys.stdout)
    for i, (section, columns, rows) in enumerate(sections):
        if i:
            writer.writerow([])
        if section:
            writer.writerow([f"# {section}"])
        writer.writerow(columns)
        writer.writerows(rows)


if __name__ == "__main__":
    app()
