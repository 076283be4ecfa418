"""`--output table|json|csv`, the same for every command that shows something.

- table (the default): rich tables for people: money in yuan, moments as 北京时间, cells that
  wrap rather than hide;
- json: the service's answer exactly as it came (exact fen, ISO-8601 instants), for scripts
  and `jq`;
- csv: the tables' rows with money in exact fen (a CSV must add up to the fen), sections
  separated by a blank line and a `# title` line.
"""

import csv
import json
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console

from . import render


class Output(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


OutputOption = Annotated[Output, typer.Option(
    "--output", "-o", envvar="CREDITCTL_OUTPUT", case_sensitive=False,
    help="table (yuan, 北京时间), json (the service's answer as is) or csv (exact fen)")]

# The sections to print, built for tables (yuan=True) or for CSV (yuan=False).
Sections = Callable[[bool], Sequence[render.Section]]


def emit(fmt: Output, answer: Any, sections: Sections, *, console: Console,
         lead: Sequence[str] = (), stream: TextIO | None = None) -> None:
    """Print one command's result. `lead` is the lines a table view starts with (a product's
    state, a hold's hint); JSON and CSV carry the same facts in their data instead."""
    out = stream or sys.stdout
    if fmt is Output.json:
        out.write(json.dumps(answer, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    if fmt is Output.csv:
        write_csv(sections(False), out)
        return
    for line in lead:
        console.print(line)
    for title, columns, rows in sections(True):
        headings = [render.header(c) for c in columns]
        if not render.fits(headings, rows, console.width):
            headings = [render.stacked(h) for h in headings]
        console.print(render.table(title, headings, rows))


def write_csv(sections: Sequence[render.Section], out: TextIO) -> None:
    writer = csv.writer(out)
    for i, (section, columns, rows) in enumerate(sections):
        if i:
            writer.writerow([])
        if section:
            writer.writerow([f"# {section}"])
        writer.writerow(columns)
        writer.writerows(rows)
