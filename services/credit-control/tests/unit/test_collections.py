"""credit_control.collections.domain.collections: who goes on which worklist (the 500-yuan
threshold, the two-month rule, the 6th), an entry's life, attempt validation, and the cause analysis
against
seed 000's table "2011年9-11月欠费原因分析"."""

from datetime import date
from typing import Any

import pytest

from credit_control.collections.domain.collections import (
    ACTIVE,
    ArrearsCause,
    Attempt,
    Channel,
    EntryStatus,
    Outcome,
    WorklistError,
    WorklistKind,
    WorklistRules,
    after_attempt,
    after_refresh,
    bp_text,
    cause_analysis,
    closed_dues,
    percent_bp,
)
from credit_control.entrypoints.csv_safe import safe_cell, safe_rows

C, K, S, R = ArrearsCause, WorklistKind, EntryStatus, Outcome
AUG, SEP, OCT, NOV = date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)
RULES = WorklistRules()


@pytest.mark.parametrize(("owed", "listed"), [
    (49_999, []),
    (50_000, []),  # 500.00 yuan is not "500元以上"
    (50_001, [K.CALL]),
    (1_000_000, [K.CALL]),
])
def test_call_list_takes_arrears_above_500_yuan(owed: int, listed: list[WorklistKind]) -> None:
    assert RULES.kinds([(OCT, owed)], date(2026, 11, 2)) == listed


def test_call_threshold_is_a_setting_and_sums_every_owing_month() -> None:
    assert WorklistRules(call_threshold_fen=10_000).kinds([(OCT, 10_001)], NOV) == [K.CALL]
    assert RULES.kinds([(SEP, 25_000), (OCT, 25_000)], date(2026, 11, 2)) == []
    assert RULES.kinds([(SEP, 25_000), (OCT, 25_001)], date(2026, 11, 2)) == [K.CALL]


@pytest.mark.parametrize(("dues", "today", "listed"), [
    ([(OCT, 100)], date(2026, 11, 20), []),  # one month owing: phone reminders, no visit
    ([(SEP, 100), (OCT, 100)], date(2026, 11, 5), []),  # two months, but before the 6th
    ([(SEP, 100), (OCT, 100)], date(2026, 11, 6), [K.VISIT]),  # "每月6日后"
    ([(AUG, 100), (SEP, 100), (OCT, 100)], date(2026, 11, 30), [K.VISIT]),
    ([(SEP, 100), (OCT, 0)], date(2026, 11, 20), []),  # a paid month is not owed
    # November's bill is not out on 20 November: it is not a second owing month yet.
    ([(OCT, 100), (NOV, 100)], date(2026, 11, 20), []),
    ([(OCT, 100), (NOV, 100)], date(2026, 12, 6), [K.VISIT]),
    ([(SEP, 30_000), (OCT, 30_000)], date(2026, 11, 6), [K.CALL, K.VISIT]),
])
def test_visit_orders_are_for_two_month_arrears_from_the_6th(
    dues: list[tuple[date, int]], today: date, listed: list[WorklistKind]
) -> None:
    assert RULES.kinds(dues, today) == listed


def test_closed_dues_are_the_owing_months_before_today_oldest_first() -> None:
    dues = [(NOV, 5), (SEP, 3), (OCT, 0), (AUG, 1)]
    assert closed_dues(dues, date(2026, 11, 30)) == [(AUG, 1), (SEP, 3)]


def _attempt(outcome: Outcome, **kw: Any) -> Attempt:
    return Attempt(date(2026, 11, 26), Channel.PHONE, outcome, **kw)


@pytest.mark.parametrize(("outcome", "kw", "after"), [
    (R.NO_ANSWER, {}, S.CONTACTED),
    (R.REACHED, {"note": "财务不在, 明天再打"}, S.CONTACTED),
    (R.PROMISED, {"promised_date": date(2026, 11, 26)}, S.PROMISED),  # the same day is fine
    (R.PROMISED, {"promised_date": date(2026, 12, 5)}, S.PROMISED),
    (R.REFUSED, {"refusal_reason": "客户称费用不对"}, S.REFUSED),
    (R.CLOSE, {"note": "已移交法律途径追缴"}, S.CLOSED),
])
def test_an_attempt_moves_an_active_entry(outcome: Outcome, kw: dict[str, Any],
                                          after: EntryStatus) -> None:
    for status in ACTIVE:
        assert after_attempt(status, _attempt(outcome, **kw)) is after


