"""The what-if's bounds and its reading of billing's balance history (pure parts)."""

from datetime import date

import pytest
from pydantic import ValidationError

from common.contracts.billing import BalanceCause
from common.errors import Unprocessable
from credit_control.whatif.adapters.billing_history import parse_account
from credit_control.whatif.domain.commands import WhatIf
from credit_control.whatif.service_layer.what_if import MAX_MONTHS_BACK, month_bounds


def test_only_a_month_that_is_over_and_not_too_old_is_replayed() -> None:
    month_bounds(date(2026, 10, 1), date(2026, 11, 1))  # over the day after its last
    with pytest.raises(Unprocessable, match="not over"):
        month_bounds(date(2026, 10, 1), date(2026, 10, 31))
    month_bounds(date(2025, 11, 1), date(2026, 11, 30))  # exactly MAX_MONTHS_BACK
    with pytest.raises(Unprocessable, match=f"more than {MAX_MONTHS_BACK} months"):
        month_bounds(date(2025, 10, 1), date(2026, 11, 30))


def test_the_draft_is_rows_or_a_version_exactly() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        WhatIf.model_validate({"month": "2026-10"})
    with pytest.raises(ValidationError, match="exactly one"):
        WhatIf.model_validate({"month": "2026-10", "rows": [], "version": 2})
    with pytest.raises(ValidationError):
        WhatIf.model_validate({"month": "2026-13", "version": 2})
    assert WhatIf.model_validate({"month": "2026-10", "version": 2}).version == 2


def test_billings_answer_becomes_the_replays_history() -> None:
    h = parse_account({
        "account_id": "A1", "customer": {"customer_id": "C1", "tier": "mid", "star_level": 3},
        "products": [{"product_id": "P1", "family": "MAS"}],
        "points": [
            {"at": "2026-07-01T00:00:00+08:00", "cause": "opening", "balance_fen": 0,
             "amount_due_fen": 0, "dues": [], "deposit_fen": 0, "product_dues": [],
             "closed_bill_month": None},
            {"at": "2026-10-01T02:00:00+08:00", "cause": "bill_run", "balance_fen": -500,
             "amount_due_fen": 500, "dues": [{"bill_month": "2026-09", "amount_due_fen": 500}],
             "deposit_fen": 100, "product_dues": [{"product_id": "P1", "amount_due_fen": 500}],
             "closed_bill_month": "2026-09"}]})
    assert h.star_level == 3 and h.products[0][1].value == "MAS"
    opening, bill = h.points
    assert opening.cause is None and opening.oldest_due_month is None
    assert bill.cause is BalanceCause.BILL_RUN and bill.oldest_due_month == date(2026, 9, 1)
    assert bill.product_due("P1") == 500 and bill.product_due("P2") == 0
    assert bill.closed_bill_month == "2026-09"
