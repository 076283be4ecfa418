"""Notice before suspension, with the real notifier and its simulated SMSC (issue 15): a
product is suspended only after its suspension warning's SMS was delivered a notice period
earlier (docs/rules.md "The notice reached the customer").

- delivered in time → suspended on the month's last day, as before; while the SMSC has not
  yet returned the receipt, the month-end sweep waits;
- held by quiet hours (decided 22:00) → it reached the customer at 08:00 the next day, so
  its notice counts from then and the date it names says so (the 26th + 5 days: 12-01, not
  11-30, docs/rules.md "Notice before suspension"): the suspension comes on that day (late,
  not missed);
- lost (the SMSC rejected it) → the next sweep sends a new warning, and the suspension comes
  a notice period after that one reached the customer;
- undeliverable (no valid contact number) → the suspension goes ahead at the deadline as an
  exception with its reason;
- exempt (red list) → no warning, no suspension, as before.

Back-dated (a past year): quiet hours are then read at the decision's business time and the
held warning goes out at once, its business time being the end of the quiet hours."""

import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from common.clock import BUSINESS_TZ
from common.contracts.snapshots import CustomerSnapshot, Person, ProductFamily, Tier
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier
Y = datetime.now(UTC).year - 2  # back-dated: no simulation needed, no quiet-hours wait


def _with_phone(lg: Ledger, phone: str) -> Ledger:
    c = lg.customer
    lg.customer = CustomerSnapshot(
        customer_id=c.customer_id, name=c.name, tier=c.tier, star_level=c.star_level,
        account_manager=c.account_manager, contacts=(Person(name="赵联系人", phone=phone),))
    return lg


def _phone() -> str:
    return f"139{random.randrange(10**8):08d}"


