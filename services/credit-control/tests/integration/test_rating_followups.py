"""After the rating: the daily credit-multiple check, the potential-churn list with its
revisits, and seed 004's reports (JSON and CSV, for ops-viewer and above; writes refused to
ops-viewer), on the real database through credit-control's routes in process (a clock of the
test's own: the running services' clock is years before these business days).

Year: `rating_year + 3` (see test_rating_model.py), or later: one no earlier run of these
tests wrote into (the reports count everything of a month)."""

import contextlib
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import TokenGrant
from common.clock import FixedClock
from common.http import create_app
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.config import Settings
from credit_control.reports.entrypoints import rating_pages, rating_reports
from credit_control.reports.service_layer.reports import ReportContext
from credit_control.service_layer.context import CreditContext

from .helpers import at, new_uid
from .staff_clients import no_runtime, ready, staff_clients
from .test_rating_model import rating_year  # noqa: F401  (the module's year fixture)

pytestmark = [pytest.mark.integration]

STAFF = {"admin-token": TokenGrant(subject="zhao.lei", role="credit-admin"),
         "operator-token": TokenGrant(subject="wang.fang", role="operator"),
         "viewer-token": TokenGrant(subject="li.na", role="ops-viewer")}


@pytest.fixture(scope="module")
async def year(db: AsyncEngine, rating_year: int) -> int:  # noqa: F811
    async with db.connect() as conn:
        newest = await conn.scalar(text("""
            SELECT max(y) FROM (
              SELECT extract(year FROM max(started_at))::int AS y FROM credit.arrears_episodes
              UNION ALL SELECT extract(year FROM max(check_date))::int
                          FROM credit.multiple_checks
              UNION ALL SELECT extract(year FROM max(found_on))::int FROM credit.churn_entries
              UNION ALL SELECT extract(year FROM max(at))::int FROM credit.state_history) m"""))
    return max(rating_year + 3, int(newest or 0) + 1)


def in_process(db: AsyncEngine, now: datetime) -> contextlib.AbstractAsyncContextManager[
        dict[str, httpx.AsyncClient]]:
    """credit-control's `/v1` routes and the rating's reports at `now`: role → client."""
    return staff_clients(db, FixedClock(now), STAFF,
                         lambda ctx, settings: [rating_reports.router(ctx, settings)])


async def sql(db: AsyncEngine, statement: str, **params: Any) -> None:
    async with db.begin() as conn:
        await conn.execute(text(statement), params)


async def profile(db: AsyncEngine, customer: str, star: int | None, limit: int,
                  bills: list[tuple[date, int]] = ()) -> None:  # type: ignore[assignment]
    await sql(db, "INSERT INTO credit.credit_profiles VALUES (:c, :s, :l, 'test', :at, :tier)",
              c=customer, s=star, l=limit, at=at(date(2000, 1, 1)), tier="low")
    await sql(db, "INSERT INTO credit.customer_ratings VALUES (:c, :s, :l, 50, 'basic', "
              "'2000-01', 1, :at, :d)", c=customer, s=star, l=limit,
              at=at(date(2000, 1, 1)), d=date(2000, 1, 1))
    for month, fen in bills:
        await sql(db, "INSERT INTO credit.rating_bills VALUES ('A' || :c, :m, :c, :f)",
                  c=customer, m=month, f=fen)


async def product_moves(db: AsyncEngine, customer: str, moves: list[tuple[str, datetime]]
                        ) -> None:
    await sql(db, "INSERT INTO credit.product_credit (product_id, account_id, family, product,"
              " state, state_changed_at, customer_id, tier) VALUES ('P' || :c, 'A' || :c, "
              "'ADC', '{}', 'normal', :at, :c, 'low')", c=customer, at=moves[0][1])
    before = "normal"
    for state, when in moves:
        await sql(db, "INSERT INTO credit.state_history (product_id, state_before, state_after,"
                  " cause, at) VALUES ('P' || :c, :b, :s, 'test', :at)", c=customer, b=before,
                  s=state, at=when)
        before = state


