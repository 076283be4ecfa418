"""The balance history (domain/history.py): positions recomputed from a dated ledger."""

from datetime import date, datetime

from billing_events.domain.history import Movement, TimedLedger, history, position_at
from common.clock import BUSINESS_TZ

SEP, OCT = date(2026, 9, 1), date(2026, 10, 1)
START = datetime(2026, 10, 1, tzinfo=BUSINESS_TZ)
END = datetime(2026, 10, 31, 23, 59, tzinfo=BUSINESS_TZ)
RUN = datetime(2026, 10, 1, 2, tzinfo=BUSINESS_TZ)


def at(day: int) -> datetime:
    return datetime(2026, 10, day, 12, tzinfo=BUSINESS_TZ)


def ledger() -> TimedLedger:
    return TimedLedger("A1", charges={(SEP, "P1"): 60_00, (SEP, "P2"): 40_00,
                                      (OCT, "P1"): 99_00},  # October: not billed yet
                       movements=[Movement(at(10), "payment", credit_fen=70_00),
                                  Movement(at(12), "reversal", credit_fen=-70_00),
                                  Movement(at(20), "adjustment", bill=(SEP, "P2"),
                                           bill_fen=-10_00),
                                  Movement(at(25), "deposit", deposit_fen=5_00)],
                       product_ids=["P1", "P2"])


def test_each_movement_of_the_window_is_one_point_after_the_opening() -> None:
    points = history(ledger(), {SEP: RUN}, START, END)
    assert [(p.cause, p.amount_due_fen) for p in points] == [
        ("opening", 0), ("bill_run", 100_00), ("payment", 30_00), ("reversal", 100_00),
        ("adjustment", 90_00), ("deposit", 90_00)]
    assert points[1].closed_bill_month == SEP
    assert points[-1].deposit_fen == 5_00


def test_product_amounts_follow_billings_allocation() -> None:
    # 70 yuan pays P1's 60 then 10 of P2's 40 (oldest month, product id order).
    p = position_at(ledger(), {SEP: RUN}, at(11), "payment")
    assert dict(p.product_dues) == {"P1": 0, "P2": 30_00}
    assert p.balance_fen == 70_00 - 100_00
    assert [(d.bill_month, d.amount_due_fen) for d in p.dues] == [(SEP, 30_00)]
    # Per product and bill month too, owing products only (what a new credit would pay).
    assert [(pid, [(d.bill_month, d.amount_due_fen) for d in dues])
            for pid, dues in p.product_month_dues] == [("P2", [(SEP, 30_00)])]


def test_a_month_not_closed_owes_nothing_yet() -> None:
    p = position_at(ledger(), {SEP: RUN}, at(30), "x")
    assert p.amount_due_fen == 90_00  # October's 99 yuan are not billed
    before_run = position_at(ledger(), {SEP: RUN}, START, "opening")
    assert before_run.amount_due_fen == 0


def test_movements_after_the_window_are_left_out() -> None:
    points = history(ledger(), {SEP: RUN}, START, at(11))
    assert [p.cause for p in points] == ["opening", "bill_run", "payment"]
