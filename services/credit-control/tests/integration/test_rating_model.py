"""The rating model (seed 004) on the real database and, for the feed into the threshold rule,
through the running services over Kafka.

Years: `rating_year` (the synthetic base), +1 (the six-month guidance run), +2 (limits and
suspensions through the services); `rating_year` is after `test_year + 25` and after every
rating run already stored, so a re-run of these tests meets no period already run."""

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import FixedClock
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import ProductFamily, Tier
from common.envelope import Envelope, wrap
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox
from credit_control.adapters import tables as t
from credit_control.rating.domain.commands import AddOverride
from credit_control.rating.domain.model import RatingInputs
from credit_control.rating.service_layer import overrides, runs
from credit_control.rating.synthetic import base
from credit_control.service_layer.context import CreditContext

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration]

SEED_SHARES = {5: 1.0, 4: 7.0, 3: 7.0, 2: 15.0, 1: 20.0}


@pytest.fixture(scope="module")
async def rating_year(db: AsyncEngine, test_year: int) -> int:
    async with db.connect() as conn:
        newest = await conn.scalar(text(
            "SELECT max(substr(period, 1, 4)::int) FROM credit.rating_runs"))
    return max(test_year + 25, int(newest or 0) + 1)


def context(db: AsyncEngine, now: datetime) -> CreditContext:
    return CreditContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                         FixedClock(now))


async def seed(conn: AsyncConnection, people: list[RatingInputs], as_of: date,
               months_billed: int = 2) -> None:
    """The inputs as credit-control would have recorded them from billing's events (open
    date, brand, bills per closed month) and from its own history (suspensions: a product
    going suspended on distinct days, the period's within six months, the rest before)."""
    ids = [p.customer_id for p in people]
    await conn.execute(text("""
        INSERT INTO credit.rating_customers (customer_id, brand, opened_on, blacklisted,
                                             blacklist_reason, updated_at)
        SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:brand AS text[]),
                             CAST(:opened AS date[]), CAST(:black AS boolean[]),
                             CAST(:why AS text[]), CAST(:at AS timestamptz[]))"""),
        {"ids": ids, "brand": [p.brand for p in people],
         "opened": [p.opened_on for p in people], "black": [p.blacklisted for p in people],
         "why": [p.blacklist_reason for p in people], "at": [at(as_of)] * len(people)})
    months = [runs.months_back(as_of, k + 1) for k in range(months_billed)]
    await conn.execute(text("""
        INSERT INTO credit.rating_bills (account_id, bill_month, customer_id, billed_fen)
        SELECT 'A' || c, m, c, f FROM unnest(CAST(:c AS text[]), CAST(:m AS date[]),
                                             CAST(:f AS bigint[])) AS u(c, m, f)"""),
        {"c": [i for i in ids for _ in months], "m": [m for _ in ids for m in months],
         "f": [p.avg_monthly_spend_fen for p in people for _ in months]})
    hist_p, hist_at = [], []
    for p in people:
        for n in range(p.suspensions):
            back = 10 + 15 * n if n < p.suspensions_period else 200 + 15 * n
            hist_p.append(f"P{p.customer_id}")
            hist_at.append(at(as_of - timedelta(days=back)))
    # a product per customer ever suspended (owing nothing now: no sweep touches it)
    await conn.execute(text("""
        INSERT INTO credit.product_credit (product_id, account_id, family, product, state,
                                           state_changed_at, customer_id, tier)
        SELECT 'P' || c, 'A' || c, 'ADC', '{}'::jsonb, 'normal', :at, c, 'low'
          FROM unnest(CAST(:c AS text[])) AS c"""),
        {"c": [p.customer_id for p in people if p.suspensions or len(people) <= 100],
         "at": at(as_of)})
    if hist_p:
        await conn.execute(text("""
            INSERT INTO credit.state_history (product_id, state_before, state_after, cause, at)
            SELECT p, 'suspension_warned', 'suspended', 'test', a
              FROM unnest(CAST(:p AS text[]), CAST(:a AS timestamptz[])) AS u(p, a)"""),
            {"p": hist_p, "a": hist_at})