async def test_credit_multiples_are_checked_daily(db: AsyncEngine, year: int) -> None:
    y, uid = year, new_uid()
    day = date(y, 3, 6)
    m = f"M{uid}"
    await profile(db, f"{m}high", 5, 300_00, [(date(y, 1, 1), 100_00), (date(y, 2, 1), 100_00)])
    await profile(db, f"{m}fine", 5, 300_00, [(date(y, 2, 1), 200_00)])
    await profile(db, f"{m}nobill", 1, 20_00)
    await profile(db, f"{m}none", 0, 0)
    await profile(db, f"{m}old", 4, 200_00, [(date(y - 1, 6, 1), 10_00)])  # outside 3 months
    async with in_process(db, at(day)) as http:
        r = await http["ops-viewer"].post("/v1/credit-multiples/checks",
                                          json={"as_of": at(day).isoformat()})
        assert r.status_code == 403 and r.json()["error"]
        for _ in range(2):  # a second check of the day adds nothing
            r = await http["operator"].post("/v1/credit-multiples/checks",
                                            json={"as_of": at(day).isoformat()})
            assert r.status_code == 200, r.text
        found = (await http["ops-viewer"].get("/v1/credit-multiples",
                                              params={"check_date": day.isoformat()})).json()
        mine = {f["customer_id"].removeprefix(m): f["multiple"] for f in found
                if f["customer_id"].startswith(m)}
        assert mine == {"high": 3.0, "nobill": None, "old": None}
        r = await http["operator"].post(f"/v1/credit-multiples/{day}/{m}high/review",
                                        json={"note": "降额 via override"})
        assert r.status_code == 403
        r = await http["credit-admin"].post(f"/v1/credit-multiples/{day}/{m}high/review",
                                            json={"note": "降额 via override"})
        assert r.status_code == 200 and r.json()["status"] == "reviewed", r.text
        csv = await http["ops-viewer"].get("/v1/reports/credit-multiples",
                                           params={"check_date": day.isoformat(),
                                                   "format": "csv"})
        assert csv.status_code == 200 and f"{m}high" in csv.text
        assert csv.text.lstrip("\ufeff").startswith("check_date,customer_id")


async def test_potential_churn_list_revisits_and_rate(db: AsyncEngine,
                                                      year: int) -> None:
    y, uid = year, new_uid()
    day = date(y, 5, 20)
    c = f"C{uid}"
    await profile(db, f"{c}good", 4, 200_00)
    await product_moves(db, f"{c}good", [("suspended", at(day - timedelta(days=5)))])
    await profile(db, f"{c}again", 1, 10_00)
    await product_moves(db, f"{c}again", [("suspended", at(day - timedelta(days=200))),
                                          ("normal", at(day - timedelta(days=190))),
                                          ("suspended", at(day - timedelta(days=3)))])
    await profile(db, f"{c}gone", 0, 0)
    await product_moves(db, f"{c}gone", [("pre_cancel", at(day - timedelta(days=2)))])
    await profile(db, f"{c}once", 1, 10_00)
    await product_moves(db, f"{c}once", [("suspended", at(day - timedelta(days=4)))])
    async with in_process(db, at(day)) as http:
        for _ in range(2):  # idempotent: one entry per customer and cause
            r = await http["operator"].post("/v1/churn/scans",
                                            json={"as_of": at(day).isoformat()})
            assert r.status_code == 200, r.text
        listed = (await http["ops-viewer"].get("/v1/churn/entries",
                                               params={"limit": 1000})).json()
        mine = sorted((e["customer_id"].removeprefix(c), e["cause"]) for e in listed
                      if e["customer_id"].startswith(c))
        assert mine == [("again", "repeated"), ("gone", "pre_cancelled"),
                        ("good", "suspended_high_star")]
        entry = next(e for e in listed if e["customer_id"] == f"{c}gone")
        assert entry["revisit_due"] == (day + timedelta(days=7)).isoformat()
        path = f"/v1/churn/entries/{entry['entry_id']}/revisit"
        r = await http["operator"].post(path, json={"outcome": "churned", "note": "已转网"})
        assert r.status_code == 422 and r.json()["error"]  # needs seed 003's reason
        r = await http["operator"].post(path, json={"outcome": "churned", "note": "已转网",
                                                    "churn_reason": "bribery"})
        assert r.status_code == 422
        r = await http["operator"].post(path, json={"outcome": "churned", "note": "已转网",
                                                    "churn_reason": "price"})
        assert r.status_code == 200 and r.json()["churn_reason"] == "price", r.text
        r = await http["operator"].post(path, json={"outcome": "retained", "note": "again"})
        assert r.status_code == 409
        good = next(e for e in listed if e["customer_id"] == f"{c}good")
        r = await http["operator"].post(f"/v1/churn/entries/{good['entry_id']}/revisit",
                                        json={"outcome": "retained", "note": "已缴费,满意"})
        assert r.status_code == 200, r.text

    async with in_process(db, at(date(y, 5, 31))) as http:
        rate = (await http["ops-viewer"].get("/v1/reports/churn-rate",
                                             params={"month": f"{y}-05"})).json()
    assert rate["reasons"].get("price", 0) >= 1
    zero = next(r for r in rate["rows"] if r["star"] == "0")
    assert zero["churned"] >= 1 and rate["seed_pct"] == {"credited": 0.09,
                                                         "non_credited": 2.01}


