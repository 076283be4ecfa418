"""`make verify`: the invariant checker against a running stack (dev by default).

    uv run python scripts/verify.py [--prefix ID_PREFIX] [--gateway-url URL] [--json FILE]

Where the stack is: CREDITCTL_DATABASE_URL / CREDITCTL_KAFKA_BOOTSTRAP, else
`deploy/local/stack.sh env` for $STACK (default dev). Exit 1 on any lost, doubled or wrong.
"""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checker lives in tests/reliability (it may import domains)

from tests.reliability.invariants import Report, verify  # noqa: E402

console = Console()


def _stack() -> tuple[str, str]:
    url = os.environ.get("CREDITCTL_DATABASE_URL")
    kafka = os.environ.get("CREDITCTL_KAFKA_BOOTSTRAP")
    if url and kafka:
        return url, kafka
    out = subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), "env"], check=True,
                         capture_output=True, text=True).stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()
               if line.startswith("export "))
    # STACK=ha's multi-host URL is quoted for the shell (it holds `&`).
    return env["DATABASE_URL"].strip("'"), env["KAFKA_BOOTSTRAP"]


def show(report: Report) -> None:
    table = Table("check", "expected", "found", "lost", "doubled", "wrong", "notes",
                  title="invariants")
    for c in report.checks:
        notes = ", ".join(f"{k} {v}" for k, v in c.notes.items())
        style = "green" if c.ok else "bold red"
        table.add_row(c.name, str(c.expected), str(c.found), str(c.lost), str(c.doubled),
                      str(c.wrong), notes, style=style)
    console.print(table)
    for c in report.checks:
        for example in c.examples:
            console.print(f"[red]{c.name}[/red] {example}")
    console.print("[green]OK: nothing lost, nothing doubled[/green]" if report.ok
                  else "[bold red]FAILED: see the counts above[/bold red]")


def main(
    prefix: Annotated[str, typer.Option(help="only ids starting so (a workload's own)")] = "",
    gateway_url: Annotated[str, typer.Option(help="gateway-adapter, for reconciliation; "
                                             "'' to skip")] = "http://127.0.0.1:8104",
    token: Annotated[str, typer.Option(envvar="VERIFY_TOKEN")] = "dev-token",
    json_out: Annotated[Path | None, typer.Option("--json")] = None,
) -> None:
    """Prove, for a finished run, that every effect happened exactly once."""
    url, kafka = _stack()

    async def run() -> Report:
        engine = create_async_engine(url)
        try:
            return await verify(engine, kafka, prefix, gateway_url or None, token)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    show(report)
    if json_out:
        json_out.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    raise typer.Exit(code=0 if report.ok else 1)


if __name__ == "__main__":
    typer.run(main)