@pytest.mark.parametrize(("outcome", "kw", "problem"), [
    (R.PROMISED, {}, "needs promised_date"),
    (R.PROMISED, {"promised_date": date(2026, 11, 25)}, "before the attempt"),
    (R.PROMISED, {"promised_date": date(2026, 12, 27)}, "at most 30 days"),
    (R.PROMISED, {"promised_date": date(9999, 12, 31)}, "at most 30 days"),
    (R.REFUSED, {}, "needs refusal_reason"),
    (R.REFUSED, {"refusal_reason": "  "}, "needs refusal_reason"),
    (R.REACHED, {"promised_date": date(2026, 12, 1)}, "promised_date belongs"),
    (R.PROMISED, {"promised_date": date(2026, 12, 1), "refusal_reason": "x"},
     "refusal_reason belongs"),
    (R.CLOSE, {}, "needs a note"),
])
def test_a_bad_attempt_is_refused(outcome: Outcome, kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(WorklistError, match=problem):
        _attempt(outcome, **kw)


@pytest.mark.parametrize("status", [S.PAID, S.CLOSED])
def test_a_paid_or_closed_entry_takes_no_attempt(status: EntryStatus) -> None:
    with pytest.raises(WorklistError, match="no more attempts"):
        after_attempt(status, _attempt(R.NO_ANSWER))


@pytest.mark.parametrize(("status", "owing", "after"), [
    (S.OPEN, False, S.PAID), (S.PROMISED, False, S.PAID), (S.REFUSED, False, S.PAID),
    (S.CONTACTED, True, S.CONTACTED), (S.PAID, True, S.OPEN), (S.PAID, False, S.PAID),
    (S.CLOSED, True, S.CLOSED),  # closed by staff stays closed
])
def test_refresh_closes_cleared_entries_and_reopens_owed_again(
    status: EntryStatus, owing: bool, after: EntryStatus
) -> None:
    assert after_refresh(status, owing) is after


# Seed 000: 2011年9-11月欠费原因分析 (yuan, cumulative %), in fen.
SEED = {
    C.EXPIRED_PROMOTION: 4_946_212,
    C.SUSPENSION_GAP: 4_692_142,
    C.MALICIOUS: 4_542_712,
    C.SERVICE_FAULT: 3_927_442,
    C.OTHER: 273_318,
}


def test_cause_analysis_reproduces_the_seed_pareto_table() -> None:
    # Given in an order the table does not use: ranking is by amount.
    got = cause_analysis({c: (fen, 1) for c, fen in reversed(SEED.items())})
    assert got.total_fen == 18_381_826  # 183818.26 yuan
    assert [(r.label, r.amount_fen, bp_text(r.cumulative_bp)) for r in got.rows] == [
        ("体验营销方案到期未取消造成欠费", 4_946_212, "26.91"),
        ("欠费停用机制不完善造成欠费", 4_692_142, "52.43"),
        ("客户恶意欠费", 4_542_712, "77.15"),
        ("业务故障造成欠费", 3_927_442, "98.51"),
        ("其他原因", 273_318, "100.00"),
    ]
    # Each share on its own, rounded half up. (domain.md quotes 25.52, 24.72, 21.36: the
    # differences of the rounded cumulative figures, not the amounts' own shares.)
    assert [bp_text(r.share_bp) for r in got.rows] == ["26.91", "25.53", "24.71", "21.37",
                                                       "1.49"]


def test_cause_analysis_leaves_out_empty_causes_and_orders_ties_as_the_seed() -> None:
    got = cause_analysis({C.OTHER: (500, 1), C.MALICIOUS: (500, 2), C.SERVICE_FAULT: (0, 3)})
    assert [(r.cause, r.share_bp, r.cumulative_bp, r.accounts) for r in got.rows] == [
        (C.MALICIOUS, 5000, 5000, 2), (C.OTHER, 5000, 10000, 1)]
    assert cause_analysis({}).rows == ()


@pytest.mark.parametrize(("part", "whole", "bp"), [
    (1, 3, 3333), (2, 3, 6667), (1, 8, 1250), (1, 20_000, 1), (1, 20_001, 0), (0, 5, 0),
    (5, 5, 10000), (1, 0, 0),
])
def test_percent_in_basis_points_rounds_half_up(part: int, whole: int, bp: int) -> None:
    assert percent_bp(part, whole) == bp


def test_every_cause_has_the_seed_label() -> None:
    assert [c.label for c in C] == [
        "体验营销方案到期未取消造成欠费", "欠费停用机制不完善造成欠费", "客户恶意欠费",
        "业务故障造成欠费", "离网不拆机", "客户搬迁等原因不用", "其他原因"]


# --- CSV cells a spreadsheet cannot run ------------------------------------------------------

@pytest.mark.parametrize(("cell", "written"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+86 拒付", "'+86 拒付"),
    ("-客户拒付", "'-客户拒付"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+2", "'\t=1+2"),
    ("\r=1+2", "'\r=1+2"),
    ("陈经理", "陈经理"),
    ("客户称=1", "客户称=1"),  # only the first character makes a formula
    ("-12.50", "-12.50"),  # a number as text stays a number
    ("+3", "+3"),
    ("500.01", "500.01"),
    ("", ""),
    (-5, -5),
    (None, None),
])
def test_csv_text_that_a_spreadsheet_would_run_gets_an_apostrophe(cell: Any,
                                                                    written: Any) -> None:
    assert safe_cell(cell) == written
    assert list(safe_rows([[cell, 1]])) == [[written, 1]]