async def ratings(db: AsyncEngine, prefix: str) -> dict[str, tuple[int | None, int]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT customer_id, star_level, limit_fen FROM credit.customer_ratings "
            "WHERE customer_id LIKE :p"), {"p": f"{prefix}%"})
        return {c: (s, int(lim)) for c, s, lim in rows}


async def test_a_synthetic_base_lands_on_the_seed_shares(db: AsyncEngine,
                                                         rating_year: int) -> None:
    y, uid = rating_year, new_uid()
    as_of = date(y, 12, 5)
    people = [replace(p, customer_id=f"R{uid}{p.customer_id}")
              for p in base(10_000, as_of, seed=4)]
    async with db.begin() as conn:
        await seed(conn, people, as_of)
    ctx = context(db, at(as_of))
    summary = await runs.run(ctx, "basic", at(as_of), "test")
    assert summary["run_id"] == f"basic:{y}-12" and not summary["already_done"]

    rated = await ratings(db, f"R{uid}")
    assert len(rated) == 10_000
    shares = Counter(s for s, _ in rated.values())
    for star, want in SEED_SHARES.items():
        got = shares[star] / 100
        assert abs(got - want) <= 2, f"{star}★ {got}% vs seed {want}%"
    credited = sum(shares[s] for s in SEED_SHARES) / 100
    assert abs(credited - 50) <= 2  # seed 004: 授信用户占比为50%左右
    # limits: each star's initial limit; unrated and 0★ none
    initial = {5: 300_00, 4: 200_00, 3: 50_00, 2: 20_00, 1: 10_00, 0: 0, None: 0}
    assert all(lim == initial[s] for s, lim in rated.values())
    # the profile credit-control decides with is the rating's
    async with db.connect() as conn:
        profiles = dict((r[0], (r[1], r[2], r[3])) for r in await conn.execute(text(
            "SELECT customer_id, star_level, credit_limit_fen, tier FROM credit.credit_profiles"
            " WHERE customer_id LIKE :p"), {"p": f"R{uid}%"}))
        kept = await conn.scalar(text(
            "SELECT count(*) FROM credit.rating_changes WHERE customer_id LIKE :p AND "
            "period = :period AND inputs ? 'avg_monthly_spend_fen' AND reason <> ''"),
            {"p": f"R{uid}%", "period": f"{y}-12"})
    tiers = {5: "high", 4: "high", 3: "mid", 2: "mid", 1: "low", 0: "low", None: "low"}
    assert {c: (s, lim, tiers[s]) for c, (s, lim) in rated.items()} == profiles
    assert kept == 10_000  # every rating kept with its inputs and reason
    # unrated exactly: under six months or blacklisted
    expect_unrated = {p.customer_id for p in people
                      if p.blacklisted or (p.tenure_months(as_of) or 0) < 6}
    assert {c for c, (s, _) in rated.items() if s is None} == expect_unrated

    again = await runs.run(ctx, "basic", at(date(y, 12, 20)), "test")
    assert again["already_done"] and again["changed"] == summary["changed"]


def person(cid: str, brand: str, months: int, spend: int, susp: int = 0, period: int = 0,
           black: bool = False, as_of: date = date(2000, 1, 1)) -> RatingInputs:
    return RatingInputs(cid, brand, as_of - timedelta(days=months * 31), spend, susp, period,
                        black, "bad debt" if black else None)