async def test_seed_004_reports(db: AsyncEngine, year: int) -> None:
    y, uid = year, new_uid()
    month = date(y, 8, 1)
    e = f"E{uid}"
    # an emergency no-suspension all month; two arrears episodes: one paid in 10 days,
    # one in three months (users: 50 % in the first month, 100 % in four; amount 25 %, 100 %)
    await sql(db, "INSERT INTO credit.exemptions (exemption_id, customer_id, kind, reason, "
              "approver, until, created_by, created_at) VALUES (:x, :c, 'emergency', '紧急不停机',"
              " 'zhao.lei', :until, 'zhao.lei', :at)", x=f"X{uid}", c=e,
              until=at(date(y, 9, 1)), at=at(month))
    for account, started, days, peak in (("1", 2, 10, 100_00), ("2", 3, 90, 300_00)):
        await sql(db, "INSERT INTO credit.arrears_episodes VALUES (:a, :s, :c, :p, :cl)",
                  a=f"A{e}-{account}", s=at(month + timedelta(days=started)), c=e, p=peak,
                  cl=at(month + timedelta(days=started + days)))
    # a 5★ customer suspended 48 hours then restored, a 0★ one still suspended
    await profile(db, f"{e}five", 5, 300_00)
    await product_moves(db, f"{e}five", [("suspended", at(month + timedelta(days=1), 8)),
                                         ("normal", at(month + timedelta(days=3), 8))])
    async with in_process(db, at(date(y, 12, 31))) as http:
        viewer = http["ops-viewer"]
        rec = (await viewer.get("/v1/reports/emergency-recovery",
                                params={"month": f"{y}-08"})).json()
        mine = {r["measure"]: r["pct"] for r in rec["rows"]}
        assert rec["episodes"] == 2  # only this test's episodes begin in this month
        assert list(mine.values()) == [50.0, 25.0, 100.0, 100.0]
        times = (await viewer.get("/v1/reports/suspension-time",
                                  params={"month": f"{y}-08"})).json()
        five = next(r for r in times["rows"] if r["star"] == "5")
        assert (five["suspensions"] >= 1 and five["avg_hours"] == 48.0) or five["suspensions"] > 1
        stars = (await viewer.get("/v1/reports/stars")).json()
        assert [r["star"] for r in stars["rows"]] == ["5", "4", "3", "2", "1", "0", "unrated"]
        assert stars["rows"][0]["seed_share_pct"] == 1.0
        for name, params in (("stars", {}), ("suspension-time", {"month": f"{y}-08"}),
                             ("emergency-recovery", {"month": f"{y}-08"}),
                             ("churn-rate", {"month": f"{y}-08"})):
            r = await viewer.get(f"/v1/reports/{name}", params={**params, "format": "csv"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), \
                name
            assert len(r.text.splitlines()) >= 2, name
        r = await viewer.get("/v1/reports/churn-rate", params={"month": "2026-13"})
        assert r.status_code == 422 and r.json()["error"]
        r = await viewer.post("/v1/ratings/runs", json={"model": "basic"})
        assert r.status_code == 403


async def test_the_dashboard_rating_page(db: AsyncEngine, year: int) -> None:
    y = year
    settings = Settings(api_tokens=STAFF)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(y, 9, 2))), settings=settings)
    app = create_app(title="credit-control", lifespan=no_runtime, readiness=ready)
    app.include_router(rating_pages.router(ReportContext(ctx, None),  # type: ignore[arg-type]
                                           settings.token_table()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://credit-control") as client:
        anonymous = await client.get("/dashboard/rating")
        assert anonymous.status_code == 401
        viewer = {"Authorization": "Bearer viewer-token"}
        page = await client.get("/dashboard/rating", params={"month": f"{y}-08"},
                                headers=viewer)
        assert page.status_code == 200, page.text
        for table in ("stars", "suspension-time", "emergency-recovery", "churn-rate",
                      "credit-multiples", "churn-list"):
            assert f'id="{table}"' in page.text, table
            csv = await client.get(f"/dashboard/rating/{table}.csv",
                                   params={"month": f"{y}-08"}, headers=viewer)
            assert csv.status_code == 200 and csv.headers["content-type"].startswith(
                "text/csv"), table
        assert "星级分布" in page.text and "seed 004" in page.text


async def test_the_schedule_runs_each_period_once(db: AsyncEngine, year: int) -> None:
    from credit_control.rating.entrypoints.scheduler import run_due

    y = year + 1
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(y, 1, 3))))
    early = await run_due(ctx, at(date(y, 1, 3)))
    assert early == [f"daily:{y}-01-03"]  # before the 5th: last month's bill may be missing
    due = await run_due(ctx, at(date(y, 1, 6)), date(y, 1, 3))
    assert due == [f"basic:{y}-01", f"guidance:{y}-H1", f"daily:{y}-01-06"]
    async with db.connect() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM credit.rating_runs"))
    again = await run_due(ctx, at(date(y, 1, 6), 21), date(y, 1, 6))
    assert again == [f"basic:{y}-01", f"guidance:{y}-H1"]  # the same periods, not run again
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM credit.rating_runs")) == before
        rows = (await conn.execute(text(
            "SELECT run_id, started_by FROM credit.rating_runs WHERE run_id LIKE :p "
            "ORDER BY run_id"), {"p": f"%:{y}-%"})).all()
    assert [tuple(r) for r in rows] == [(f"basic:{y}-01", "scheduler"),
                                        (f"guidance:{y}-H1", "scheduler")]


