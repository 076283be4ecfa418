"""A caught-up suspension warning gives the full notice from the day it is really sent
(docs/rules.md "Late suspension, not missed", docs/credit-control.md "Catch-up"), through the
scheduler's catch-up path, with the real notifier and its simulated SMSC.

credit-control was down at 20:00 on the 25th (October: 31 days, the seed's notice period 6
days) and comes back at 10:00 on the 28th: the scheduler (`run_due`, on a clock standing
there) runs the 25th's sweep as of its 20:00, labelled a catch-up. The suspension warning
it decides names the 28th + 6 days (the 3rd of November), not the 31st; the notifier sends
and delivers it on the 28th (its business time is when the catch-up really ran), so the
product is not suspended on the 31st but on the 3rd, late, not missed.

The on-time case is tests/integration/test_notice_delivered.py's first test (a warning of
the 25th names the last day and the suspension comes then), unchanged."""

import contextlib
import random
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.snapshots import CustomerSnapshot, Person, ProductFamily, Tier
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.polling import eventually
from common.testing.stack import Stack
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.service_layer import sweeps
from credit_control.service_layer.context import CreditContext

from .helpers import CreditApi, Ledger, at, fresh_year, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier


def _with_phone(lg: Ledger) -> Ledger:
    c = lg.customer
    lg.customer = CustomerSnapshot(
        customer_id=c.customer_id, name=c.name, tier=c.tier, star_level=c.star_level,
        account_manager=c.account_manager,
        contacts=(Person(name="赵联系人", phone=f"139{random.randrange(10**8):08d}"),))
    return lg



@contextlib.asynccontextmanager
async def _guard_off(api: CreditApi) -> AsyncIterator[None]:
    """Other tests' owing products must not make a day's sweep a held one."""
    keys = ("enabled", "max_share", "min_active")
    old = (await api.http.get("/v1/guard")).json()
    r = await api.http.put("/v1/guard", json={"changed_by": "test",
                                               **{k: old[k] for k in keys}, "enabled": False})
    assert r.status_code == 200, r.text
    try:
        yield
    finally:
        r = await api.http.put("/v1/guard", json={"changed_by": "test",
                                                   **{k: old[k] for k in keys}})
        assert r.status_code == 200, r.text


async def _sweep(api: CreditApi, day: date, sweep_id: str) -> None:
    r = await api.http.post("/v1/sweeps", json={"sweep_id": sweep_id,
                                                 "as_of": at(day, 20).isoformat()})
    assert r.status_code == 201, r.text
    assert r.json()["catch_up"] is False


async def test_a_caught_up_warning_counts_its_notice_from_the_day_it_is_really_sent(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    y = await fresh_year(db, test_year)
    uid = new_uid()
    lg = _with_phone(ledger(uid, "cun", F.ADC, T.LOW))
    await api.deliver((lg, lg.bill_run(f"{y}-09", 4_000, at(date(y, 10, 2), 9))))
    missed = datetime.combine(date(y, 10, 25), time(20, 0), BUSINESS_TZ)
    really = datetime.combine(date(y, 10, 28), time(10, 0), BUSINESS_TZ)
    settings = Settings(database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap,
                        scheduler_enabled=True, scheduler_time="20:00",
                        scheduler_catch_up_days=3, scheduler_month_end_catch_up_days=3)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(really), settings=settings)
    async with _guard_off(api):
        ran = await sweeps.run_due(ctx, really)
        assert ran == [f"auto-{y}-10-{d}" for d in (25, 26, 27)]

        credit = await api.credit(lg.product_id)
        [warning] = [d for d in credit["decisions"] if d["decision"] == "suspension_warning"]
        assert datetime.fromisoformat(warning["as_of"]) == missed  # the 25th's own sweep
        assert warning["inputs"]["catch_up"] == f"auto-{y}-10-25"
        assert datetime.fromisoformat(warning["inputs"]["caught_up_at"]) == really
        # The 28th + the 6 days' notice, not the 31st.
        assert credit["ladder"]["suspension_deadline"] == f"{y}-11-03"
        assert credit["ladder"]["notice"]["notice_days"] == 6

        # The SMS names that day, and reached the customer on the 28th (the notifier dates
        # it when the catch-up really ran, not as of the 25th).
        async def heard() -> dict[str, Any]:
            body: dict[str, Any] = (await api.credit(lg.product_id))["ladder"]["notice"]
            return body

        notice = await eventually(heard, lambda n: n["status"] == "delivered", timeout=60,
                                  what="the caught-up warning delivered")
        reached = datetime.fromisoformat(notice["delivered_at"]).astimezone(BUSINESS_TZ)
        assert reached.date() == date(y, 10, 28), notice
        r = await clients["notifier"].get("/v1/messages", params={
            "decision_id": warning["decision_id"]})
        assert r.status_code == 200, r.text
        [sms] = [m for m in r.json() if m["template"] == "suspension_warning"]
        assert f"如在{y}年11月03日前仍未缴清费用" in sms["text"], sms["text"]

        # Not on the 31st (3 days of notice), nor the 2nd: on the 3rd, 6 days after it
        # reached the customer.
        for day in (date(y, 10, 31), date(y, 11, 2)):
            await _sweep(api, day, f"cun-{uid}-{day:%m%d}")
            assert await api.state(lg.product_id) == "suspension_warned", day
        await _sweep(api, date(y, 11, 3), f"cun-{uid}-1103")
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "suspended"
    [suspension] = [d for d in credit["decisions"] if d["decision"] == "suspend"]
    assert suspension["reason"].endswith(
        f"; late: suspension warning of {y}-10-25 named {y}-11-03"), suspension["reason"]
    assert suspension["inputs"]["late"] is True  # late, not missed
    assert suspension["inputs"]["notice_status"] == "delivered"
    assert suspension["inputs"]["notice_reached_on"] == f"{y}-10-28"
