"""The pure parts of creditctl: JSON → rows, --as-of, which 404 means "no such route"."""

from datetime import datetime

import httpx
import pytest
import typer

from common.clock import BUSINESS_TZ, BusinessTimeBounds, business_time_within
from credit_control.credit.domain.commands import RunSweep
from creditctl.client import (
    EXIT_AUTH,
    EXIT_REJECTED,
    EXIT_UNAVAILABLE,
    error_for,
    is_missing_route,
)
from creditctl.main import parse_as_of
from creditctl.render import (
    arrears_from_receivables,
    records_table,
    report_sections,
    timeline_rows,
)


def test_timeline_merges_decisions_with_the_state_changes_no_decision_explains() -> None:
    credit = {
        "decisions": [
            {"decision_id": "d1", "decision": "bill_notice", "rule_id": "adc-bill-notice",
             "as_of": "2026-11-02T01:00:00+00:00", "state_before": "normal",
             "state_after": "warned", "context": {"amount_due_fen": 12345}},
            {"decision_id": "d2", "decision": "suspend", "rule_id": "mas-month-end",
             "as_of": "2026-11-30T12:00:00+00:00", "state_before": "warned",
             "state_after": "suspend_requested", "inputs": {"amount_due_fen": 12345}},
        ],
        "state_history": [
            {"decision_id": "d1", "state_before": "normal", "state_after": "warned",
             "cause": "decision", "at": "2026-11-02T01:00:00+00:00"},
            {"decision_id": "d2", "state_before": "warned", "state_after": "suspend_requested",
             "cause": "decision", "at": "2026-11-30T12:00:00+00:00"},
            {"decision_id": "d2", "state_before": "suspend_requested", "state_after": "suspended",
             "cause": "gateway applied", "at": "2026-11-30T12:00:05+00:00"},
        ],
    }
    assert timeline_rows(credit) == [
        ("2026-11-02 09:00:00 北京时间", "bill_notice", "adc-bill-notice", "123.45",
         "normal → warned"),
        ("2026-11-30 20:00:00 北京时间", "suspend", "mas-month-end", "123.45",
         "warned → suspend_requested"),
        ("2026-11-30 20:00:05 北京时间", "[gateway applied]", "", "",
         "suspend_requested → suspended"),
    ]


def test_arrears_lines_keep_exact_fen_and_end_with_the_total() -> None:
    body = {"months": [{"bill_month": "2011-11", "receivables_fen": 1000, "arrears_fen": 38,
                        "arrears_rate_percent": "3.80"}],
            "total": {"receivables_fen": 1000, "arrears_fen": 38, "arrears_rate_percent": "3.80"}}
    lines = arrears_from_receivables(body)
    assert [(line["bill_month"], line["arrears_fen"], line["arrears_yuan"]) for line in lines] \
        == [("2011-11", 38, "0.38"), ("total", 38, "0.38")]
    grouped = arrears_from_receivables({**body, "by": "tier", "groups": [
        {"key": "low", "receivables_fen": 1000, "arrears_fen": 38}]})
    assert [line["tier"] for line in grouped] == ["low", "total"]


def test_any_report_body_becomes_sections() -> None:
    sections = report_sections({"month": "2011-11", "total": {"arrears_fen": 5},
                                "rows": [{"tier": "low", "n": 1}, {"tier": "high", "m": 2}]})
    assert sections == [("", ["field", "value"], [("month", "2011-11")]),
                        ("total", ["arrears_fen"], [("5",)]),
                        ("rows", ["tier", "n", "m"], [("low", "1", ""), ("high", "", "2")])]


def test_as_of_a_day_means_its_start_in_shanghai_as_in_the_api() -> None:
    """One meaning of a bare date (docs/operations.md "Business time"): the CLI sends the
    moment the API would read from the same text."""
    assert parse_as_of("2026-12-31") == datetime(2026, 12, 31, 0, 0, tzinfo=BUSINESS_TZ)
    assert parse_as_of("2026-12-31T08:30:00") == datetime(2026, 12, 31, 8, 30,
                                                           tzinfo=BUSINESS_TZ)
    with business_time_within(BusinessTimeBounds(simulation=True)):
        for text in ("2026-12-31", "2026-12-31T20:00:00", "2026-12-31T12:00:00Z"):
            api = RunSweep.model_validate_json(f'{{"sweep_id": "s", "as_of": "{text}"}}')
            assert parse_as_of(text) == api.as_of, text
    for bad in ("31/12/2026", "0.5", "1700000000", "0001-01-01"):
        with pytest.raises(typer.BadParameter):
            parse_as_of(bad)


def _response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_errors_carry_the_body_and_an_exit_code_per_kind() -> None:
    refused = error_for("credit-control", "GET", "/v1/x", _response(401, {"error": "unauthorized"}))
    assert refused.exit_code == EXIT_AUTH and "(unauthorized)" in refused.message
    bad = error_for("credit-control", "POST", "/v1/sweeps", _response(422, {
        "error": "validation_error", "message": "the request is not valid",
        "problems": [{"field": "body.as_of", "message": "Field required"}]}))
    assert bad.exit_code == EXIT_REJECTED
    assert bad.message == ("credit-control POST /v1/sweeps → 422: validation_error: the "
                           "request is not valid; body.as_of: Field required")
    assert error_for("notifier", "GET", "/v1/x", _response(503, {})).exit_code \
        == EXIT_UNAVAILABLE


def test_an_error_is_one_line_whatever_the_body() -> None:
    html = httpx.Response(502, text="<html>\n<body>\nBad gateway\n</body>\n</html>\n" * 50)
    message = error_for("billing-events", "GET", "/v1/receivables", html).message
    assert "\n" not in message and len(message) < 600 and "Bad gateway" in message


def test_only_the_routers_own_404_counts_as_a_missing_report() -> None:
    assert is_missing_route(_response(404, {"error": "not_found", "message": "Not Found"}))
    assert not is_missing_route(_response(404, {"error": "not_found",
                                                "message": "no bill month 2011-13"}))
    assert not is_missing_route(_response(422, {"message": "Not Found"}))


def test_moment_columns_show_beijing_time_like_the_dashboard() -> None:
    """`creditctl chain` and `work-orders` print their `*_at` columns on the one clock."""
    columns, rows = records_table([
        {"command_id": "c1", "received_at": "2026-11-30T12:00:00.123456+00:00", "attempt": 1},
        {"command_id": "c2", "received_at": None, "attempt": 2}])
    assert columns == ["command_id", "received_at", "attempt"]
    assert rows == [("c1", "2026-11-30 20:00:00 北京时间", "1"), ("c2", "", "2")]