async def test_inputs_recorded_from_balance_events(db: AsyncEngine, year: int) -> None:
    """What the consumer keeps for the rating: the customer's brand and open date from the
    account's current event, a bill run's bill, a write-off's blacklist even from a stale
    event, and no arrears episode reopened by a stale one."""
    from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
    from common.contracts.snapshots import CustomerSnapshot, Person, Tier
    from credit_control.rating.adapters.rating_sql import record_inputs

    y, uid = year, new_uid()
    customer = CustomerSnapshot(customer_id=f"I{uid}", name="集团", tier=Tier.MID,
                                account_manager=Person(name="王经理", phone="13900139000"),
                                opened_on=date(y - 3, 4, 1), value_class="B")

    def event(seq: int, cause: BalanceCause, due: int, **extra: Any) -> BalanceChanged:
        dues = (BillMonthDue(bill_month=f"{y}-01", amount_due_fen=due),) if due else ()
        return BalanceChanged(account_id=f"A{uid}", sequence=seq, cause=cause,
                              as_of=at(date(y, 2, seq)), balance_fen=-due, amount_due_fen=due,
                              dues=dues, customer=customer, **extra)

    bill = event(3, BalanceCause.BILL_RUN, 5_00, closed_bill_month=f"{y}-01", billed_fen=9_00)
    stale_write_off = event(4, BalanceCause.WRITE_OFF, 5_00)
    paid = event(5, BalanceCause.PAYMENT, 0)
    await sql(db, "INSERT INTO credit.account_positions (account_id, sequence, balance_fen, "
              "amount_due_fen, dues, customer, cause, as_of) VALUES (:a, 5, 0, 0, '[]', '{}', "
              "'payment', :at)", a=f"A{uid}", at=paid.as_of)
    async with db.begin() as conn:
        await record_inputs(conn, [bill, paid, stale_write_off])
    async with db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT brand, opened_on, blacklisted FROM credit.rating_customers "
            "WHERE customer_id = :c"), {"c": f"I{uid}"})).one()
        bills = (await conn.execute(text(
            "SELECT bill_month, billed_fen FROM credit.rating_bills WHERE account_id = :a"),
            {"a": f"A{uid}"})).all()
        episodes = await conn.scalar(text(
            "SELECT count(*) FROM credit.arrears_episodes WHERE account_id = :a"),
            {"a": f"A{uid}"})
    assert tuple(row) == ("B", date(y - 3, 4, 1), True)
    assert [tuple(b) for b in bills] == [(date(y, 1, 1), 9_00)]
    assert episodes == 0