async def test_six_months_on_the_guidance_model_moves_levels(db: AsyncEngine,
                                                             rating_year: int) -> None:
    y, uid = rating_year + 1, new_uid()
    jan = date(y, 1, 10)
    p = f"G{uid}"
    people = [person(f"{p}steady", "C", 36, 200_00, as_of=jan),      # 2★ → limit +1 step
              person(f"{p}twice", "A", 120, 3000_00, as_of=jan),     # 5★ → 4★ (2 susp.)
              person(f"{p}once", "A", 120, 3000_00, as_of=jan),      # 5★ → limit −1 step
              person(f"{p}grows", "C", 36, 50_00, as_of=jan),        # 1★ → 2★ (spend up)
              person(f"{p}black", "B", 60, 500_00, as_of=jan),       # 4★ → unrated
              person(f"{p}override", "B", 60, 500_00, as_of=jan)]    # held by an override
    async with db.begin() as conn:
        await seed(conn, people, jan)
    ctx = context(db, at(jan))
    await runs.run(ctx, "basic", at(jan), "test")
    first = await ratings(db, p)
    assert first == {f"{p}steady": (2, 20_00), f"{p}twice": (5, 300_00),
                     f"{p}once": (5, 300_00), f"{p}grows": (1, 10_00),
                     f"{p}black": (4, 200_00), f"{p}override": (4, 200_00)}

    # Six months on: new bills, suspensions, a write-off; an override with a later expiry.
    jul = date(y, 7, 6)
    async with db.begin() as conn:
        await conn.execute(text("""
            INSERT INTO credit.rating_bills
            SELECT 'A' || c, make_date(:y, m, 1), c, f
              FROM unnest(CAST(:c AS text[]), CAST(:f AS bigint[])) AS u(c, f),
                   generate_series(1, 6) AS m"""),
            {"y": y, "c": [x.customer_id for x in people],
             "f": [x.avg_monthly_spend_fen for x in people]})
        await conn.execute(text(
            "UPDATE credit.rating_bills SET billed_fen = 100000 WHERE customer_id = :c"),
            {"c": f"{p}grows"})
        await conn.execute(text(
            "UPDATE credit.rating_customers SET blacklisted = true, "
            "blacklist_reason = 'bad debt written off' WHERE customer_id = :c"),
            {"c": f"{p}black"})
        for cid, days in ((f"{p}twice", (20, 50)), (f"{p}once", (30,))):
            for d in days:
                await conn.execute(text(
                    "INSERT INTO credit.state_history (product_id, state_before, state_after,"
                    " cause, at) VALUES ('P' || :c, 'suspension_warned', 'suspended', 'test',"
                    " :at)"), {"c": cid, "at": at(jul - timedelta(days=d))})
    ctx = context(db, at(date(y, 6, 1)))
    await overrides.add_override(ctx, f"{p}override", AddOverride(
        override_id=f"ov-{uid}", star_level=5, limit_fen=450_00, reason="省公司重点客户",
        expires_at=at(date(y, 8, 1)), created_by="credit-admin-1"))
    summary = await runs.run(context(db, at(jul)), "guidance", at(jul), "test")
    assert summary["run_id"] == f"guidance:{y}-H2"
    after = await ratings(db, p)
    assert after[f"{p}steady"] == (2, 27_00)
    assert after[f"{p}twice"] == (4, 200_00)
    assert after[f"{p}once"] == (5, 300_00)  # lowered a step, but not below the range
    assert after[f"{p}grows"] == (2, 20_00)
    assert after[f"{p}black"] == (None, 0)
    assert after[f"{p}override"] == (4, 200_00)  # the model's; not re-rated while overridden
    async with db.connect() as conn:
        reasons = dict((r[0], r[1]) for r in await conn.execute(text(
            "SELECT customer_id, reason FROM credit.rating_changes "
            "WHERE customer_id LIKE :p AND model = 'guidance'"), {"p": f"{p}%"}))
        profile = (await conn.execute(text(
            "SELECT star_level, credit_limit_fen, tier FROM credit.credit_profiles "
            "WHERE customer_id = :c"), {"c": f"{p}override"})).one()
    assert f"{p}override" not in reasons
    assert "2 suspensions" in reasons[f"{p}twice"] and "blacklisted" in reasons[f"{p}black"]
    assert tuple(profile) == (5, 450_00, "high")  # the override is what credit-control uses
    # The override runs out: the profile goes back to the model's rating.
    await runs.run(context(db, at(date(y, 8, 3))), "basic", at(date(y, 8, 3)), "test")
    async with db.connect() as conn:
        profile = (await conn.execute(text(
            "SELECT star_level, credit_limit_fen, tier FROM credit.credit_profiles "
            "WHERE customer_id = :c"), {"c": f"{p}override"})).one()
    assert tuple(profile) == (4, 200_00, "high")


