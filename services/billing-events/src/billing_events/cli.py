"""billing's own commands besides serve and migrate: bulk import and the synthetic base."""

import asyncio
import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from common.clock import SystemClock, configure_business_time, parse_bill_month
from common.db import make_engine
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox

from .adapters import tables as t
from .config import Settings
from .service_layer.bulk import HEADERS, ImportReport, import_file
from .service_layer.context import BillingContext
from .synthetic import generate

console = Console(stderr=True)


def add_commands(cli: typer.Typer) -> None:
    cli.command("import-csv")(import_csv)
    cli.command("generate")(generate_base)


def import_csv(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False,
                                                help="CSV files, loaded in the order given")],
    report_file: Annotated[Path | None, typer.Option(
        "--rejected", help="also write rejected rows here (file,row,reason)")] = None,
) -> None:
    """Load customers, accounts, products, charges or payments from CSV (docs/billing.md).
    Good rows load; rejected rows are listed with their row number and reason."""
    reports = asyncio.run(_import(files))
    table = Table("file", "kind", "loaded", "already there", "rejected")
    for path, r in zip(files, reports, strict=True):
        table.add_row(path.name, r.kind, str(r.loaded), str(r.skipped), str(len(r.rejected)))
    console.print(table)
    rejected = [(p.name, n, why) for p, r in zip(files, reports, strict=True)
                for n, why in r.rejected]
    for name, number, why in rejected[:50]:
        console.print(f"[red]{name} row {number}[/red]: {why}")
    if len(rejected) > 50:
        console.print(f"… and {len(rejected) - 50} more")
    if report_file:
        with report_file.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([("file", "row", "reason"), *rejected])
    if rejected:
        raise typer.Exit(code=2)


async def _import(files: list[Path]) -> list[ImportReport]:
    settings = Settings()
    # Rows are commands as over HTTP: the same bounds on business time (simulation mode).
    configure_business_time(settings.business_time_bounds())
    engine = make_engine(settings.database_url)
    ctx = BillingContext(engine, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                         SystemClock(), settings.service_name)
    reports = []
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            for path in files:
                total = max(sum(1 for _ in path.open(encoding="utf-8-sig")) - 1, 0)
                task = progress.add_task(path.name, total=total)

                def advance(n: int, task: TaskID = task) -> None:
                    progress.advance(task, n)

                reports.append(await import_file(ctx, path, advance))
    finally:
        await engine.dispose()
    return reports


def generate_base(
    groups: Annotated[int, typer.Option(min=1, help="number of group customers")] = 1000,
    seed: Annotated[int, typer.Option(help="same seed, same base")] = 0,
    out: Annotated[Path, typer.Option(file_okay=False)] = Path("synthetic"),
    first_month: Annotated[str, typer.Option(help="first bill month, YYYY-MM")] = "2011-09",
    months: Annotated[int, typer.Option(min=1, max=24)] = 3,
    arrears_rate: Annotated[float, typer.Option(
        min=0, max=1, help="share of receivables left unpaid: 0.0122 before, 0.0038 after")]
    = 0.0038,
) -> None:
    """Write a synthetic base as CSV files ready for import-csv, in load order."""
    start = parse_bill_month(first_month)
    bill_months = [start.replace(year=start.year + (start.month - 1 + i) // 12,
                                 month=(start.month - 1 + i) % 12 + 1) for i in range(months)]
    base = generate(groups, seed, bill_months, arrears_rate)
    out.mkdir(parents=True, exist_ok=True)
    for n, kind in enumerate(HEADERS, start=1):
        path = out / f"{n}_{kind}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=HEADERS[kind])
            writer.writeheader()
            writer.writerows(getattr(base, kind))
        console.print(f"{path}: {len(getattr(base, kind))} rows")
