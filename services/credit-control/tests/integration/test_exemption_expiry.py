"""An exemption that runs out at its `until` is announced once (admin/service_layer/
expiries.py): `credit.exemption_changed` (not exempt, as of `until`) for each product of a
customer no other exemption holds, through `POST /v1/exemptions/expiries {as_of}` (the
closed loop's ticker runs the same as of the clock). Not before its `until`; not while a red
list still holds the customer (marked, nothing published); one announcement for several run
out together; a crash mid-batch announces nothing, and the next run announces it all once."""

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.snapshots import ProductFamily, ProductSnapshot, Tier
from common.envelope import Envelope
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.stack import Stack
from credit_control.adapters import tables as t
from credit_control.admin.domain.expiries import EXPIRY_ACTOR
from credit_control.admin.service_layer.expiries import announce_expiries
from credit_control.config import Settings
from credit_control.service_layer.context import CreditContext

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration]
F, T = ProductFamily, Tier
TOPIC = "credit.decisions.v1"


async def _known(api: CreditApi, lg: Ledger, year: int) -> None:
    """Its products known to credit-control (a bill run brought them)."""
    await api.deliver((lg, lg.bill_run(f"{year}-01", 10_000, at(date(year, 2, 2), 10))))


async def _exempt(api: CreditApi, lg: Ledger, exemption_id: str, kind: str,
                  until: Any = None) -> None:
    body = {"exemption_id": exemption_id, "customer_id": lg.customer.customer_id,
            "kind": kind, "reason": "重要客户保障", "approver": "分管副总"}
    if until is not None:
        body["until"] = until.isoformat()
    r = await api.http.post("/v1/exemptions", json=body)
    assert r.status_code == 201, r.text


async def _changes(api: CreditApi, lg: Ledger) -> list[dict[str, Any]]:
    """What credit-control said about the account's products' exemption, oldest first."""
    async with api.db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT payload::jsonb -> 'payload' FROM credit.outbox_messages "
            "WHERE key = :k AND topic = :t AND event_type = 'credit.exemption_changed' "
            "ORDER BY id, position"), {"k": lg.account_id, "t": TOPIC})
        return [r[0] for r in rows]


async def _expiries(api: CreditApi, as_of: Any) -> dict[str, Any]:
    r = await api.http.post("/v1/exemptions/expiries", json={"as_of": as_of.isoformat()})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _two_products(uid: str) -> Ledger:
    lg = ledger(uid, "exp2", F.ADC, T.MID)
    second = ProductSnapshot(product_id=f"{lg.product_id}-b", cpno=f"{lg.products[0].cpno}B",
                             name="产品二", family=F.ADC)
    return Ledger(lg.account_id, lg.customer, (*lg.products, second))


async def test_an_emergency_run_out_is_announced_once_as_of_its_until(
    api: CreditApi, test_year: int,
) -> None:
    uid, y = new_uid(), test_year
    lg = _two_products(uid)
    await _known(api, lg, y)
    until = at(date(y, 3, 10), 18)
    await _exempt(api, lg, f"EXexp{uid}", "emergency", until)
    [added, _] = await _changes(api, lg)
    assert added["suspension_exempt"] is True
    # Not before its time.
    before = await _expiries(api, until - timedelta(seconds=1))
    assert f"EXexp{uid}" not in {e["exemption_id"] for e in before["expired"]}
    assert len(await _changes(api, lg)) == 2
    done = await _expiries(api, until + timedelta(hours=1))
    [ours] = [e for e in done["expired"] if e["exemption_id"] == f"EXexp{uid}"]
    assert ours["announced"] is True and ours["customer_id"] == lg.customer.customer_id
    ran_out = (await _changes(api, lg))[2:]
    assert sorted(c["product_id"] for c in ran_out) == sorted(p.product_id for p in lg.products)
    for c in ran_out:
        assert (c["suspension_exempt"], c["exemption_id"], c["customer_id"]) == (
            False, f"EXexp{uid}", lg.customer.customer_id)
        assert datetime.fromisoformat(c["as_of"]) == until
    # Once: a re-run, later still, announces nothing again.
    again = await _expiries(api, until + timedelta(days=2))
    assert f"EXexp{uid}" not in {e["exemption_id"] for e in again["expired"]}
    assert len(await _changes(api, lg)) == 4
    [listed] = (await api.http.get("/v1/exemptions", params={
        "customer_id": lg.customer.customer_id})).json()
    assert listed["expiry_announced_at"] is not None
    audit = (await api.http.get("/v1/audit", params={
        "entity": "emergency", "entity_id": lg.customer.customer_id})).json()
    assert [(a["action"], a["actor"]) for a in audit][:1] == [("expire", EXPIRY_ACTOR)]


