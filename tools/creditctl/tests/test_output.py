"""creditctl's output: --output table|json|csv, KPIs as rows, money in yuan in tables, no
Python reprs, one-line errors with the documented exit codes (a real unreachable port, a real
child process: nothing is stubbed), and which work orders are listed by default."""

import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from creditctl import render
from creditctl.billing_child import verdict
from creditctl.client import EXIT_REJECTED, EXIT_UNAVAILABLE
from creditctl.main import OPEN_WORK_ORDERS, statuses_to_ask
from creditctl.output import Output, emit

KPIS = {"month": "2026-11", "as_of_date": "2026-12-31", "kpis": [
    {"name": "arrears_rate", "value": "0.003800", "target": "0.005", "direction": "<=",
     "meets_target": True, "bill_month": "2026-11", "measured_on": "2026-12-31",
     "receivables_fen": 1_000_000, "arrears_fen": 3_800, "percent": "0.38"},
    {"name": "reminder_timeliness", "value": "0.950000", "target": "0.98", "direction": ">=",
     "meets_target": False, "decisions": 20, "timely": 19, "percent": "95.00"},
    {"name": "emos_cross_month", "value": None, "meets_target": None,
     "error": "gateway-adapter did not answer: ConnectError"},
    {"name": "missed_suspensions", "value": 0, "target": 0, "direction": "<=",
     "meets_target": True, "reconciled_at": "2026-11-30T12:00:00+00:00"},
    {"name": "overdue_work_orders", "value": 2, "target": 0, "direction": "<=",
     "meets_target": False, "open": 3, "by_action": [{"action": "suspend", "open": 3}]},
]}

ARREARS = {
    "bill_month": "2026-10", "through": "2026-11", "as_of_date": None, "target": "0.005",
    "months": [{"bill_month": m, "measured_on": f"{m}-30", "receivables_fen": 100_000,
                "arrears_fen": 450, "arrears_rate": "0.004500", "arrears_rate_percent": "0.45",
                "meets_target": True,
                "by": {"family": [{"key": "MAS", "receivables_fen": 100_000, "arrears_fen": 450,
                                   "arrears_rate": "0.004500",
                                   "arrears_rate_percent": "0.45"}],
                       "tier": [], "channel": []}}
               for m in ("2026-10", "2026-11")],
    "total": {"receivables_fen": 200_000, "arrears_fen": 900, "arrears_rate": "0.004500",
              "arrears_rate_percent": "0.45", "meets_target": True},
    "by": {"family": [{"key": "MAS", "receivables_fen": 200_000, "arrears_fen": 900,
                       "arrears_rate": "0.004500", "arrears_rate_percent": "0.45"}],
           "tier": [{"key": "low", "receivables_fen": 200_000, "arrears_fen": 900,
                     "arrears_rate": "0.004500", "arrears_rate_percent": "0.45"}],
           "channel": []},
}


def _cells(sections: list[render.Section]) -> list[str]:
    return [c for _, columns, rows in sections for c in [*columns, *(x for r in rows for x in r)]]


def test_kpis_are_rows_of_name_value_target_verdict() -> None:
    sections = render.report_view("kpis", KPIS, None, yuan=True)
    _, columns, rows = sections[-1]
    assert columns == ["name", "value", "target", "verdict"]
    assert rows == [
        ("arrears_rate", "0.38%", "≤ 0.50%", "meets target"),
        ("reminder_timeliness", "95.00%", "≥ 98.00%", "MISSES target"),
        ("emos_cross_month", "", "", "n/a (gateway-adapter did not answer: ConnectError)"),
        ("missed_suspensions", "0", "≤ 0", "meets target"),
        ("overdue_work_orders", "2", "≤ 0", "MISSES target"),
    ]


def test_kpis_fit_an_80_column_terminal() -> None:
    console = Console(width=80, record=True, file=io.StringIO())
    emit(Output.table, KPIS, lambda yuan: render.report_view("kpis", KPIS, None, yuan=yuan),
         console=console)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "MISSES target" in text


def test_arrears_shows_no_python_reprs_and_yuan_in_tables() -> None:
    table = render.arrears_sections(ARREARS, None, yuan=True)
    assert [t for t, _, _ in table] == ["by bill month", "by family", "by tier"]
    cells = _cells(table)
    assert not any("{" in c or "'" in c or "[" in c for c in cells), cells
    months = table[0]
    assert months[1] == ["bill_month", "measured_on", "receivables_yuan", "arrears_yuan",
                         "arrears_rate_percent", "meets_target"]
    assert months[2][-1] == ("total", "", "2000.00", "9.00", "0.45", "yes")


def test_arrears_csv_keeps_exact_fen_and_by_picks_one_dimension() -> None:
    sections = render.arrears_sections(ARREARS, "tier", yuan=False)
    assert [t for t, _, _ in sections] == ["by bill month", "by tier"]
    assert sections[0][1][2:4] == ["receivables_fen", "arrears_fen"]
    assert sections[0][2][-1][2:4] == ("200000", "900")
    assert sections[1][2] == [("low", "200000", "900", "0.45")]


