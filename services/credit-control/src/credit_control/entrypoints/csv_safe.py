"""CSV cells that a spreadsheet cannot run: free text (a customer's name, a refusal reason, a
note) is typed by people and passed on verbatim, and a cell starting with = + - @ (or a tab or
carriage return, which some spreadsheets skip before looking) is read as a formula when the
file is opened; our files carry a UTF-8 BOM precisely so that Excel opens them. Such a text
cell gets a leading apostrophe (OWASP's "CSV injection" advice), which the spreadsheet shows
as text. Numbers, and text that is only a number ("-12.50"), are left as they are."""

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import Response

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet will evaluate (non-text values unchanged)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_rows(rows: Iterable[Sequence[Any]]) -> Iterable[list[Any]]:
    """Every cell of every row through `safe_cell` (lazily, for `csv.writer.writerows`)."""
    return ([safe_cell(c) for c in row] for row in rows)


def csv_attachment(name: str, header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download: formula-safe cells, and a BOM so that a spreadsheet opens the Chinese
    text as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(safe_rows([header]))
    writer.writerows(safe_rows(rows))
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
