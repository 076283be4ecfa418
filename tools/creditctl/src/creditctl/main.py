"""creditctl: what operations staff do from a terminal, over the services' HTTP APIs.

Every command but import-csv/generate is a plain HTTP client (URLs and token from options or
CREDITCTL_* variables); bulk load runs billing's own loader (see bulk.py for why)."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape

from common.clock import BUSINESS_TZ, IsoMoment

from . import bulk, collections_cmd, freeze_cmd, mas_send, promise_cmd, red_list_cmd, render
from .client import Api, CliError, Endpoints, error_for, is_missing_route
from .output import Output, OutputOption, emit

app = typer.Typer(help="Credit control from the terminal, over the services' HTTP APIs.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
sweep_app = typer.Typer(help="Run a sweep as of a day; confirm one the guard held.")
app.add_typer(sweep_app, name="sweep")
app.command("mas-send")(mas_send.mas_send)
out = Console(soft_wrap=True)
err = Console(stderr=True)
# Read as the API reads it; whether it may run ahead of the clock is the service's to judge
# (simulation mode), so the CLI checks only the shape and the years 2000..8999.
_AS_OF: TypeAdapter[datetime] = TypeAdapter(IsoMoment)
REPORTS = ("arrears", "recovery", "aging", "kpis", "states")
# Work orders someone still has to act on (a failed one too: the product is not where it
# should be); done and cancelled ones are hidden unless --all or --status asks for them.
OPEN_WORK_ORDERS = ("created", "assigned", "failed")


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


def fail(exc: CliError) -> None:
    """One line on stderr (never a traceback); the exit code tells the kind apart."""
    err.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)


@contextmanager
def api(ctx: typer.Context) -> Iterator[Api]:
    """The services' client; a CliError becomes its message on stderr and its exit code."""
    client = Api(ctx.find_root().obj)
    try:
        yield client
    except CliError as exc:
        fail(exc)
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
        fail(exc)
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
    output: OutputOption = Output.table,
    preview: Annotated[bool, typer.Option(
        "--preview", help="only show what the sweep would decide; nothing is decided")] = False,
    account: Annotated[str | None, typer.Option(
        help="with --preview: list only this account's decisions")] = None,
    limit: Annotated[int, typer.Option(help="with --preview: decisions listed")] = 50,
    sms: Annotated[bool, typer.Option(
        "--sms", help="with --preview: also the SMS each listed decision would send "
                      "(rendered by the notifier; at most 50 decisions)")] = False,
) -> None:
    """`creditctl sweep --as-of 2026-12-31`: evaluate the calendar rules as of that day;
    `--preview` shows what it would decide, without deciding anything."""
    if ctx.invoked_subcommand:
        return
    if as_of is None:
        raise typer.BadParameter("give --as-of (or a subcommand: confirm, holds)")
    at = parse_as_of(as_of)
    if preview:
        _preview(ctx, at, account, limit, output, sms)
        return
    body = {"sweep_id": sweep_id or f"cli-{at.date().isoformat()}-{uuid.uuid4().hex[:8]}",
            "as_of": at.isoformat()}
    with api(ctx) as client, err.status(f"sweeping as of {render.when(at)} …"):
        answer = client.post("credit-control", "/v1/sweeps", body)
    _show_sweep(answer, output)


def _preview(ctx: typer.Context, at: datetime, account: str | None, limit: int,
             output: Output, sms: bool = False) -> None:
    params = {"as_of": at.isoformat(), "limit": limit,
              **({"account_id": account} if account else {}),
              **({"sms": "true"} if sms else {})}
    with api(ctx) as client, err.status(f"previewing the sweep as of {render.when(at)} …"):
        answer = client.get("credit-control", "/v1/sweeps/preview", params)
    guard = answer.get("guard") or {}

    def sections(yuan: bool) -> list[render.Section]:
        amounts = answer.get("amount_due_fen") or {}
        rows: list[render.Row] = [
            (k, str(v), render.yuan(amounts.get(k, 0)) if yuan else str(amounts.get(k, 0)))
            for k, v in sorted((answer.get("decisions") or {}).items())] or [("(none)", "0", "")]
        made: list[render.Section] = [(
            f"preview as of {answer.get('business_date')} (rules v{answer.get('rule_version')})"
            f", fingerprint {answer.get('fingerprint')}",
            ["decision", "count", "amount due (元)" if yuan else "amount due (fen)"], rows)]
        items = [{k: v for k, v in i.items() if k != "sms"} for i in answer.get("items") or []]
        if items:
            made.append((f"decisions ({answer.get('shown')} of {answer.get('matching')})",
                         *render.records_table(items, yuan=yuan)))
        texts: list[render.Row] = [
            (i["product_id"], i["decision"], m["on"], m["template"], str(m["recipient"]),
             m["text"])
            for i in answer.get("items") or [] for m in i.get("sms") or []]
        if texts:
            made.append(("SMS they would send", ["product", "decision", "sent on", "template",
                                                 "recipient", "text"], texts))
        return made

    lead = ([f"[yellow]the mass-suspension guard would hold it:[/yellow] "
             f"{guard.get('would_suspend')} of {guard.get('active')} active products"]
            if guard.get("held") else [])
    if answer.get("sms_unavailable"):
        lead.append(f"[yellow]no SMS shown:[/yellow] {answer['sms_unavailable']}")
    emit(output, answer, sections, console=out, lead=lead)


