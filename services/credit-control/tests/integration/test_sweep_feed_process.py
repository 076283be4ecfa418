"""The defect this guards against, end to end with credit-control as a real process: a
customer pays before the month-end sweep while credit-control's consumer is behind (here: held
on the account's row by the test, as a backlog or a slow database would hold it; the payment
is in billing.balance.v1, not applied). The sweep posted then waits until the consumer applied
the payment, so the customer is not suspended and then restored: the chain never moves."""

import asyncio
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.snapshots import ProductFamily, Tier
from common.testing.notices import notices_heard

from .helpers import CreditApi, at, fresh_year, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HELD_S = 3.0  # how long the consumer is kept from applying the payment



async def test_a_payment_not_yet_applied_is_applied_before_the_month_end_sweep_decides(
    api: CreditApi, db: AsyncEngine, test_year: int,
) -> None:
    y = await fresh_year(db, test_year)
    lg = ledger(new_uid(), "feedpay", ProductFamily.ADC, Tier.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-09", 6_600, at(date(y, 10, 2), 9))))
    await api.sweep(date(y, 10, 25), f"feed-e2e-{lg.account_id}-25")
    assert await api.state(lg.product_id) == "suspension_warned"
    await notices_heard(db)  # the warning reached the customer: the 31st may suspend

    async with db.connect() as hold:
        # The consumer locks an account's position before applying its events: held here,
        # it cannot apply (nor commit the offset of) the payment published next.
        await hold.execute(text("SELECT 1 FROM credit.account_positions "
                                "WHERE account_id = :a FOR UPDATE"), {"a": lg.account_id})
        await api.publish(lg.payment(at(date(y, 10, 30), 10)))
        sweep = asyncio.create_task(api.http.post("/v1/sweeps", json={
            "sweep_id": f"feed-e2e-{lg.account_id}-31",
            "as_of": at(date(y, 10, 31)).isoformat()}))
        await asyncio.sleep(HELD_S)
        assert not sweep.done(), "the sweep did not wait for the payment in the topic"
        await hold.rollback()  # the consumer goes on: the payment, then the sweep
    r = await asyncio.wait_for(sweep, 90)
    assert r.status_code == 201, r.text

    decisions = [d for d, _, _ in await api.decisions(lg.product_id)]
    assert "suspend" not in decisions, decisions
    assert decisions[-1] == "arrears_cleared"
    assert await api.state(lg.product_id) == "normal"
