"""The services' JSON → rows and rich tables. Pure: no I/O, so it is unit-tested as is."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.cells import cell_len
from rich.table import Table

from common.clock import BUSINESS_TZ
from common.display_time import beijing_time, is_moment_key
from common.money import fen_to_yuan_text

Row = tuple[str, ...]
Section = tuple[str, list[str], list[Row]]  # (title, columns, rows)
TIMELINE_COLUMNS = ("when", "decision", "rule", "amount due", "state")


def when(value: Any) -> str:
    """A moment as staff read it everywhere (dashboard, CSVs, here): Asia/Shanghai to the
    second, labelled 北京时间 (common.display_time)."""
    return beijing_time(value)


def yuan(fen: Any) -> str:
    return fen_to_yuan_text(fen) if isinstance(fen, int) else ""


def _amount_due(decision: Mapping[str, Any]) -> Any:
    for source in (decision.get("context"), decision.get("inputs")):
        if isinstance(source, Mapping) and "amount_due_fen" in source:
            return source["amount_due_fen"]
    return None


def _decision_label(d: Mapping[str, Any]) -> str:
    level = d.get("warning_level")
    label = str(d.get("decision", ""))
    if label == "warning" and level:
        label += f" {level}"
    if d.get("amount_fen") is not None:
        label += f" ({yuan(d['amount_fen'])})"
    return label


def timeline_rows(credit: Mapping[str, Any]) -> list[Row]:
    """Decisions and the state changes no decision explains (the chain's applied result,
    a payment, a work order) in time order: GET /v1/products/{id}/credit as a story."""
    decisions: Sequence[Mapping[str, Any]] = credit.get("decisions") or []
    moves = {(d.get("decision_id"), d.get("state_before"), d.get("state_after"))
             for d in decisions}
    events: list[tuple[str, Row]] = []
    for d in decisions:
        at = str(d.get("as_of") or d.get("created_at") or "")
        events.append((at, (when(at), _decision_label(d), str(d.get("rule_id", "")),
                            yuan(_amount_due(d)),
                            f"{d.get('state_before')} → {d.get('state_after')}")))
    for h in credit.get("state_history") or []:
        if (h.get("decision_id"), h.get("state_before"), h.get("state_after")) in moves:
            continue
        at = str(h.get("at") or "")
        events.append((at, (when(at), f"[{h.get('cause', 'state change')}]", "", "",
                            f"{h.get('state_before')} → {h.get('state_after')}")))
    events.sort(key=lambda e: _sort_key(e[0]))
    return [row for _, row in events]


def _sort_key(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return datetime.min.replace(tzinfo=BUSINESS_TZ)
    return at if at.tzinfo is not None else at.replace(tzinfo=BUSINESS_TZ)


def table(title: str, columns: Sequence[str], rows: Iterable[Row]) -> Table:
    # fold, never "…": a narrow terminal wraps a cell instead of hiding what it says
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*row)
    return out


def fits(columns: Sequence[str], rows: Sequence[Row], width: int) -> bool:
    """Whether a table with one-line headings fits `width` terminal columns (3 per column
    for padding and rule, 1 for the last rule)."""
    need = sum(max([cell_len(c), *(cell_len(r[i]) for r in rows if i < len(r))])
               for i, c in enumerate(columns))
    return need + 3 * len(columns) + 1 <= width


def stacked(heading: str) -> str:
    """A heading one word a line: a narrow terminal then narrows the column to its longest
    word instead of cutting a word in two."""
    return "\n".join(heading.split())


def header(column: str) -> str:
    """A column's name as a table heading: words, and the unit in words people read
    ("arrears_yuan" → "arrears (元)", "arrears_rate_percent" → "arrears rate %")."""
    for suffix, unit in (("_yuan", " (元)"), ("_percent", " %")):
        if column.endswith(suffix):
            return column.removesuffix(suffix).replace("_", " ") + unit
    return column.replace("_", " ")


def cell(value: Any) -> str:
    """A JSON value in one table cell: fen columns get yuan alongside by the caller."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) \
            else ", ".join(str(v) for v in value)
    return str(value)


def fields(title: str, answer: Mapping[str, Any]) -> list[Section]:
    """One object as a two-column section: field, value."""
    return [(title, ["field", "value"], [(k, cell(v)) for k, v in answer.items()])]


def records_table(records: Sequence[Mapping[str, Any]], *,
                  yuan: bool = False) -> tuple[list[str], list[Row]]:
    """Rows of dicts (a report's lines, work orders) → columns in first-seen order and rows.
    By default fen columns keep their exact integers (CSV: a report must add up to the fen);
    `yuan=True` (tables) shows each `*_fen` column as `*_yuan`, or drops it where the record
    has its `*_yuan` already. Moments (`*_at`) show as 北京时间."""
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    if yuan:
        columns = [c for c in columns
                   if not (_is_fen(c) and f"{c.removesuffix('_fen')}_yuan" in columns)]
    shown = [_yuan_name(c) if yuan else c for c in columns]
    return shown, [tuple(_shown(c, r.get(c), yuan) for c in columns) for r in records]


def _is_fen(column: str) -> bool:
    return column.endswith("_fen")


def _yuan_name(column: str) -> str:
    return f"{column.removesuffix('_fen')}_yuan" if _is_fen(column) else column


def _shown(column: str, value: Any, yuan_: bool) -> str:
    if is_moment_key(column):
        return when(value)
    if yuan_ and _is_fen(column):
        return yuan(value)
    return cell(value)