def _show_sweep(answer: dict[str, Any], output: Output) -> None:
    held = answer.get("held")

    def sections(yuan: bool) -> list[render.Section]:
        counts = answer.get("decisions") or {}
        rows: list[render.Row] = [(str(k), str(v)) for k, v in sorted(counts.items())] \
            or [("(none)", "0")]
        made: list[render.Section] = [(
            f"sweep {answer.get('sweep_id')} as of {answer.get('business_date')} "
            f"(rules v{answer.get('rule_version')})", ["decision", "count"], rows)]
        if held:
            made.append(("hold", ["field", "value"],
                         [(k, render.when(v) if k.endswith("_at") else render.cell(v))
                          for k, v in held.items()]))
        return made

    lead = ["[yellow]held by the mass-suspension guard:[/yellow] no product was suspended; "
            f"release it with: creditctl sweep confirm {answer.get('sweep_id')}"] if held else []
    emit(output, answer, sections, console=out, lead=lead)


@sweep_app.command("confirm")
def confirm_sweep(
    ctx: typer.Context,
    sweep_id: str,
    by: Annotated[str | None, typer.Option(
        help="who confirms; services that attribute by token record the token's subject")]
    = None,
    note: str = "",
    output: OutputOption = Output.table,
) -> None:
    """Release a sweep the mass-suspension guard held (role credit-admin)."""
    with api(ctx) as client, err.status(f"confirming sweep {sweep_id} …"):
        answer = client.post("credit-control", f"/v1/sweeps/{sweep_id}/confirm",
                             {"note": note, **({"confirmed_by": by} if by else {})})
    _show_sweep(answer, output)


@sweep_app.command("approve")
def approve_preview(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="the previewed sweep's moment, as previewed")],
    fingerprint: Annotated[str, typer.Option(
        help="the preview's fingerprint, in full (creditctl sweep --preview -o json)")],
    note: str = "",
    output: OutputOption = Output.table,
) -> None:
    """Approve a sweep's preview (role credit-admin), for sweeps that need one: refused if
    the data no longer gives that fingerprint."""
    at = parse_as_of(as_of)
    with api(ctx) as client, err.status(f"approving the preview as of {render.when(at)} …"):
        answer = client.post("credit-control", "/v1/sweeps/preview/approvals",
                             {"as_of": at.isoformat(), "fingerprint": fingerprint,
                              "note": note})
    emit(output, answer, lambda yuan: [("approved", ["field", "value"],
                                        [(k, render.cell(v)) for k, v in answer.items()])],
         console=out)


@sweep_app.command("holds")
def sweep_holds(ctx: typer.Context, status: str | None = None,
                output: OutputOption = Output.table) -> None:
    """Sweeps the guard is holding (or held)."""
    with api(ctx) as client:
        holds = client.get("credit-control", "/v1/sweeps/holds", {"status": status})
    emit(output, holds, lambda yuan: [("sweep holds", *render.records_table(holds, yuan=yuan))],
         console=out)


# --- views -----------------------------------------------------------------------------------