@pytest.mark.parametrize("told_due_before", [False, True])
async def test_one_open_arrears_episode_per_account_over_many_batches(
        db: AsyncEngine, year: int, told_due_before: bool) -> None:
    """An episode opens when the account first owes, its peak follows the debt up (not down)
    batch after batch, it closes when paid, and the next debt opens a second one; the
    database refuses a second open episode (migration 0025's partial unique index, which the
    insert's ON CONFLICT relies on). Told what the account owed before each batch (as the
    consumer tells it), the same episodes; and an episode whose debt did not grow past that
    is not even looked at."""
    from sqlalchemy.exc import IntegrityError

    from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
    from common.contracts.snapshots import CustomerSnapshot, Person, Tier
    from credit_control.rating.adapters.rating_sql import record_inputs

    y, uid = year, new_uid()
    customer = CustomerSnapshot(customer_id=f"J{uid}", name="集团", tier=Tier.MID,
                                account_manager=Person(name="王经理", phone="13900139000"))

    def event(seq: int, due: int) -> BalanceChanged:
        dues = (BillMonthDue(bill_month=f"{y}-01", amount_due_fen=due),) if due else ()
        return BalanceChanged(account_id=f"A{uid}", sequence=seq,
                              cause=BalanceCause.PAYMENT if due == 0 else BalanceCause.CHARGE,
                              as_of=at(date(y, 3, seq)), balance_fen=-due, amount_due_fen=due,
                              dues=dues, customer=customer)

    async def episodes() -> list[tuple[Any, ...]]:
        async with db.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(
                "SELECT started_at, peak_fen, cleared_at IS NULL FROM credit.arrears_episodes "
                "WHERE account_id = :a ORDER BY started_at"), {"a": f"A{uid}"})).all()]

    owed: dict[str, int] = {}

    async def batch(seq: int, due: int) -> None:  # one batch, as the consumer's
        async with db.begin() as conn:
            await record_inputs(conn, [event(seq, due)], [event(seq, due)],
                                dict(owed) if told_due_before else None)
        owed[f"A{uid}"] = due

    for seq, due in ((1, 1_00), (2, 3_00), (3, 2_00)):
        await batch(seq, due)
    assert await episodes() == [(at(date(y, 3, 1)), 3_00, True)]
    with pytest.raises(IntegrityError, match="ux_credit_arrears_episodes_open"):
        async with db.begin() as conn:
            await conn.execute(text(
                "INSERT INTO credit.arrears_episodes VALUES (:a, :s, :c, 1, NULL)"),
                {"a": f"A{uid}", "s": at(date(y, 3, 9)), "c": f"J{uid}"})
    for seq, due in ((4, 0), (5, 50)):
        await batch(seq, due)
    found = await episodes()
    assert [(p, o) for _, p, o in found] == [(3_00, False), (50, True)]
    assert found[1][0] == at(date(y, 3, 5))
    if told_due_before:
        # Told the account owed more before than it owes now, the episode is left alone.
        owed[f"A{uid}"] = 90
        await batch(6, 80)
        assert [p for _, p, _ in await episodes()] == [3_00, 50]