def report_sections(body: Mapping[str, Any], *, yuan: bool = False) -> list[Section]:
    """Any report body → (title, columns, rows) sections: its scalar fields as one
    key/value section, a dict of figures as one row, and each list of dicts as a table."""
    scalars: list[Row] = [(_yuan_name(k) if yuan else k, _shown(k, v, yuan))
                          for k, v in body.items() if not isinstance(v, dict | list)]
    sections: list[Section] = []
    if scalars:
        sections.append(("", ["field", "value"], scalars))
    for key, value in body.items():
        if isinstance(value, dict) and value and not any(
                isinstance(v, dict | list) for v in value.values()):
            sections.append((key, *records_table([value], yuan=yuan)))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            sections.append((key, *records_table(value, yuan=yuan)))
        elif isinstance(value, list) and value:
            sections.append((key, ["value"], [(cell(v),) for v in value]))
    return sections


# --- reports shaped for reading ---------------------------------------------------------------

KPI_COLUMNS = ["name", "value", "target", "verdict"]
# KPIs that are shares: shown and judged as percentages (the others are counts).
_RATE_KPIS = ("arrears_rate", "reminder_timeliness", "emos_cross_month")
_DIRECTION = {"<=": "≤", ">=": "≥"}


def kpi_rows(body: Mapping[str, Any]) -> list[Row]:
    """The KPI report as one row per KPI: name / value / target / verdict. A KPI without a
    value (a peer away, nothing to judge yet) says why in the verdict."""
    rows: list[Row] = []
    for k in body.get("kpis") or []:
        rate = k.get("name") in _RATE_KPIS
        value = k.get("value")
        shown = "" if value is None else (
            f"{k['percent']}%" if rate and k.get("percent") is not None
            else _percent(value) if rate else cell(value))
        target = _percent(k.get("target")) if rate else cell(k.get("target"))
        sign = _DIRECTION.get(str(k.get("direction")), str(k.get("direction") or ""))
        rows.append((str(k.get("name", "")), shown, f"{sign} {target}".strip(), _verdict(k)))
    return rows


def _percent(value: Any) -> str:
    try:
        return f"{Decimal(str(value)) * 100:.2f}%"
    except (InvalidOperation, ValueError):
        return cell(value)


def _verdict(kpi: Mapping[str, Any]) -> str:
    met = kpi.get("meets_target")
    if met is None:
        why = kpi.get("error") or kpi.get("note") or "no value"
        return f"n/a ({why})"
    return "meets target" if met else "MISSES target"


ARREARS_FIGURES = ("receivables_fen", "arrears_fen", "arrears_rate_percent", "meets_target")
DIMENSIONS = ("family", "tier", "channel", "region")


def arrears_sections(body: Mapping[str, Any], by: str | None, *,
                     yuan: bool = False) -> list[Section]:
    """credit-control's arrears report: the months and their total, then the groups of one
    dimension (`by`) or of each, summed over the months; every figure a plain cell."""
    def figures(item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: item.get(k) for k in ARREARS_FIGURES if k in item}

    months = [{"bill_month": m.get("bill_month"), "measured_on": m.get("measured_on"),
               **figures(m)} for m in body.get("months") or []]
    months.append({"bill_month": "total", "measured_on": body.get("as_of_date") or "",
                   **figures(body.get("total") or {})})
    sections: list[Section] = [("by bill month", *records_table(months, yuan=yuan))]
    groups = body.get("by") or {}
    for dim in [by] if by else DIMENSIONS:
        found = groups.get(dim) or []
        if found:
            rows = [{dim: g.get("key"), **figures(g)} for g in found]
            sections.append((f"by {dim}", *records_table(rows, yuan=yuan)))
    return sections


def aging_sections(body: Mapping[str, Any], *, yuan: bool = False) -> list[Section]:
    buckets = [{"bucket": b, "arrears_fen": fen} for b, fen in (body.get("buckets") or {}).items()]
    buckets.append({"bucket": "total", "arrears_fen": body.get("total_arrears_fen")})
    head: list[Row] = [(k, cell(body.get(k))) for k in ("as_of_date", "since", "through")
                       if k in body]
    sections: list[Section] = [("", ["field", "value"], head)] if head else []
    sections.append(("buckets", *records_table(buckets, yuan=yuan)))
    if body.get("months"):
        sections.append(("months", *records_table(body["months"], yuan=yuan)))
    return sections


def report_view(name: str, body: Mapping[str, Any], by: str | None, *,
                yuan: bool = False) -> list[Section]:
    """A credit-control report body as sections to print (tables or CSV)."""
    if name == "kpis":
        return [(f"as of {body.get('as_of_date')}", KPI_COLUMNS, kpi_rows(body))]
    if name == "arrears":
        return arrears_sections(body, by, yuan=yuan)
    if name == "aging":
        return aging_sections(body, yuan=yuan)
    return report_sections(body, yuan=yuan)


def arrears_from_receivables(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """billing's receivables body → the arrears report's lines: one per bill month, or per
    group with --by, then the total."""
    lines: list[dict[str, Any]] = []
    group_by = body.get("by")
    for item in (body.get("groups") if group_by else body.get("months")) or []:
        label = {group_by: item.get("key")} if group_by else {"bill_month": item["bill_month"]}
        lines.append({**label, **_figures(item)})
    key = str(group_by) if group_by else "bill_month"
    lines.append({key: "total", **_figures(body.get("total") or {})})
    return lines


def _figures(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"receivables_fen": item.get("receivables_fen"),
            "arrears_fen": item.get("arrears_fen"),
            "receivables_yuan": yuan(item.get("receivables_fen")),
            "arrears_yuan": yuan(item.get("arrears_fen")),
            "arrears_rate_percent": item.get("arrears_rate_percent")}