@app.command()
def timeline(ctx: typer.Context, product_id: str, output: OutputOption = Output.table) -> None:
    """A product's decisions and state changes, oldest first (the explain view)."""
    with api(ctx) as client:
        credit = client.get("credit-control", f"/v1/products/{product_id}/credit")
    facts = credit.get("facts") or {}
    since = render.when(credit.get("state_changed_at"))
    lead = [f"[bold]{escape(product_id)}[/bold] {credit.get('family')}  state "
            f"[bold]{credit.get('state')}[/bold] since {since}"
            f"  amount due {render.yuan(facts.get('amount_due_fen'))} 元"
            f"  balance {render.yuan(facts.get('balance_fen'))} 元"]

    def sections(yuan: bool) -> list[render.Section]:
        made: list[render.Section] = [
            ("timeline", list(render.TIMELINE_COLUMNS), render.timeline_rows(credit))]
        if credit.get("work_orders"):
            made.append(("work orders", *render.records_table(
                [{k: w.get(k) for k in ("work_order_id", "action", "status", "role", "due_at")}
                 for w in credit["work_orders"]], yuan=yuan)))
        return made

    emit(output, credit, sections, console=out, lead=lead)


@app.command("work-orders")
def work_orders(
    ctx: typer.Context,
    overdue: Annotated[bool, typer.Option(help="only open ones past their due time")] = False,
    status: Annotated[str | None, typer.Option(
        help="created, assigned, done, failed or cancelled (default: all but done and "
             "cancelled)")] = None,
    show_all: Annotated[bool, typer.Option(
        "--all", help="done and cancelled ones too")] = False,
    product_id: str | None = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    output: OutputOption = Output.table,
) -> None:
    """Manual work orders (suspend/restore by hand), oldest first; the ones still to act on
    unless --all or --status."""
    base = {"product_id": product_id, "limit": limit,
            "overdue_at": datetime.now(BUSINESS_TZ).isoformat() if overdue else None}
    with api(ctx) as client:
        orders = [w for s in statuses_to_ask(status, show_all, overdue)
                  for w in client.get("credit-control", "/v1/work-orders", {**base, "status": s})]
    orders.sort(key=lambda w: (str(w.get("created_at") or ""), str(w.get("work_order_id"))))
    orders = orders[:limit]
    keep = ("work_order_id", "product_id", "action", "status", "role", "assignee", "due_at",
            "reason")
    shown = "" if status or show_all else ", done and cancelled hidden (--all)"
    emit(output, orders, lambda yuan: [(
        f"work orders ({len(orders)}{shown})",
        *render.records_table([{k: w.get(k) for k in keep} for w in orders], yuan=yuan))],
        console=out)


def statuses_to_ask(status: str | None, show_all: bool, overdue: bool) -> list[str | None]:
    """The `status` filters to ask the API for (None: any status). It filters one status at a
    time, so by default each status still to act on is asked for on its own: a long history
    of done orders cannot crowd the open ones out of `limit`. Overdue ones are open anyway."""
    if status or show_all or overdue:
        return [status]
    return list(OPEN_WORK_ORDERS)


@app.command()
def chain(ctx: typer.Context, product_id: str, output: OutputOption = Output.table) -> None:
    """Where a product stands in BOSS → EMOS → gateway, and its command attempts."""
    with api(ctx) as client:
        view = client.get("gateway-adapter", f"/v1/products/{product_id}/chain")
    boss, gateway = view.get("boss") or {}, view.get("gateway") or {}
    orders = (view.get("emos") or {}).get("orders") or []
    last = orders[-1] if orders else {}

    def sections(yuan: bool) -> list[render.Section]:
        made: list[render.Section] = [(
            f"{product_id} {view.get('family')} {view.get('vendor') or ''} "
            f"(cpno {view.get('cpno')})",
            ["stage", "status", "sequence", "updated"],
            [("boss", render.cell(boss.get("status")), render.cell(boss.get("sequence")),
              render.when(boss.get("updated_at"))),
             ("emos", render.cell(last.get("status")), render.cell(last.get("sequence")),
              render.when(last.get("updated_at"))),
             ("gateway", "blocked" if gateway.get("blocked") else "open",
              render.cell(gateway.get("sequence")), render.when(gateway.get("updated_at")))])]
        if view.get("attempts"):
            keep = ("command_id", "action", "sequence", "attempt", "outcome", "received_at")
            made.append(("attempts", *render.records_table(
                [{k: a.get(k) for k in keep} for a in view["attempts"]], yuan=yuan)))
        return made

    emit(output, view, sections, console=out)


MESSAGE_COLUMNS = ("created_at", "template", "role", "trigger", "status", "status_reason",
                   "delivered_at")