def test_table_money_is_yuan_and_moments_are_beijing_time() -> None:
    columns, rows = render.records_table(
        [{"work_order_id": "W1", "amount_fen": 12345, "due_at": "2026-12-01T04:00:00Z"}],
        yuan=True)
    assert columns == ["work_order_id", "amount_yuan", "due_at"]
    assert rows == [("W1", "123.45", "2026-12-01 12:00:00 北京时间")]


def test_table_headings_are_words_with_their_unit() -> None:
    assert [render.header(c) for c in ("arrears_yuan", "arrears_rate_percent", "due_at",
                                       "name")] \
        == ["arrears (元)", "arrears rate %", "due at", "name"]
    console = Console(width=80, record=True, file=io.StringIO())
    emit(Output.table, ARREARS, lambda yuan: render.arrears_sections(ARREARS, None, yuan=yuan),
         console=console)
    text = console.export_text()
    assert "receivables" in text and "(元)" in text and "_yuan" not in text
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "receivable\n" not in text.replace(" ", "").replace("│", "")  # no word cut
    wide = Console(width=200, record=True, file=io.StringIO())
    emit(Output.table, ARREARS, lambda yuan: render.arrears_sections(ARREARS, None, yuan=yuan),
         console=wide)
    assert "receivables (元)" in wide.export_text()  # one-line headings where they fit


def test_json_output_is_the_answer_as_it_came_and_csv_parses() -> None:
    stream = io.StringIO()
    emit(Output.json, KPIS, lambda yuan: [], console=Console(file=io.StringIO()), stream=stream)
    assert json.loads(stream.getvalue()) == KPIS
    stream = io.StringIO()
    emit(Output.csv, ARREARS, lambda yuan: render.arrears_sections(ARREARS, None, yuan=yuan),
         console=Console(file=io.StringIO()), stream=stream)
    blocks = stream.getvalue().split("\r\n\r\n")
    assert blocks[0].startswith("# by bill month\r\n")
    first = list(csv.DictReader(io.StringIO(blocks[0].split("\r\n", 1)[1])))
    assert [r["arrears_fen"] for r in first] == ["450", "450", "900"]


def test_work_orders_to_act_on_by_default_everything_with_all() -> None:
    assert statuses_to_ask(None, False, False) == list(OPEN_WORK_ORDERS)
    assert "done" not in OPEN_WORK_ORDERS and "cancelled" not in OPEN_WORK_ORDERS
    assert statuses_to_ask(None, True, False) == [None]
    assert statuses_to_ask("done", False, False) == ["done"]
    assert statuses_to_ask(None, False, True) == [None]


def test_a_failure_of_billings_loader_is_classified() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    assert verdict(refused)[1] == EXIT_UNAVAILABLE
    assert verdict(ExceptionGroup("tasks", [refused]))[1] == EXIT_UNAVAILABLE
    message, code = verdict(ValueError("unknown CSV header 'x'\nexpected: …"))
    assert code == EXIT_REJECTED and "\n" not in message and "unknown CSV header" in message


# --- as a person runs it: a process, a port nobody listens on ------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nobody listens


def creditctl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "creditctl", *args],
                          env={**os.environ, "COLUMNS": "80", **env}, capture_output=True,
                          text=True, timeout=120, check=False)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len([ln for ln in lines if ln.startswith("error:")]) == 1, result.stderr
    return next(ln for ln in lines if ln.startswith("error:"))


@pytest.mark.parametrize("args", [("timeline", "P1"), ("report", "kpis", "--month", "2026-11"),
                                  ("work-orders", "--output", "json"), ("sweep", "holds")])
def test_an_unreachable_service_is_one_line_and_exit_3(args: tuple[str, ...]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = creditctl("--credit-url", url, *args)
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    assert "not reachable" in _one_line_error(result)


def test_messages_use_the_notifier_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = creditctl("--notifier-url", url, "messages", "P1")
    assert result.returncode == EXIT_UNAVAILABLE
    line = _one_line_error(result)
    assert "notifier" in line and url in line


def test_import_csv_with_the_database_down_is_one_line_and_exit_3(tmp_path: Path) -> None:
    accounts = tmp_path / "2_accounts.csv"
    accounts.write_text("account_id,customer_id\nA1,G1\n", encoding="utf-8")
    down = f"postgresql+asyncpg://creditctl:creditctl@127.0.0.1:{_closed_port()}/creditctl"
    result = creditctl("import-csv", str(accounts), "--database-url", down)
    assert result.returncode == EXIT_UNAVAILABLE, result.stdout + result.stderr
    assert "database" in _one_line_error(result)


def test_an_unknown_output_is_a_usage_error() -> None:
    result = creditctl("timeline", "P1", "--output", "yaml")
    assert result.returncode == 2 and "yaml" in result.stderr