# --- through the services: limits feed the threshold rule ----------------------------------


def billed(lg: Ledger, month: str, billed_fen: int, owed_fen: int,
           as_of: datetime) -> Envelope[Any]:
    """A bill run's balance event as billing now publishes it: with the month's bill."""
    lg.sequence += 1
    dues = (BillMonthDue(bill_month=month, amount_due_fen=owed_fen),) if owed_fen else ()
    event = BalanceChanged(
        account_id=lg.account_id, sequence=lg.sequence, cause=BalanceCause.BILL_RUN,
        as_of=as_of, balance_fen=-owed_fen, amount_due_fen=owed_fen, dues=dues,
        closed_bill_month=month, customer=lg.customer, products=lg.products,
        billed_fen=billed_fen)
    return wrap(event, key=lg.account_id, source="test-billing", occurred_at=datetime.now(UTC))


async def test_limits_from_the_rating_change_who_is_suspended(api: CreditApi,
                                                              rating_year: int) -> None:
    """Two low-tier customers owe the same 8 yuan. Before rating both have no limit; the
    basic model rates the one spending 100 yuan a month 1★ (limit 10 yuan) and the one
    spending 20 yuan 0★: only the 0★ customer is suspended."""
    y, uid = rating_year + 2, new_uid()
    opened = date(y - 2, 1, 1)
    lgs = {name: ledger(uid, name, ProductFamily.ADC, Tier.LOW) for name in ("one", "zero")}
    for lg in lgs.values():
        lg.customer = replace_customer(lg, opened)
    spend = {"one": 100_00, "zero": 20_00}
    for m in range(1, 7):
        await api.deliver(*((lg, billed(lg, f"{y}-{m:02d}", spend[n], 0,
                                        at(date(y, m + 1, 2), 9))) for n, lg in lgs.items()))
    r = await api.http.post("/v1/ratings/runs", json={
        "model": "basic", "as_of": at(date(y, 7, 5)).isoformat()})
    assert r.status_code == 200, r.text
    for name, (star, limit) in {"one": (1, 10_00), "zero": (0, 0)}.items():
        body = (await api.http.get(f"/v1/ratings/{lgs[name].customer.customer_id}")).json()
        assert (body["rating"]["star_level"], body["rating"]["limit_fen"]) == (star, limit)
        assert body["history"][-1]["inputs"]["avg_monthly_spend_fen"] == spend[name]
        assert body["history"][-1]["inputs"]["brand"] == "D"
        profile = (await api.http.get(
            f"/v1/profiles/{lgs[name].customer.customer_id}")).json()
        assert profile["credit_limit_fen"] == limit, profile
    await api.deliver(*((lg, billed(lg, f"{y}-07", 8_00, 8_00, at(date(y, 8, 2), 9)))
                        for lg in lgs.values()))
    await api.sweep(date(y, 8, 25), f"rate-{uid}-25")
    await api.sweep(date(y, 8, 31), f"rate-{uid}-31")
    assert await api.state(lgs["zero"].product_id) == "suspended"
    assert "suspend" in [d[0] for d in await api.decisions(lgs["zero"].product_id)]
    # within its 10-yuan limit: reminded of the arrears, never threatened nor suspended
    assert await api.state(lgs["one"].product_id) in ("normal", "warned")
    taken = [d[0] for d in await api.decisions(lgs["one"].product_id)]
    assert not {"suspension_warning", "suspend"} & set(taken), taken
    # the arrears episode the consumer recorded (the emergency-recovery report's input)
    async with api.db.connect() as conn:
        episodes = (await conn.execute(text(
            "SELECT peak_fen, cleared_at FROM credit.arrears_episodes WHERE account_id = :a"),
            {"a": lgs["zero"].account_id})).all()
    assert [tuple(e) for e in episodes] == [(8_00, None)]
    # a rejected run changes nothing and says why
    r = await api.http.post("/v1/ratings/runs", json={"model": "fancy"})
    assert r.status_code == 422 and "error" in r.json()


def replace_customer(lg: Ledger, opened: date) -> Any:
    return msgspec.structs.replace(lg.customer, opened_on=opened, value_class="D")