@app.command()
def messages(
    ctx: typer.Context,
    product_id: str,
    status: Annotated[str | None, typer.Option(
        help="pending, held, sending, submitted, delivered, failed, cancelled, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    output: OutputOption = Output.table,
) -> None:
    """The SMS the notifier made for a product (was the customer told?): template, recipient
    role, status and why a message never left (the notifier, --notifier-url)."""
    with api(ctx) as client:
        found = client.get("notifier", "/v1/messages",
                           {"product_id": product_id, "status": status, "limit": limit})
    emit(output, found, lambda yuan: [(
        f"messages for {product_id} ({len(found)})",
        *render.records_table([{k: m.get(k) for k in MESSAGE_COLUMNS} for m in found],
                              yuan=yuan))], console=out)


# --- reports ---------------------------------------------------------------------------------

@app.command()
def report(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=f"one of {', '.join(REPORTS)}")],
    month: Annotated[str, typer.Option(help="bill month, YYYY-MM")],
    as_of: Annotated[str | None, typer.Option(help="business day, YYYY-MM-DD")] = None,
    by: Annotated[str | None, typer.Option(help="family, tier, channel or region")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="the same as --output csv")] = False,
    source: Annotated[str, typer.Option(
        help="auto: credit-control's report, else (arrears) billing's receivables")] = "auto",
    output: OutputOption = Output.table,
) -> None:
    """A monthly report: credit-control's GET /v1/reports/{name}; for arrears, billing's
    receivables when credit-control has no such report (or with --source billing)."""
    if name not in REPORTS:
        raise typer.BadParameter(f"unknown report {name!r}; one of {', '.join(REPORTS)}")
    if source not in ("auto", "credit-control", "billing"):
        raise typer.BadParameter("--source is auto, credit-control or billing")
    if by is not None and by not in render.DIMENSIONS:
        raise typer.BadParameter(f"--by is one of {', '.join(render.DIMENSIONS)}")
    with api(ctx) as client:
        title, body, sections = _report(client, name, month, as_of, by, source)
    emit(Output.csv if as_csv else output, body,
         lambda yuan: [(f"{title} {s}".strip() if yuan else s, c, r)
                       for s, c, r in sections(yuan)], console=out)


def _report(client: Api, name: str, month: str, as_of: str | None, by: str | None,
            source: str) -> tuple[str, Any, Callable[[bool], list[render.Section]]]:
    if source != "billing":
        response = client.call("credit-control", "GET", f"/v1/reports/{name}", check=False,
                               params={"month": month, "as_of": as_of})
        if response.status_code < 400:
            body = response.json()
            return (f"{name} {month}", body,
                    lambda yuan: render.report_view(name, body, by, yuan=yuan))
        if not (is_missing_route(response) and name == "arrears" and source == "auto"):
            raise error_for("credit-control", "GET", f"/v1/reports/{name}", response)
        err.print("credit-control has no arrears report here: reading billing's receivables")
    if name != "arrears":
        raise CliError(f"billing serves only the arrears figures, not {name!r}")
    receivables = client.get("billing-events", "/v1/receivables",
                             {"bill_month": month, "as_of": as_of, "by": by})
    lines = render.arrears_from_receivables(receivables)
    return (f"arrears {month} (billing receivables)", receivables,
            lambda yuan: [("", *render.records_table(lines, yuan=yuan))])


app.add_typer(collections_cmd.collections_app, name="collections")
app.add_typer(promise_cmd.promise_app, name="promise")  # issue 19: promises to pay
app.add_typer(red_list_cmd.red_list_app, name="red-list")
app.add_typer(red_list_cmd.late_fees_app, name="late-fees")
app.add_typer(freeze_cmd.freeze_app, name="freeze")  # issue 19: scoped emergency freezes
# The rating model's commands (issue 18), in their own module.
from . import rating as _rating  # noqa: E402

app.add_typer(_rating.app, name="rating")
# The rule table's what-if replay (issue 19), in its own module.
from . import rules_cmd as _rules_cmd  # noqa: E402

app.add_typer(_rules_cmd.app, name="rules")

# The simulation clock (issue 19), in its own module.
from . import clock_cmd as _clock_cmd  # noqa: E402

app.add_typer(_clock_cmd.clock_app, name="clock")


if __name__ == "__main__":
    app()
