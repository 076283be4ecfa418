"""Sweeps and balance events that must not do harm: re-runs and redeliveries change nothing,
a payment racing a sweep wins, exemptions stop suspension, retention runs out into
pre-cancellation, and the mass-suspension guard holds an abnormal sweep until confirmed."""

import asyncio
import uuid
from datetime import date
from typing import Any

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock, SystemClock
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import DecisionType
from common.contracts.snapshots import ProductFamily, ProductSnapshot, Tier
from common.envelope import Envelope
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from common.testing.notices import notices_heard
from common.testing.polling import eventually
from common.testing.stack import Stack
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.credit.domain.commands import RunSweep
from credit_control.credit.service_layer import sweeps
from credit_control.service_layer.context import CreditContext

from .helpers import CreditApi, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier


def redelivered(envelope: Envelope[Any]) -> Envelope[Any]:
    """The same payload under a new event id: what a producer retry outside the outbox does."""
    return msgspec.structs.replace(envelope, event_id=uuid.uuid4())


async def test_rerunning_sweeps_and_redelivering_events_change_nothing(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    ledgers = [ledger(uid, f"idem{f.value[:3]}{t.value}", f, t)
               for f, t in ((F.ADC, T.LOW), (F.MAS, T.LOW), (F.WORK_ORDER, T.LOW),
                            (F.ADC, T.MID))]
    await api.deliver(*((lg, lg.bill_run(f"{y}-04", 12_345, at(date(y, 5, 2), 9)))
                        for lg in ledgers))
    first = {}
    for n, day in enumerate((date(y, 5, 10), date(y, 5, 25), date(y, 5, 31))):
        first[n] = await api.sweep(day, f"idem-{uid}-{n}")
        await api.settled(*ledgers)
    before = await api.footprint(ledgers)
    decided = {lg.product_id: await api.decisions(lg.product_id) for lg in ledgers}
    assert [d[0] for d in decided[ledgers[0].product_id]] == [
        "bill_notice", "warning", "suspension_warning", "suspend"]
    assert [d[0] for d in decided[ledgers[3].product_id]] == ["bill_notice", "warning"]

    # The same sweep id replays its first answer; new ids on the same days decide nothing.
    assert await api.sweep(date(y, 5, 31), f"idem-{uid}-2") == first[2]
    for n, day in enumerate((date(y, 5, 10), date(y, 5, 25), date(y, 5, 31), date(y, 5, 31))):
        await api.sweep(day, f"idem-{uid}-again-{n}", hour=21 + n % 2)
    # Every event again as is (the inbox), and again under new event ids (stale sequences),
    # then one new event per account that decides nothing: when it is applied, so are they.
    replays = [e for lg in ledgers for e in lg.sent]
    await api.publish(*replays, *(redelivered(e) for e in replays))
    await api.deliver(*((lg, lg.event(BalanceCause.CHARGE, at(date(y, 6, 1), 9),
                                      [(f"{y}-04", 12_345)])) for lg in ledgers))
    await api.settled(*ledgers)

    assert await api.footprint(ledgers) == before
    for lg in ledgers:
        assert await api.decisions(lg.product_id) == decided[lg.product_id]


async def _waiting_on_locks(api: CreditApi) -> int:
    async with api.db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%product_credit%'")) or 0)


def _without_feed_check(api: CreditApi, stack: Stack) -> CreditContext:
    """The sweep use case in-process, as the service runs it but without waiting for the
    balance feed (`CreditContext.feed` None)."""
    settings = Settings(database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap)
    return CreditContext(api.db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                         SystemClock(), settings=settings)


async def test_a_payment_racing_the_month_end_sweep_wins(api: CreditApi, stack: Stack,
                                                         test_year: int) -> None:
    """The payment commits while the sweep waits for the product rows: the sweep re-checks
    the locked rows and suspends nothing. Through the service, a sweep waits until a payment
    published before it is applied (test_sweep_feed_process.py); the race left is a payment
    applied while the sweep runs (published after it began), which the rows' locks settle. It
    is made here by a sweep that does not wait for the feed, in-process."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "race", F.ADC, T.LOW)
    lg.products = (*lg.products, ProductSnapshot(
        product_id=f"Prace{uid}-mas", cpno=f"CPrace{uid}", name="华为CRM-MAS", family=F.MAS,
        vendor="huawei"))
    ids = [p.product_id for p in lg.products]
    await api.deliver((lg, lg.bill_run(f"{y}-06", 5_000, at(date(y, 7, 2), 9))))
    await api.sweep(date(y, 7, 25), f"race-{uid}-sw")
    # The warning's SMS must be heard of before the rows are locked: the consumer that records
    # it would queue behind the blocked payment, and the suspension needs it (notice gate).
    assert await notices_heard(api.db, product_prefix=f"Prace{uid}") == 0

    async with api.db.connect() as blocker:
        await blocker.execute(text(
            "SELECT 1 FROM credit.product_credit WHERE product_id = ANY(:p) "
            "ORDER BY product_id FOR UPDATE"), {"p": ids})
        await api.publish(lg.payment(at(date(y, 7, 31), 19)))
        await eventually(lambda: _waiting_on_locks(api), lambda n: n >= 1,
                         what="the payment waits for the product rows")
        sweep = asyncio.create_task(sweeps.run_sweep(_without_feed_check(api, stack), RunSweep(
            sweep_id=f"race-{uid}-end", as_of=at(date(y, 7, 31)))))
        await eventually(lambda: _waiting_on_locks(api), lambda n: n >= 2,
                         what="the sweep waits behind the payment")
        await blocker.rollback()
    assert (await sweep).status_code == 201
    await api.applied(lg)
    for product_id in ids:
        assert [d[0] for d in await api.decisions(product_id)] == [
            "bill_notice", "suspension_warning", "arrears_cleared"]
        assert await api.state(product_id) == "normal"
    assert await api.outbox(ids[1], "provisioning.commands.v1") == []


async def test_a_payment_while_a_work_order_suspension_is_open_restores(
    api: CreditApi, test_year: int
) -> None:
    """Restore wins over a suspension in flight: the open suspension work order is
    cancelled, a restore work order takes over."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "wor", F.WORK_ORDER, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-06", 5_000, at(date(y, 7, 2), 9))))
    await api.sweep(date(y, 7, 25), f"wor-{uid}-sw")  # notice before suspension
    await api.sweep(date(y, 7, 31), f"wor-{uid}")
    assert await api.state(lg.product_id) == "suspend_requested"
    await api.deliver((lg, lg.payment(at(date(y, 8, 1), 9))))
    assert await api.state(lg.product_id) == "restore_requested"
    orders = await api.work_orders(product_id=lg.product_id)
    assert [(o["action"], o["status"]) for o in orders] == [
        ("suspend", "cancelled"), ("restore", "created")]
    await api.complete_work_orders(lg)
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "normal"
    assert [h["state_after"] for h in credit["state_history"]] == [
        "warned", "suspension_warned", "suspend_requested", "restore_requested", "normal"]


