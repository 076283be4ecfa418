"""A suspension warning the notifier withdraws at send time (its reason went: a promise to pay
deferred the suspension, the customer became exempt) is owed again, but it is not a lost
delivery: it does not count toward `CREDIT_NOTICE_MAX_WARNINGS`, the streak of lost warnings
after which a suspension goes ahead as an exception (docs/rules.md "The notice reached the
customer", "Withdrawn").

Through the running services: balance events on Kafka, sweeps over credit-control's HTTP API,
the promises in process on a clock the test sets (as QA pass 31), the notifier's quiet hours
holding each warning long enough (20 s of wall time in a simulated year) for the promise or
the red-list entry to withdraw it. Year `test_year + 25` is this module's (capped at 2999)."""

import contextlib
from datetime import date, datetime, time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import TokenGrant
from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.testing.notices import notices_heard
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid
from .staff_clients import staff_clients

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

STAFF = {"operator-token": TokenGrant(subject="li.ops", role="operator")}
BILL_FEN = 60_000


def moment(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), BUSINESS_TZ)


def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
async def qa_year(test_year: int) -> int:
    return min(test_year + 25, 2999)


async def sweep(api: CreditApi, key: str, when: datetime) -> None:
    """A sweep as of `when`; one the mass-suspension guard holds (a shared stack) confirmed."""
    await notices_heard(api.db)
    body = ok(await api.http.post("/v1/sweeps", json={"sweep_id": key,
                                                       "as_of": when.isoformat()}))
    if body.get("held"):
        ok(await api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm", json={}), 200)


async def notice(api: CreditApi, lg: Ledger, status: str) -> dict[str, Any]:
    """The product's ladder once its current suspension warning's outcome is `status`."""
    async def probe() -> dict[str, Any]:
        ladder: dict[str, Any] = (await api.credit(lg.product_id))["ladder"]
        return ladder

    return await eventually(probe, lambda d: d["notice"]["status"] == status, timeout=60,
                            what=f"{lg.product_id}'s suspension warning {status}")


async def withdrawn(db: AsyncEngine, product_id: str) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT notice_withdrawals FROM credit.product_credit WHERE product_id = :p"),
            {"p": product_id}) or 0)


async def promise(staff: httpx.AsyncClient, entry_id: str, key: str, by: date,
                  when: datetime) -> None:
    ok(await staff.post(f"/v1/worklists/{entry_id}/promises", json={
        "promise_id": key, "promised_date": by.isoformat(), "amount_fen": BILL_FEN,
        "reason": "资金周转", "at": when.isoformat()}))


async def test_withdrawn_warnings_are_warned_again_and_never_make_the_suspension_an_exception(
    api: CreditApi, db: AsyncEngine, qa_year: int,
) -> None:
    """Low tier, ADC, January 600.00 yuan, billed 02-01. Each suspension warning is decided at
    07:59:40 (held by the quiet hours until 08:00) and withdrawn ten seconds later: 02-25's by
    a promise to pay by 03-03, 03-04's (the promise broken) by a second promise by 03-10,
    03-11's (broken again) by a red-list entry, removed the same day.

    Expected: three warnings cancelled by the notifier, none failed. The customer was told
    of no suspension date, so 03-17 (the third warning's deadline) does not suspend as an
    exception ("3 suspension warnings in a row cancelled"): it warns again, naming 03-23,
    and the suspension comes on 03-23 after that warning was delivered, with no exception.
    Before the fix, 03-17 suspended: `cancelled` counted as a lost delivery."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "wdn", F.ADC, T.LOW)
    pid = lg.product_id
    await api.deliver((lg, lg.bill_run(f"{y}-01", BILL_FEN, moment(date(y, 2, 1), 9))))
    await sweep(api, f"wdn{uid}-0210", at(date(y, 2, 10)))
    clock = FixedClock(moment(date(y, 2, 25), 7))
    async with contextlib.AsyncExitStack() as stack:
        staff = (await stack.enter_async_context(staff_clients(db, clock, STAFF)))["operator"]
        ok(await staff.post("/v1/worklists/refresh", json={"as_of": clock.now().isoformat()}),
           200)
        [entry] = ok(await staff.get("/v1/worklists", params={"account_id": lg.account_id,
                                                              "kind": "call"}), 200)
        # 1. withdrawn by a promise to pay.
        await sweep(api, f"wdn{uid}-0225", moment(date(y, 2, 25), 7, 59, 40))
        clock.set(moment(date(y, 2, 25), 7, 59, 50))
        await promise(staff, entry["entry_id"], f"PRwdn1{uid}", date(y, 3, 3), clock.now())
        first = await notice(api, lg, "cancelled")
        # 2. the promise broken (the sweep checks it first): warned again, withdrawn by a
        # second promise.
        await sweep(api, f"wdn{uid}-0304", moment(date(y, 3, 4), 7, 59, 40))
        clock.set(moment(date(y, 3, 4), 7, 59, 50))
        await promise(staff, entry["entry_id"], f"PRwdn2{uid}", date(y, 3, 10), clock.now())
        second = await notice(api, lg, "cancelled")
        assert second["suspension_warning_id"] != first["suspension_warning_id"]
    # 3. broken again: warned again, withdrawn by a red-list entry (exempt: no threat).
    await sweep(api, f"wdn{uid}-0311", moment(date(y, 3, 11), 7, 59, 40))
    ok(await api.http.post("/v1/exemptions", json={
        "exemption_id": f"EXwdn{uid}", "customer_id": lg.customer.customer_id,
        "kind": "red_list", "reason": "重点客户", "approver": "集团账务管理员",
        "created_by": "test"}))
    third = await notice(api, lg, "cancelled")
    assert third["suspension_warning_id"] not in (first["suspension_warning_id"],
                                                  second["suspension_warning_id"])
    assert third["suspension_deadline"] == f"{y}-03-17", third
    assert third["notice"]["lost_warnings"] == 0, third  # withdrawn: no failed delivery
    assert third["notice"]["withdrawn_warnings"] == 3, third
    assert await withdrawn(db, pid) == 3
    ok(await api.http.post(f"/v1/exemptions/EXwdn{uid}/remove", json={}), 200)

    # The third warning's deadline: warned again, not suspended as an exception.
    await sweep(api, f"wdn{uid}-0317", at(date(y, 3, 17)))
    assert await api.state(pid) == "suspension_warned"
    taken = await api.decisions(pid)
    assert "suspend" not in [d for d, _, _ in taken], taken
    assert [on for d, _, on in taken if d == "suspension_warning"] == [
        date(y, 2, 25), date(y, 3, 4), date(y, 3, 11), date(y, 3, 17)], taken
    fourth = await notice(api, lg, "delivered")
    assert fourth["suspension_deadline"] == f"{y}-03-23", fourth
    await sweep(api, f"wdn{uid}-0323", at(date(y, 3, 23)))
    assert await api.state(pid) == "suspended"
    [suspension] = [d for d in (await api.credit(pid))["decisions"] if d["decision"] == "suspend"]
    assert "exception" not in suspension["reason"], suspension["reason"]
    assert suspension["inputs"]["notice_status"] == "delivered", suspension["inputs"]
