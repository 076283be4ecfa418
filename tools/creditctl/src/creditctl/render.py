"""The services' JSON → rows and rich tables. Pure: no I/O, so it is unit-tested as is."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table

from common.clock import BUSINESS_TZ
from common.display_time import beijing_time, is_moment_key
from common.money import fen_to_yuan_text

Row = tuple[str, ...]
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
    out = Table(*columns, title=title, title_justify="left")
    for row in rows:
        out.add_row(*row)
    return out


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


def records_table(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[Row]]:
    """Rows of dicts (a report's lines, work orders) → columns in first-seen order and rows.
    Fen columns keep their exact integers: a report must add up to the fen."""
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    return columns, [tuple(when(r.get(c)) if is_moment_key(c) else cell(r.get(c))
                           for c in columns) for r in records]


def report_sections(body: Mapping[str, Any]) -> list[tuple[str, list[str], list[Row]]]:
    """Any report body → (title, columns, rows) sections: its scalar fields as one
    key/value section, a dict of figures as one row, and each list of dicts as a table."""
    scalars: list[Row] = [(k, cell(v)) for k, v in body.items()
                          if not isinstance(v, dict | list)]
    sections: list[tuple[str, list[str], list[Row]]] = []
    if scalars:
        sections.append(("", ["field", "value"], scalars))
    for key, value in body.items():
        if isinstance(value, dict) and value and not any(
                isinstance(v, dict | list) for v in value.values()):
            sections.append((key, *records_table([value])))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            sections.append((key, *records_table(value)))
        elif isinstance(value, list) and value:
            sections.append((key, ["value"], [(cell(v),) for v in value]))
    return sections


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
