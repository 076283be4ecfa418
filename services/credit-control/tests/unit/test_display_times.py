"""One clock on credit-control's screens and files: a moment stored in UTC shows on the
dashboard's pages and in the CSV downloads as Asia/Shanghai time, to the second, labelled
北京时间 (common.display_time), never as "2026-11-30 12:00:00+00:00" with microseconds."""

import csv
import io
from datetime import UTC, datetime
from typing import Any

from credit_control.reports.entrypoints import dashboard
from credit_control.reports.entrypoints.reports import csv_download

SUSPENDED_AT = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)  # 20:00 in Shanghai
SHOWN = "2026-11-30 20:00:00 北京时间"


def _product() -> dict[str, Any]:
    return {
        "product_id": "P1", "state": "suspend_requested", "family": "MAS", "account_id": "A1",
        "customer_id": "G1", "exemptions": [],
        "facts": {"tier": "low", "star_level": None, "amount_due_fen": 12345, "balance_fen": 0},
        "decisions": [{"as_of": SUSPENDED_AT, "decision": "suspend", "rule_id": "mas-month-end",
                       "rule_version": 1, "reason": "arrears", "state_before": "warned",
                       "state_after": "suspend_requested", "amount_fen": None}],
        "state_history": [{"at": datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC),
                           "cause": "gateway applied", "state_before": "suspend_requested",
                           "state_after": "suspended"}],
        # The notifier's times arrive as ISO text in UTC, ours as datetimes: one clock for both.
        "messages": [{"decision_as_of": None, "created_at": "2026-11-30T11:59:59Z",
                      "template": "suspension_warning", "role": "contact", "status": "sent",
                      "status_reason": None}],
        "work_orders": [{"work_order_id": "W1", "action": "suspend", "status": "open",
                         "role": "operator", "assignee": None,
                         "due_at": datetime(2026, 12, 1, 5, 0, tzinfo=UTC)}],
    }


def test_the_timeline_page_shows_beijing_time_labelled() -> None:
    product = _product()
    page = dashboard._page("timeline.html", None, product=product,
                           events=dashboard._timeline(product))
    html = bytes(page.body).decode()
    assert f"<td>{SHOWN}</td>" in html
    assert "<td>2026-11-30 20:00:05 北京时间</td>" in html
    assert "<td>2026-11-30 19:59:59 北京时间</td>" in html
    assert "due 2026-12-01 13:00:00 北京时间" in html
    assert "+00:00" not in html and ".123456" not in html and "12:00:00" not in html


def test_the_timeline_is_in_time_order_whatever_form_each_time_came_in() -> None:
    events = dashboard._timeline(_product())
    assert [e["kind"] for e in events] == ["sms", "decision", "state"]


def test_a_worklist_rows_last_attempt_is_beijing_time() -> None:
    row = dashboard._worklist_row({
        "account_id": "A1", "customer_name": "某科技", "manager_name": "王经理",
        "arrears_fen": 50_100, "oldest_month": "2026-10", "status": "active",
        "last_attempt": {"at": "2026-11-30T02:15:30+00:00", "channel": "call",
                         "outcome": "promised"}})
    assert row["last_attempt"] == "2026-11-30 10:15:30 北京时间 call promised"


def _csv(body: dict[str, Any], kind: str) -> list[dict[str, str]]:
    text = bytes(csv_download(kind, "x", body).body).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_csv_download_shows_moments_as_beijing_time() -> None:
    body = {"month": "2026-11", "as_of_date": "2026-11-30", "kpis": [
        {"name": "missed_suspensions", "value": 0, "target": 0, "direction": "<=",
         "meets_target": True, "reconciled_at": "2026-11-30T12:00:00.5+00:00",
         "wrong_suspensions": 0, "products_compared": 3},
        {"name": "overdue_work_orders", "value": 1, "target": 0, "direction": "<=",
         "meets_target": False, "open": 1, "checked_at": SUSPENDED_AT}]}
    rows = _csv(body, "kpis")
    assert rows[0]["reconciled_at"] == SHOWN
    assert rows[1]["checked_at"] == SHOWN
    assert rows[0]["as_of_date"] == "2026-11-30"  # a business day stays a day