async def test_red_list_and_emergency_exemptions_stop_suspension(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    names = ("red", "emergency", "expired", "removed", "plain")
    ledgers = {n: ledger(uid, f"ex{n}", F.MAS if n == "red" else F.ADC, T.LOW) for n in names}
    exemptions = {
        "red": ("red_list", None), "emergency": ("emergency", f"{y}-07-15T00:00:00+08:00"),
        "expired": ("emergency", f"{y}-06-20T00:00:00+08:00"), "removed": ("red_list", None)}
    # The bill run first: credit-control knows a customer from its balance events (an
    # exemption for a customer no service has heard of is a 404).
    every = list(ledgers.values())
    await api.deliver(*((lg, lg.bill_run(f"{y}-05", 8_000, at(date(y, 6, 2), 9)))
                        for lg in every))
    for name, (kind, until) in exemptions.items():
        r = await api.http.post("/v1/exemptions", json={
            "exemption_id": f"EX{name}{uid}", "customer_id": ledgers[name].customer.customer_id,
            "kind": kind, "reason": "重要客户, 已承诺缴费", "approver": "分管副总",
            "created_by": "集团账务管理员", "until": until})
        assert r.status_code == 201, r.text
    r = await api.http.post(f"/v1/exemptions/EXremoved{uid}/remove",
                            json={"removed_by": "集团账务管理员"})
    assert r.status_code == 200 and r.json()["removed_at"], r.text
    for n, day in enumerate((date(y, 6, 10), date(y, 6, 25), date(y, 6, 30))):
        await api.sweep(day, f"ex-{uid}-{n}")
    await api.settled(*every)

    # Exempt products are reminded but never threatened: no suspension warning (seed 000,
    # INTERFACES §2), and every decision's context says so for the notifier.
    reminded = ["bill_notice", "warning"]
    for name, lg in ledgers.items():
        exempt = name in ("red", "emergency")
        assert [d[0] for d in await api.decisions(lg.product_id)] == (
            reminded if exempt else [*reminded, "suspension_warning", "suspend"]), name
        assert await api.state(lg.product_id) == ("warned" if exempt else "suspended"), name
        if name != "expired":  # exempt at the warning, not after 06-20
            # (the bill notice came before the exemptions were made: it was not exempt yet)
            contexts = [d["context"] for d in (await api.credit(lg.product_id))["decisions"]
                        if d["decision"] != "bill_notice"]
            assert {c["suspension_exempt"] for c in contexts} == {exempt}, name
    red = await api.credit(ledgers["red"].product_id)
    assert [e["kind"] for e in red["exemptions"]] == ["red_list"]
    # explain judges exemptions as of the moment asked, as a sweep does (not the wall clock)
    emergency = f"/v1/products/{ledgers['emergency'].product_id}/credit"
    for as_of, kinds in ((f"{y}-06-30T20:00:00+08:00", ["emergency"]),
                         (f"{y}-07-16T00:00:00+08:00", [])):
        r = await api.http.get(emergency, params={"as_of": as_of})
        assert [e["kind"] for e in r.json()["exemptions"]] == kinds, as_of
    audit = (await api.http.get("/v1/audit", params={
        "entity": "red_list", "entity_id": ledgers["removed"].customer.customer_id})).json()
    assert sorted(a["action"] for a in audit) == ["add", "remove"]


async def test_retention_runs_out_into_pre_cancellation(api: CreditApi, test_year: int) -> None:
    """保号期: 90 days for others, 120 for 4–5★ (star from the event or from the profile)."""
    y, uid = test_year, new_uid()
    plain = ledger(uid, "retplain", F.ADC, T.LOW)
    four = ledger(uid, "retfour", F.ADC, T.LOW, star_level=4)
    five = ledger(uid, "retfive", F.MAS, T.LOW)
    r = await api.http.put(f"/v1/profiles/{five.customer.customer_id}",
                           json={"changed_by": "信用评级组", "star_level": 5})
    assert r.status_code == 200 and r.json()["credit_limit_fen"] == 300_00, r.text
    every = (plain, four, five)
    await api.deliver(*((lg, lg.bill_run(f"{y}-02", 900_00, at(date(y, 3, 2), 9)))
                        for lg in every))
    await api.sweep(date(y, 3, 25), f"ret-{uid}-sw")  # notice before suspension
    await api.sweep(date(y, 3, 31), f"ret-{uid}-0")
    await api.settled(*every)
    assert {await api.state(lg.product_id) for lg in every} == {"suspended"}

    # Suspended on 03-31: day 90 is 06-29, day 120 is 07-29.
    expect = [(date(y, 6, 28), "suspended", "suspended"), (date(y, 6, 29), "pre_cancel",
                                                           "suspended"),
              (date(y, 7, 28), "pre_cancel", "suspended"), (date(y, 7, 29), "pre_cancel",
                                                            "pre_cancel")]
    for n, (day, short, long) in enumerate(expect, start=1):
        await api.sweep(day, f"ret-{uid}-{n}")
        assert [await api.state(lg.product_id) for lg in every] == [short, long, long], day
    for lg in every:
        assert [d[0] for d in await api.decisions(lg.product_id)] == [
            "bill_notice", "suspension_warning", "suspend", "pre_cancel"]
    changed = await api.outbox(plain.account_id, "credit.decisions.v1")
    assert [(e["state_before"], e["state_after"]) for e in changed if "decision" not in e] == [
        ("suspension_warned", "suspended"), ("suspended", "pre_cancel")]


@pytest.fixture
async def strict_guard(api: CreditApi) -> Any:
    """A guard that holds any sweep suspending anything; the settings come back afterwards."""
    old = (await api.http.get("/v1/guard")).json()
    r = await api.http.put("/v1/guard", json={"changed_by": "test", "enabled": True,
                                              "max_share": 1e-9, "min_active": 0})
    assert r.status_code == 200, r.text
    yield r.json()
    r = await api.http.put("/v1/guard", json={
        "changed_by": "test", "enabled": old["enabled"], "max_share": old["max_share"],
        "min_active": old["min_active"]})
    assert r.status_code == 200, r.text


async def test_the_guard_holds_an_abnormal_sweep_until_confirmed(
    api: CreditApi, test_year: int, strict_guard: dict[str, Any]
) -> None:
    y, uid = test_year, new_uid()
    ledgers = [ledger(uid, f"guard{i}", F.ADC, T.LOW) for i in range(2)]
    await api.deliver(*((lg, lg.bill_run(f"{y}-07", 3_000, at(date(y, 8, 2), 9)))
                        for lg in ledgers))
    sweep_id = f"guard-{uid}"
    await api.sweep(date(y, 8, 25), f"{sweep_id}-sw")  # notice before suspension
    held = await api.sweep(date(y, 8, 31), sweep_id)
    assert held["held"]["would_suspend"] >= 2, held
    assert "suspend" not in held["decisions"]
    for lg in ledgers:  # reminders still went out; nothing was suspended
        assert [d[0] for d in await api.decisions(lg.product_id)] == [
            "bill_notice", "suspension_warning"]
    holds = (await api.http.get("/v1/sweeps/holds", params={"status": "held"})).json()
    assert sweep_id in [h["sweep_id"] for h in holds]
    assert await api.sweep(date(y, 8, 31), sweep_id) == held  # a replay stays held

    r = await api.http.post(f"/v1/sweeps/{sweep_id}/confirm",
                            json={"confirmed_by": "分管副总", "note": "月末集中停机, 已核实"})
    assert r.status_code == 200, r.text
    assert r.json()["decisions"]["suspend"] >= 2
    for lg in ledgers:
        assert await api.state(lg.product_id) == "suspended"
    again = await api.http.post(f"/v1/sweeps/{sweep_id}/confirm", json={"confirmed_by": "x"})
    assert again.status_code == 409, again.text
    unknown = await api.http.post(f"/v1/sweeps/nope-{uid}/confirm", json={"confirmed_by": "x"})
    assert unknown.status_code == 404, unknown.text
    audit = (await api.http.get("/v1/audit", params={"entity": "sweep_hold",
                                                     "entity_id": sweep_id})).json()
    # the confirmer is the token's subject (the service token here), not the body's word
    assert [(a["actor"], a["new"]["status"]) for a in audit] == [("service", "confirmed")]


async def test_the_guards_bound_never_counts_fewer_than_the_exact_match(
    api: CreditApi, test_year: int
) -> None:
    """The guard skips its exact count when a bare scan's bound keeps within the share
    (sweeps._guard): that is safe only if the bound is never below what the suspension rows
    would suspend, over the whole table as it stands (other tests' products included)."""
    from credit_control.admin.adapters import admin_repository as admin_repo
    from credit_control.credit.adapters import sweep_sql
    from credit_control.credit.domain import rules

    y, uid = test_year, new_uid()
    ledgers = [ledger(uid, f"bound{i}", F.ADC, T.LOW) for i in range(2)]
    await api.deliver(*((lg, lg.bill_run(f"{y}-07", 3_000, at(date(y, 8, 2), 9)))
                        for lg in ledgers))
    await api.sweep(date(y, 8, 25), f"op-bound{uid}-sw")  # notice before suspension
    await notices_heard(api.db)
    day = date(y, 8, 31)
    async with api.db.connect() as conn:
        table, _ = await admin_repo.rule_table(conn)
        plan = list(enumerate(rules.sweep_plan(table, day)))
        suspends = [(n, s) for n, s in plan if s.row.decision is DecisionType.SUSPEND]
        assert suspends
        await sweep_sql.tune(conn)
        active, bound = await sweep_sql.guard_bound(conn, suspends)
        would, active_exact = await sweep_sql.guard_counts(conn, suspends, sweep_sql.params(
            [], at(day, 20), at(day, 20), table.version, "", 0, "test", None, at(day, 20), day))
        await conn.rollback()
    assert active == active_exact
    assert bound >= would >= 2  # this test's two are due, heard of and owing


async def test_a_sweep_dated_before_a_products_last_change_leaves_it_to_the_next_sweep(
    api: CreditApi, test_year: int
) -> None:
    """A sweep's moment before the product's last change (a catch-up of a missed day, or a
    day re-run by hand, after a payment was reversed): its facts are newer than the sweep's
    day, so it waits for the next sweep; no decision is dated before its last change, and
    the reversal's notice is never followed by a warning from the past."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "past", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-04", 12_345, at(date(y, 5, 2), 9))))
    await api.deliver((lg, lg.payment(at(date(y, 5, 12), 9))))
    await api.deliver((lg, lg.event(BalanceCause.REVERSAL, at(date(y, 5, 13), 9),
                                    [(f"{y}-04", 12_345)])))
    await api.settled(lg)
    assert [d[0] for d in await api.decisions(lg.product_id)] == [
        "bill_notice", "arrears_cleared", "payment_reversed"]
    await api.sweep(date(y, 5, 10), f"past-{uid}-10")  # its warning day, before the reversal
    await api.settled(lg)
    assert [d[0] for d in await api.decisions(lg.product_id)] == [
        "bill_notice", "arrears_cleared", "payment_reversed"]
    await api.sweep(date(y, 5, 25), f"past-{uid}-25")  # after it: the ladder goes on
    await api.settled(lg)
    later = (await api.decisions(lg.product_id))[3:]
    assert later and all(day == date(y, 5, 25) for _, _, day in later), later


async def test_a_catch_up_still_acts_on_a_product_decided_on_after_its_missed_moment(
    api: CreditApi, db: AsyncEngine, stack: Stack, test_year: int
) -> None:
    """A catch-up acts late on purpose: the next month's bill notice, decided before the
    catch-up ran, must not hold back what the missed day owed (a month-end catch-up after
    the 1st's bill run would otherwise leave its suspensions to the evening)."""
    y, uid = test_year, new_uid()
    lg = ledger(uid, "cup", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-04", 12_345, at(date(y, 5, 2), 9))))
    await api.deliver((lg, lg.event(BalanceCause.BILL_RUN, at(date(y, 6, 2), 9),
                                    [(f"{y}-04", 12_345), (f"{y}-05", 1_000)], f"{y}-05")))
    await api.settled(lg)
    assert [d[0] for d in await api.decisions(lg.product_id)] == ["bill_notice", "bill_notice"]
    await api.sweep(date(y, 5, 10), f"cuh-{uid}")  # by hand, of a day before its last decision
    await api.settled(lg)
    assert [d[0] for d in await api.decisions(lg.product_id)] == ["bill_notice", "bill_notice"]
    settings = Settings(database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(y, 6, 3), 10)), settings=settings)
    await sweeps.run_sweep(ctx, RunSweep(sweep_id=f"cuc-{uid}", as_of=at(date(y, 5, 10))),
                           catch_up=True)
    await api.settled(lg)
    assert [(d[0], d[2]) for d in await api.decisions(lg.product_id)][2:] == [
        ("warning", date(y, 5, 10))]
