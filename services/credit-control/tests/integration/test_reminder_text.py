"""A warning's text counts the warnings its ladder gave (`ladder.reminder_level`), through the
sweep's SQL: the ladder gives the step whose day has come, so a product billed late reaches
warning 2's day with no warning 1, and its decision says to send warning 1's text
(context.reminder_level = 1; the notifier picks the template by it). A product told warning 1
gets warning 2's own text (no reminder_level).

ADC mid tier, March owing, billed on 1 April: warning 1 from 10 April (arrears month 1),
warning 2 from 10 May (arrears month 2); no deposit, so no deduction on the 15th."""

from datetime import date
from typing import Any

import pytest

from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

BILL_FEN = 10_000


async def billed_for_march(api: CreditApi, uid: str, name: str, y: int) -> Ledger:
    lg = ledger(uid, name, ProductFamily.ADC, Tier.MID)
    m3 = f"{y}-03"
    await api.deliver((lg, lg.event(BalanceCause.BILL_RUN, at(date(y, 4, 1), 9),
                                    [(m3, BILL_FEN)], m3)))
    return lg


async def warnings(api: CreditApi, lg: Ledger) -> list[tuple[Any, Any]]:
    """Each warning published: (its ladder step, the level of the text it is sent with)."""
    return [(d["warning_level"], d["context"]["reminder_level"])
            for d in await api.outbox(lg.account_id, "credit.decisions.v1")
            if d.get("decision") == "warning"]


async def test_warning_2s_day_without_warning_1_sends_the_first_warnings_text(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    late = await billed_for_march(api, uid, "rl", y)  # no sweep on 10 April
    await api.sweep(date(y, 5, 12), f"op-rl{uid}-0512")
    assert await warnings(api, late) == [(2, 1)]
    # The ladder keeps its step: warning 1's row does not fire again for the month.
    await api.sweep(date(y, 5, 13), f"op-rl{uid}-0513")
    assert await warnings(api, late) == [(2, 1)]


async def test_a_ladder_told_each_warning_sends_each_its_own_text(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    told = await billed_for_march(api, uid, "rt", y)
    await api.sweep(date(y, 4, 10), f"op-rt{uid}-0410")
    await api.sweep(date(y, 5, 12), f"op-rt{uid}-0512")
    assert await warnings(api, told) == [(1, None), (2, None)]
