"""One account's deposit is shared by its products deducted the same day (sweep_sql.
_deduction_shares), and a second sweep of that day does not ask for it again: billing may
not have collected the first asks yet (here it never does: the account is not billing's),
so what the day's earlier sweeps asked is taken off first. The first version took off only
the asks of the same `as_of`, and a re-run at 21:00 told the second product of a deduction
from a deposit already promised to the first."""

from datetime import date

import pytest
from msgspec.structs import replace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T

from .helpers import CreditApi, at, ledger, new_uid

pytestmark = [pytest.mark.integration]


async def _asked(db: AsyncEngine, product_ids: list[str]) -> list[tuple[str, int, str]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT product_id, amount_fen, decision_id FROM credit.decisions "
            "WHERE decision = 'deduction' AND product_id = ANY(:p) ORDER BY product_id"),
            {"p": product_ids})
        return [(r.product_id, r.amount_fen, r.decision_id) for r in rows]


async def test_a_second_sweep_of_the_day_does_not_ask_for_the_same_deposit_again(
        api: CreditApi, db: AsyncEngine, test_year: int) -> None:
    y = test_year + 33
    lg = ledger(new_uid(), "dedshare", F.ADC, T.MID)
    second = replace(lg.products[0], product_id=f"{lg.product_id}-2", cpno=f"{lg.product_id}2")
    lg.products = (lg.products[0], second)
    lg.deposit_fen = 2_000
    await api.deliver((lg, lg.bill_run(f"{y}-01", 15_000, at(date(y, 2, 2), 9))))
    ids = [p.product_id for p in lg.products]
    # The day's suspensions (other tests' products) must not hold the sweep back.
    old = (await api.http.get("/v1/guard")).json()
    keep = {k: old[k] for k in ("enabled", "max_share", "min_active")}
    r = await api.http.put("/v1/guard", json={"changed_by": "test", **keep, "enabled": False})
    assert r.status_code == 200, r.text
    try:
        await api.sweep(date(y, 3, 15), f"ds-{lg.account_id}-20")
        first = await _asked(db, ids)
        # the deposit once, to the first product (product id order); nothing for the second
        assert [(p, f) for p, f, _ in first] == [(ids[0], 2_000)]
        await api.sweep(date(y, 3, 15), f"ds-{lg.account_id}-21", hour=21)
    finally:
        r = await api.http.put("/v1/guard", json={"changed_by": "test", **keep})
        assert r.status_code == 200, r.text
    assert await _asked(db, ids) == first