async def test_an_arrears_peak_inside_one_batch_is_recorded(db: AsyncEngine, year: int) -> None:
    """The consumer's batch of three events of one account (a debt of 2 yuan that rose to
    9 and fell to 4; then, in the next batch, one that rose to 12 and was paid off): the
    episode's peak is the most the account owed along each batch, not only its newest
    event's debt."""
    from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
    from common.contracts.snapshots import (
        CustomerSnapshot,
        Person,
        ProductFamily,
        ProductSnapshot,
        Tier,
    )
    from common.envelope import wrap
    from credit_control.credit.entrypoints.consumer import batch_dispatcher

    y, uid = year + 2, new_uid()
    account = f"A{uid}"
    customer = CustomerSnapshot(customer_id=f"K{uid}", name="集团", tier=Tier.MID,
                                account_manager=Person(name="王经理", phone="13900139000"))
    product = ProductSnapshot(product_id=f"P{uid}", cpno=f"CP{uid}", name="集团V网",
                              family=ProductFamily.ADC)
    ctx = CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                        FixedClock(at(date(y, 4, 1))))
    handle = batch_dispatcher(ctx)

    def event(seq: int, due: int) -> Any:
        dues = (BillMonthDue(bill_month=f"{y}-03", amount_due_fen=due),) if due else ()
        e = BalanceChanged(account_id=account, sequence=seq,
                           cause=BalanceCause.PAYMENT if due < 9_00 else BalanceCause.CHARGE,
                           as_of=at(date(y, 4, seq)), balance_fen=-due, amount_due_fen=due,
                           dues=dues, customer=customer, products=(product,))
        return wrap(e, key=account, source="test", occurred_at=e.as_of), e

    async def episodes() -> list[tuple[Any, ...]]:
        async with db.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(
                "SELECT peak_fen, cleared_at FROM credit.arrears_episodes "
                "WHERE account_id = :a ORDER BY started_at"), {"a": account})).all()]

    async with db.begin() as conn:
        await handle(conn, [event(1, 2_00), event(2, 9_00), event(3, 4_00)])
    assert await episodes() == [(9_00, None)]
    async with db.begin() as conn:
        await handle(conn, [event(4, 12_00), event(5, 0)])
    assert await episodes() == [(12_00, at(date(y, 4, 5)))]


async def test_a_group_customers_unchanged_inputs_lock_nothing(db: AsyncEngine,
                                                               year: int) -> None:
    """Two batches of one group customer's accounts, in two transactions at once (two
    partitions): when the customer's inputs are as recorded, neither waits for the other;
    a change is still recorded."""
    import msgspec

    from common.contracts.billing import BalanceCause, BalanceChanged
    from common.contracts.snapshots import CustomerSnapshot, Person, Tier
    from credit_control.rating.adapters.rating_sql import record_inputs

    y, uid = year + 2, new_uid()
    customer = CustomerSnapshot(customer_id=f"L{uid}", name="集团", tier=Tier.MID,
                                account_manager=Person(name="王经理", phone="13900139000"),
                                opened_on=date(y - 2, 1, 1), value_class="B")

    def event(account: str, customer: CustomerSnapshot = customer) -> BalanceChanged:
        return BalanceChanged(account_id=f"{account}{uid}", sequence=1,
                              cause=BalanceCause.CHARGE, as_of=at(date(y, 5, 1)),
                              balance_fen=0, amount_due_fen=0, customer=customer)

    async with db.begin() as conn:
        await record_inputs(conn, [event("A")], [event("A")])
    async with db.connect() as first, db.connect() as second:
        await first.begin()
        await record_inputs(first, [event("B")], [event("B")])  # holds its locks, open
        await second.begin()
        await second.execute(text("SET LOCAL lock_timeout = '2s'"))
        await record_inputs(second, [event("C")], [event("C")])  # no wait for the first
        await second.commit()
        await first.commit()
    moved = msgspec.structs.replace(customer, value_class="A")
    async with db.begin() as conn:
        await record_inputs(conn, [event("D", moved)], [event("D", moved)])
    async with db.connect() as conn:
        brand = await conn.scalar(text(
            "SELECT brand FROM credit.rating_customers WHERE customer_id = :c"),
            {"c": f"L{uid}"})
    assert brand == "A"
