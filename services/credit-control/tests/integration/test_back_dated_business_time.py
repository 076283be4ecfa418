"""A back-dated run keeps its business time to the end: the chain's confirmation and the work
order's steps land in the run's month (business time), next to the wall time they happened
(issue 15, "one meaning of business time"). Before, they were stamped with the wall clock, so
the states report of that month showed MAS products still `suspend_requested`."""

from datetime import UTC, date, datetime, timedelta

import pytest

from common.clock import BUSINESS_TZ
from common.contracts.snapshots import ProductFamily, Tier
from common.testing.polling import eventually

from .helpers import CreditApi, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier


def _in_june(text: str, year: int) -> bool:
    moment = datetime.fromisoformat(text).astimezone(BUSINESS_TZ)
    return (moment.year, moment.month) == (year, 6)


async def test_a_back_dated_month_end_confirms_in_its_own_month(api: CreditApi) -> None:
    started = datetime.now(UTC)
    y, uid = started.year - 1, new_uid()  # last year's June: back-dated, no simulation needed
    mas = ledger(f"{uid}m", "bd", F.MAS, T.LOW)
    manual = ledger(f"{uid}w", "bd", F.WORK_ORDER, T.LOW)
    await api.deliver(*((lg, lg.bill_run(f"{y}-05", 8_000, at(date(y, 6, 2), 9)))
                        for lg in (mas, manual)))
    for n, day in enumerate((date(y, 6, 10), date(y, 6, 25), date(y, 6, 30))):
        await api.sweep(day, f"bd-{uid}-{n}")
    await api.settled(mas)
    assert await api.state(mas.product_id) == "suspended"
    [order] = await api.work_orders(product_id=manual.product_id)
    r = await api.http.post(f"/v1/work-orders/{order['work_order_id']}/done",
                            json={"note": "已人工停用"})
    assert r.status_code == 200, r.text
    done = r.json()["steps"][-1]
    assert done["status"] == "done"
    assert datetime.fromisoformat(done["at"]) >= started  # the wall time it was done
    assert _in_june(done["business_at"], y), done  # the run's business time, next to it

    for lg in (mas, manual):
        history = (await api.credit(lg.product_id))["state_history"]
        confirmed = history[-1]
        assert confirmed["state_after"] == "suspended", history
        moment = datetime.fromisoformat(confirmed["at"])
        assert _in_june(confirmed["at"], y), confirmed
        # the decision's business time plus the chain's (or the operator's) wall-clock delay
        assert at(date(y, 6, 30)) <= moment <= at(date(y, 6, 30)) + (
            datetime.now(UTC) - started) + timedelta(seconds=5)

    async def states() -> dict[str, int]:
        r = await api.http.get("/v1/reports/states", params={
            "month": f"{y}-06", "product_prefix": f"Pbd{uid}"})
        assert r.status_code == 200, r.text
        counts: dict[str, int] = r.json()["states"]
        return counts

    counts = await eventually(states, lambda c: c["suspended"] == 2,
                              what="both products suspended at the end of June")
    assert counts["suspend_requested"] == 0