@pytest.fixture
async def notifier(clients: dict[str, httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    http = clients["notifier"]
    yield http
    r = await http.put("/v1/smsc/faults", json={})  # back to no faults
    assert r.status_code == 200, r.text


async def _billed(api: CreditApi, *ledgers: Ledger) -> None:
    await api.deliver(*((lg, lg.bill_run(f"{Y}-10", 12_345, at(date(Y, 11, 2), 9)))
                        for lg in ledgers))


async def _sweep(api: CreditApi, day: date, sweep_id: str, hour: int = 20) -> None:
    """A sweep without waiting for notices in flight (the helper's `sweep` waits)."""
    r = await api.http.post("/v1/sweeps", json={"sweep_id": sweep_id,
                                                 "as_of": at(day, hour).isoformat()})
    assert r.status_code == 201, r.text


async def _notice(api: CreditApi, lg: Ledger, *statuses: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        ladder: dict[str, Any] = (await api.credit(lg.product_id))["ladder"]
        return ladder

    ladder = await eventually(probe, lambda d: d["notice"]["status"] in statuses, timeout=45,
                              what=f"{lg.product_id}'s suspension warning {statuses}")
    return ladder


async def _unheard(api: CreditApi, lg: Ledger, day: date) -> tuple[str, bool] | None:
    """(lost_on, lost) of the product in GET /v1/notices/unheard as of `day` (None: not
    listed), checked against its own GET /v1/products/{id}/credit."""
    as_of = at(day, 20).isoformat()
    r = await api.http.get("/v1/notices/unheard", params={
        "as_of": as_of, "after": lg.product_id[:-1], "limit": 1000})
    assert r.status_code == 200, r.text
    mine = [i for i in r.json()["items"] if i["product_id"] == lg.product_id]
    r = await api.http.get(f"/v1/products/{lg.product_id}/credit", params={"as_of": as_of})
    assert r.status_code == 200, r.text
    notice = r.json()["ladder"]["notice"]
    if not mine:
        return None
    [item] = mine
    assert (notice["unheard_lost_on"], notice["unheard"]) == (item["lost_on"], item["lost"])
    return item["lost_on"], item["lost"]


async def _suspension(api: CreditApi, lg: Ledger) -> dict[str, Any]:
    body = await api.credit(lg.product_id)
    [decision] = [d for d in body["decisions"] if d["decision"] == "suspend"]
    return dict(decision)


async def test_delivered_in_time_suspends_on_the_last_day_and_not_before_the_receipt(
    api: CreditApi, notifier: httpx.AsyncClient,
) -> None:
    uid = new_uid()
    lg = _with_phone(ledger(uid, "nd", F.ADC, T.LOW), _phone())
    red = ledger(uid, "ndred", F.ADC, T.LOW)
    await _billed(api, lg, red)
    r = await api.http.post("/v1/exemptions", json={
        "exemption_id": f"EXnd{uid}", "customer_id": red.customer.customer_id,
        "kind": "red_list", "reason": "重点客户", "approver": "集团账务管理员",
        "created_by": "test"})
    assert r.status_code == 201, r.text
    # The SMSC accepts at once but returns its receipt only 8 s later.
    r = await notifier.put("/v1/smsc/faults", json={"receipt_delay_s": 8})
    assert r.status_code == 200, r.text
    await _sweep(api, date(Y, 11, 25), f"nd-{uid}-25")
    sent = await _notice(api, lg, "sent", "delivered")
    assert sent["notice"]["status"] == "sent", sent  # accepted, no receipt yet
    await _sweep(api, date(Y, 11, 30), f"nd-{uid}-30a")
    assert await api.state(lg.product_id) == "suspension_warned"  # not delivered: waits

    delivered = await _notice(api, lg, "delivered")
    reached = datetime.fromisoformat(delivered["notice"]["delivered_at"])
    assert reached.astimezone(BUSINESS_TZ).date() == date(Y, 11, 25), delivered
    await _sweep(api, date(Y, 11, 30), f"nd-{uid}-30b")
    assert await api.state(lg.product_id) == "suspended"
    suspension = await _suspension(api, lg)
    assert "late" not in suspension["reason"] and "exception" not in suspension["reason"]
    assert suspension["inputs"]["notice_status"] == "delivered"
    # The red-listed product: no warning, so nothing to wait for, and never suspended.
    assert await api.state(red.product_id) == "warned"
    assert "suspension_warning" not in [d[0] for d in await api.decisions(red.product_id)]


async def test_a_warning_held_by_quiet_hours_counts_from_the_end_of_them(
    api: CreditApi,
) -> None:
    uid = new_uid()
    lg = _with_phone(ledger(uid, "nq", F.ADC, T.LOW), _phone())
    await _billed(api, lg)
    await _sweep(api, date(Y, 11, 25), f"nq-{uid}-25", hour=22)  # quiet hours
    ladder = await _notice(api, lg, "delivered")
    # Reached the customer when the quiet hours ended: 08:00 on the 26th (business time).
    delivered = datetime.fromisoformat(ladder["notice"]["delivered_at"])
    assert delivered.astimezone(BUSINESS_TZ) == datetime(Y, 11, 26, 8, tzinfo=BUSINESS_TZ)
    # Its notice counts from then, and the date the SMS named says so (the 26th + 5 days),
    # not the tier's day (11-30, on which nothing would happen).
    assert ladder["suspension_deadline"] == f"{Y}-12-01", ladder
    [warning] = [d for d in (await api.credit(lg.product_id))["decisions"]
                 if d["decision"] == "suspension_warning"]
    assert warning["context"]["deadline"] == f"{Y}-12-01", warning
    await _sweep(api, date(Y, 11, 30), f"nq-{uid}-30")
    assert await api.state(lg.product_id) == "suspension_warned"  # 26th + 5 days > 30th
    await _sweep(api, date(Y, 12, 1), f"nq-{uid}-01")
    assert await api.state(lg.product_id) == "suspended"  # on the day it named
    reason = (await _suspension(api, lg))["reason"]
    assert reason.endswith(f"; late: suspension warning of {Y}-11-25 named {Y}-12-01"), reason


async def test_a_lost_warning_is_sent_again_and_the_suspension_follows_it(
    api: CreditApi, notifier: httpx.AsyncClient,
) -> None:
    uid, phone = new_uid(), _phone()
    lg = _with_phone(ledger(uid, "nf", F.ADC, T.LOW), phone)
    await _billed(api, lg)
    r = await notifier.put("/v1/smsc/faults", json={"undeliverable_recipients": [phone]})
    assert r.status_code == 200, r.text
    await _sweep(api, date(Y, 11, 25), f"nf-{uid}-25")
    failed = await _notice(api, lg, "failed", "cancelled")
    assert failed["notice"]["lost_warnings"] == 1 and not failed["notice"]["permanent"], failed
    r = await notifier.put("/v1/smsc/faults", json={})
    assert r.status_code == 200, r.text

    await _sweep(api, date(Y, 11, 30), f"nf-{uid}-30")  # no suspension: a new warning
    assert await api.state(lg.product_id) == "suspension_warned"
    warnings = [d for d in (await api.credit(lg.product_id))["decisions"]
                if d["decision"] == "suspension_warning"]
    assert [w["context"]["deadline"] for w in warnings] == [f"{Y}-11-30", f"{Y}-12-05"]
    ladder = await _notice(api, lg, "delivered")
    assert ladder["suspension_warning_id"] == warnings[1]["decision_id"]
    await _sweep(api, date(Y, 12, 4), f"nf-{uid}-04")
    assert await api.state(lg.product_id) == "suspension_warned"
    await _sweep(api, date(Y, 12, 5), f"nf-{uid}-05")
    assert await api.state(lg.product_id) == "suspended"
    reason = (await _suspension(api, lg))["reason"]
    assert f"; late: suspension warning of {Y}-11-30 named {Y}-12-05" in reason, reason


async def test_an_undeliverable_warning_is_an_exception_with_its_reason(
    api: CreditApi,
) -> None:
    uid = new_uid()
    lg = _with_phone(ledger(uid, "nu", F.ADC, T.LOW), "12345")  # no valid contact number
    await _billed(api, lg)
    await _sweep(api, date(Y, 11, 25), f"nu-{uid}-25")
    ladder = await _notice(api, lg, "failed")
    assert ladder["notice"]["permanent"], ladder
    await _sweep(api, date(Y, 11, 30), f"nu-{uid}-30")
    assert await api.state(lg.product_id) == "suspended"
    reason = (await _suspension(api, lg))["reason"]
    assert "; exception: suspension warning undeliverable: " in reason, reason


async def test_a_customer_without_a_group_contact_is_an_exception_not_a_wait(
    api: CreditApi,
) -> None:
    """No group contact on record: the suspension warning is logged undeliverable by the
    notifier (not silently skipped), so the suspension goes ahead as an exception instead of
    waiting for an SMS nobody could be sent."""
    uid = new_uid()
    lg = ledger(uid, "nc", F.ADC, T.LOW)
    c = lg.customer
    lg.customer = CustomerSnapshot(
        customer_id=c.customer_id, name=c.name, tier=c.tier, star_level=c.star_level,
        account_manager=c.account_manager, contacts=())
    await _billed(api, lg)
    await _sweep(api, date(Y, 11, 25), f"nc-{uid}-25")
    ladder = await _notice(api, lg, "failed")
    assert ladder["notice"]["permanent"], ladder
    await _sweep(api, date(Y, 11, 30), f"nc-{uid}-30")
    assert await api.state(lg.product_id) == "suspended"
    reason = (await _suspension(api, lg))["reason"]
    assert "; exception: suspension warning undeliverable: missing phone number" in reason, reason


async def test_a_warning_never_heard_of_is_sent_again_then_an_exception(
    api: CreditApi, notifier: httpx.AsyncClient,
) -> None:
    """The SMSC accepts every warning but its receipt never comes (within the test): each
    warning counts as lost 2 days after its deadline (CREDIT_NOTICE_UNHEARD_AFTER_DAYS), the
    sweep warns again, and after 3 in a row the suspension is an exception saying so."""
    uid = new_uid()
    lg = _with_phone(ledger(uid, "nn", F.ADC, T.LOW), _phone())
    await _billed(api, lg)
    r = await notifier.put("/v1/smsc/faults", json={"receipt_delay_s": 86_400})
    assert r.status_code == 200, r.text
    await _sweep(api, date(Y, 11, 25), f"nn-{uid}-25")
    await _notice(api, lg, "sent")

    async def warnings() -> list[dict[str, Any]]:
        return [d for d in (await api.credit(lg.product_id))["decisions"]
                if d["decision"] == "suspension_warning"]

    await _sweep(api, date(Y, 11, 30), f"nn-{uid}-30")
    await _sweep(api, date(Y, 12, 1), f"nn-{uid}-01")  # the day before the limit: waits
    assert await api.state(lg.product_id) == "suspension_warned"
    assert len(await warnings()) == 1
    # Reported: the product's ladder and the listing of suspensions an unheard warning holds.
    assert await _unheard(api, lg, date(Y, 12, 1)) == (f"{Y}-12-02", False)
    assert await _unheard(api, lg, date(Y, 12, 2)) == (f"{Y}-12-02", True)
    await _sweep(api, date(Y, 12, 2), f"nn-{uid}-02")  # the 30th + 2: lost, warned again
    assert [w["context"]["deadline"] for w in await warnings()] == [f"{Y}-11-30", f"{Y}-12-08"]
    ladder = await _notice(api, lg, "sent")
    assert ladder["suspension_warning_id"] == (await warnings())[1]["decision_id"]
    assert ladder["notice"]["lost_warnings"] == 1, ladder
    await _sweep(api, date(Y, 12, 2), f"nn-{uid}-02b")  # a re-run decides nothing more
    assert len(await warnings()) == 2
    assert await _unheard(api, lg, date(Y, 12, 2)) is None  # the new one's deadline is ahead

    await _sweep(api, date(Y, 12, 10), f"nn-{uid}-10")  # the 8th + 2: lost again
    assert [w["context"]["deadline"] for w in await warnings()][2:] == [f"{Y}-12-16"]
    await _notice(api, lg, "sent")
    await _sweep(api, date(Y, 12, 17), f"nn-{uid}-17")
    assert await api.state(lg.product_id) == "suspension_warned"
    await _sweep(api, date(Y, 12, 18), f"nn-{uid}-18")  # the third lost: an exception
    assert await api.state(lg.product_id) == "suspended"
    assert len(await warnings()) == 3
    suspension = await _suspension(api, lg)
    assert suspension["reason"].endswith(
        f"; exception: 3 suspension warnings in a row unheard: never heard of by {Y}-12-18, "
        f"2 days after its deadline {Y}-12-16: sent, no delivery receipt"), suspension
    assert suspension["inputs"]["notice_status"] == "unheard"
    assert suspension["inputs"]["notice_exception"] is True