async def test_a_red_list_still_holding_keeps_the_customer_exempt(
    api: CreditApi, test_year: int,
) -> None:
    """Nothing changed for the products: marked (never again), nothing published; the red
    list announces itself when it is removed."""
    uid, y = new_uid(), test_year
    lg = ledger(uid, "exprl", F.ADC, T.MID)
    await _known(api, lg, y)
    until = at(date(y, 3, 11), 18)
    await _exempt(api, lg, f"EXrl{uid}", "red_list")
    await _exempt(api, lg, f"EXem{uid}", "emergency", until)
    assert [c["suspension_exempt"] for c in await _changes(api, lg)] == [True, True]
    done = await _expiries(api, until + timedelta(minutes=5))
    [ours] = [e for e in done["expired"] if e["exemption_id"] == f"EXem{uid}"]
    assert ours["announced"] is False
    assert len(await _changes(api, lg)) == 2
    listed = {e["exemption_id"]: e for e in (await api.http.get("/v1/exemptions", params={
        "customer_id": lg.customer.customer_id})).json()}
    assert listed[f"EXem{uid}"]["expiry_announced_at"] is not None
    assert listed[f"EXrl{uid}"]["expiry_announced_at"] is None
    [expire, *_] = (await api.http.get("/v1/audit", params={
        "entity": "emergency", "entity_id": lg.customer.customer_id})).json()
    assert expire["action"] == "expire"
    assert expire["new"] == {"outcome": "still exempt: another exemption holds the customer"}
    again = await _expiries(api, until + timedelta(days=1))
    assert f"EXem{uid}" not in {e["exemption_id"] for e in again["expired"]}
    assert len(await _changes(api, lg)) == 2


async def test_several_run_out_together_are_one_announcement_as_of_the_last(
    api: CreditApi, test_year: int,
) -> None:
    uid, y = new_uid(), test_year
    lg = ledger(uid, "exp3", F.ADC, T.MID)
    await _known(api, lg, y)
    first = at(date(y, 3, 12), 9)
    last = first + timedelta(hours=6)
    await _exempt(api, lg, f"EXa{uid}", "emergency", first)
    await _exempt(api, lg, f"EXb{uid}", "emergency", last)
    await _expiries(api, last + timedelta(days=1))  # a catch-up after a pause
    [_, _, ran_out] = await _changes(api, lg)
    assert (ran_out["suspension_exempt"], ran_out["exemption_id"]) == (False, f"EXb{uid}")
    assert datetime.fromisoformat(ran_out["as_of"]) == last


class CrashingOutbox(Outbox):
    """The process dies (an exception, the transaction rolled back) as it writes the
    announcement of `product_id`."""

    def __init__(self, product_id: str) -> None:
        super().__init__(t.outbox)
        self.product_id = product_id

    async def add(self, conn: Any, topic: str, envelope: Envelope[Any]) -> None:
        if getattr(envelope.payload, "product_id", None) == self.product_id:
            raise RuntimeError("killed mid-batch")
        await super().add(conn, topic, envelope)


async def test_a_crash_mid_batch_announces_nothing_and_the_next_run_all_once(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int,
) -> None:
    uid, y = new_uid(), test_year
    lg = _two_products(uid)
    await _known(api, lg, y)
    until = at(date(y, 3, 13), 18)
    await _exempt(api, lg, f"EXcr{uid}", "emergency", until)
    settings = Settings(database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap)

    def ctx(outbox: Outbox) -> CreditContext:
        return CreditContext(db, outbox, IdempotencyKeys(t.idempotency_keys),
                             FixedClock(until + timedelta(hours=1)), settings=settings)

    as_of = until + timedelta(hours=1)
    await announce_expiries(ctx(Outbox(t.outbox)), until - timedelta(seconds=1))  # others'
    with pytest.raises(RuntimeError, match="killed mid-batch"):
        await announce_expiries(ctx(CrashingOutbox(lg.products[1].product_id)), as_of)
    assert len(await _changes(api, lg)) == 2  # only the two of its adding
    async with db.connect() as conn:
        marked = await conn.scalar(text(
            "SELECT expiry_announced_at FROM credit.exemptions WHERE exemption_id = :e"),
            {"e": f"EXcr{uid}"})
    assert marked is None
    done = await announce_expiries(ctx(Outbox(t.outbox)), as_of)
    assert f"EXcr{uid}" in {e["exemption_id"] for e in done["expired"]}
    ran_out = (await _changes(api, lg))[2:]
    assert sorted(c["product_id"] for c in ran_out) == sorted(p.product_id for p in lg.products)
    await announce_expiries(ctx(Outbox(t.outbox)), as_of)  # once only
    assert len(await _changes(api, lg)) == 4
