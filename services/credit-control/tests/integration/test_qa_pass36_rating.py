"""QA pass 36: the credit rating (seed 004) under changing facts, as billing and collections
staff meet it through the running services: rating runs and overrides that move a customer
between tiers, raise or lower its limit while one of its products is on the arrears ladder
(warned, suspension-warned with a date, suspended); an override running out; a blacklisted
customer; a customer whose tenure crosses six months; an account with two products; the
star report to the count; bad input.

Balance events go straight to Kafka as billing-events publishes them (`helpers.Ledger`, with
the rating's inputs: open date, value class, the month's bill); runs, overrides, sweeps, the
explain page, the reports through credit-control's HTTP API. Year `test_year + 34` is this
module's (`qa_year`, capped at 2999); no bill run is posted to billing-events.

The story (one module fixture: the sweeps and the runs are whole-base and each period runs
once, so the tests share them and read the checkpoints it keeps):

  06-01 W owes May 80 元 → 06-10 warned, 06-25 suspension warning, 06-30 suspended
  07-01 June's bills: U (two products) 1,000 元, K 1,000 元, E 500 元, D 250 元, X 1,000 元
  07-10, 07-25 sweeps (low tier: U and E suspension-warned naming 07-31)
  07-26 basic run y-07: U 5★ (high), W 5★ (its limit covers the debt), K 5★, E 1★,
        N unrated (tenure 5 months)
  07-27 overrides: D to 1★ (limit 10 元, tier low), E to 5★ until 08-08, X to 3★ (removed)
  07-31 sweep; 08-01 master-data events (U, D) and a write-off of K's second account
  08-05 basic run y-08: K unrated (blacklisted), N 4★
  08-06 sweep; 08-09 the y-08 run asked again (E's override has run out); 08-10, 08-12 sweeps
"""

import time as clock
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, business_date
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.envelope import Envelope, wrap
from common.testing.notices import notices_heard
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, ledger, new_uid, qa_year_after

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

C = BalanceCause
SEED_SHARES = {"5": 1.0, "4": 7.0, "3": 7.0, "2": 15.0, "1": 20.0}


# --- helpers --------------------------------------------------------------------------------

def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def moment(day: date, hh: int = 20, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), BUSINESS_TZ)


def event(lg: Ledger, cause: BalanceCause, as_of: datetime, owed: list[tuple[str, int]],
          closed: str | None = None, billed: int | None = None) -> Envelope[Any]:
    """A balance event as billing publishes it now (with the month's bill on a bill run)."""
    lg.sequence += 1
    dues = tuple(BillMonthDue(bill_month=m, amount_due_fen=f) for m, f in owed)
    due = sum(f for _, f in owed)
    e = BalanceChanged(account_id=lg.account_id, sequence=lg.sequence, cause=cause,
                       as_of=as_of, balance_fen=-due, amount_due_fen=due, dues=dues,
                       closed_bill_month=closed, customer=lg.customer, products=lg.products,
                       billed_fen=billed)
    envelope = wrap(e, key=lg.account_id, source="test-billing", occurred_at=datetime.now(UTC))
    lg.sent.append(envelope)
    return envelope


def customer(lg: Ledger, opened: date | None, value_class: str | None) -> Ledger:
    lg.customer = msgspec.structs.replace(lg.customer, opened_on=opened,
                                          value_class=value_class)
    return lg


def decisions(view: dict[str, Any]) -> list[tuple[str, int | None, date, str | None]]:
    """(decision, warning level, business date, deadline) in the order they were taken."""
    return [(d["decision"], d.get("warning_level"),
             business_date(datetime.fromisoformat(d["as_of"])), d["context"].get("deadline"))
            for d in view["decisions"]]


def since(view: dict[str, Any], day: date) -> list[tuple[str, int | None, date, str | None]]:
    return [d for d in decisions(view) if d[2] >= day]


# --- the story ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int, db: AsyncEngine) -> int:
    """`test_year + 34` (capped at 2999), or, when a session sharing the stack already
    decided or ran a rating in a later year, the year after: a later business day's sweep
    acts on every owing product (these too), and a period's run happens once."""
    return await qa_year_after(db, test_year, 34, ratings=True)


class Story:
    def __init__(self, api: CreditApi, y: int) -> None:
        self.api, self.y, self.uid = api, y, new_uid()
        self.prefix = f"Pq36{self.uid}"
        self.cp: dict[str, dict[str, Any]] = {}  # checkpoint → key → credit view
        self.runs: dict[str, Any] = {}
        self.lg: dict[str, Ledger] = {}
        self.seconds: dict[str, float] = {}

    def d(self, m: int, day: int) -> date:
        return date(self.y, m, day)

    def m(self, month: int) -> str:
        return f"{self.y}-{month:02d}"

    async def sweep(self, day: date) -> None:
        started = clock.monotonic()
        await notices_heard(self.api.db, product_prefix=self.prefix)
        body = ok(await self.api.http.post("/v1/sweeps", json={
            "sweep_id": f"q36{self.uid}-{day.isoformat()}",
            "as_of": moment(day).isoformat()}), 201)
        if body.get("held"):
            ok(await self.api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm", json={}))
        self.seconds[f"sweep {day}"] = clock.monotonic() - started

    async def run(self, name: str, when: datetime) -> dict[str, Any]:
        started = clock.monotonic()
        found: dict[str, Any] = ok(await self.api.http.post("/v1/ratings/runs", json={
            "model": "basic", "as_of": when.isoformat()}))
        self.runs[name] = found
        self.seconds[f"run {name}"] = clock.monotonic() - started
        return found

    async def checkpoint(self, name: str, *keys: str) -> None:
        got = self.cp.setdefault(name, {})
        for k in keys:
            for p in self.lg[k].products:
                got[p.product_id] = await self.api.credit(p.product_id)

    def view(self, name: str, key: str, n: int = 0) -> dict[str, Any]:
        return self.cp[name][self.lg[key].products[n].product_id]

    async def rating(self, key: str) -> dict[str, Any]:
        found: dict[str, Any] = ok(await self.api.http.get(
            f"/v1/ratings/{self.lg[key].customer.customer_id}"))
        return found

    async def override(self, key: str, star: int, limit: int | None, expires: date) -> str:
        oid = f"OVq36{key}{self.uid}"
        body: dict[str, Any] = {"override_id": oid, "star_level": star,
                                "reason": "信用等级人工调整 (QA pass 36)",
                                "expires_at": moment(expires, 0).isoformat()}
        if limit is not None:
            body["limit_fen"] = limit
        ok(await self.api.http.post(
            f"/v1/ratings/{self.lg[key].customer.customer_id}/overrides", json=body), 201)
        return oid


async def foreign(db: AsyncEngine, s: Story) -> int:
    """Decisions on this story's products after its last day: a session sharing the stack
    swept a later business day meanwhile (every owing product, these too), and the story's
    own later sweeps then left them alone."""
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM credit.decisions WHERE product_id LIKE :p AND as_of > :end"),
            {"p": f"{s.prefix}%", "end": moment(s.d(8, 13), 0)}) or 0)


async def newest_year(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT max(extract(year FROM as_of AT TIME ZONE 'Asia/Shanghai'))::int "
            "FROM credit.decisions WHERE as_of < '2999-01-01'")) or 0)


@pytest.fixture(scope="module")
async def story(api: CreditApi, db: AsyncEngine, qa_year: int) -> Story:
    """The story, told again in a later year (at most twice) when another session's sweep
    of a later business day acted on its products while it was told."""
    year = qa_year
    for _ in range(3):
        s = await tell(api, year)
        if not await foreign(db, s):
            return s
        year = min(max(year, await newest_year(db)) + 1, 2999)
    pytest.fail("three stories in a row disturbed by another session's later sweeps")


async def tell(api: CreditApi, y: int) -> Story:
    s = Story(api, y)
    lg, m = s.lg, s.m
    name = f"q36{s.uid}"
    ten_years = date(y - 10, 1, 1)
    lg["U"] = customer(ledger("U", name, F.ADC, T.LOW), ten_years, "A")
    lg["U"].products = (lg["U"].products[0], msgspec.structs.replace(
        lg["U"].products[0], product_id=f"{lg['U'].product_id}b", cpno="CPq36b",
        name="产品U二"))
    lg["W"] = customer(ledger("W", name, F.ADC, T.LOW), ten_years, "A")
    lg["N"] = customer(ledger("N", name, F.ADC, T.LOW), date(y, 1, 28), "A")
    lg["K"] = customer(ledger("K", name, F.ADC, T.HIGH), ten_years, "A")
    lg["K2"] = ledger("K2", name, F.ADC, T.HIGH)  # K's second account (written off)
    lg["K2"].customer = lg["K"].customer
    lg["E"] = customer(ledger("E", name, F.ADC, T.LOW), date(y - 5, 1, 1), "D")
    # never rated by the model: no open date from billing (not a candidate of any run)
    lg["D"] = ledger("D", name, F.ADC, T.HIGH, star_level=5)
    lg["X"] = ledger("X", name, F.ADC, T.HIGH, star_level=4)
    spend = {"U": 3000_00, "W": 3000_00, "N": 3000_00, "K": 3000_00, "E": 100_00}
    for month in range(1, 6):
        await api.deliver(*((lg[k], event(lg[k], C.BILL_RUN, moment(s.d(month + 1, 1), 9),
                                          [(m(5), 80_00)] if k == "W" and month == 5 else [],
                                          m(month), f)) for k, f in spend.items()))
    await s.sweep(s.d(6, 10))
    await s.sweep(s.d(6, 25))
    await s.sweep(s.d(6, 30))
    await s.checkpoint("06-30", "W")
    june = moment(s.d(7, 1), 9)
    await api.deliver(
        *((lg[k], event(lg[k], C.BILL_RUN, june, [(m(6), f)] if f else [], m(6), spend[k]))
          for k, f in (("U", 1000_00), ("N", 0), ("K", 1000_00), ("E", 500_00))),
        *((lg[k], event(lg[k], C.BILL_RUN, june, [(m(6), f)], m(6)))
          for k, f in (("D", 250_00), ("X", 1000_00))))
    await s.sweep(s.d(7, 10))
    await s.sweep(s.d(7, 25))
    await s.checkpoint("07-25", "U", "E", "D", "X", "K")
    await s.run("y-07", moment(s.d(7, 26), 10))
    await s.checkpoint("07-26", "U", "W", "E", "K")
    await s.override("D", 1, None, s.d(12, 31))
    s.runs["E-override"] = await s.override("E", 5, None, s.d(8, 8))
    oid = await s.override("X", 3, None, s.d(12, 31))
    ok(await api.http.post(f"/v1/ratings/overrides/{oid}/remove",
                           json={"reason": "评级复核后撤销"}))
    await s.checkpoint("07-27", "D", "E", "X")
    await s.sweep(s.d(7, 31))
    await s.checkpoint("07-31", "U", "D", "E", "X")
    aug1 = moment(s.d(8, 1), 9)
    await api.deliver((lg["U"], event(lg["U"], C.MASTER_DATA, aug1, [(m(6), 1000_00)])),
                      (lg["D"], event(lg["D"], C.MASTER_DATA, aug1, [(m(6), 250_00)])),
                      (lg["K2"], event(lg["K2"], C.WRITE_OFF, aug1, [])))
    await s.checkpoint("08-01", "U", "D")
    await s.run("y-08", moment(s.d(8, 5), 10))
    await s.checkpoint("08-05", "K")
    await s.sweep(s.d(8, 6))
    await s.checkpoint("08-06", "D", "K")
    await s.run("y-08 again", moment(s.d(8, 9), 10))
    await s.checkpoint("08-09", "E")
    await s.sweep(s.d(8, 10))
    await s.checkpoint("08-10", "U", "E", "K")
    await s.sweep(s.d(8, 12))
    await s.checkpoint("08-12", "E", "K")
    return s


# --- 1. a run upgrading a customer mid-ladder, an account with two products ----------------

async def test_a_run_upgrading_mid_ladder_voids_the_warning_of_every_product(
    story: Story,
) -> None:
    """U: billing's low tier, one account with two ADC products owing June's 1,000 元:
    suspension-warned 07-25 naming 07-31. The 07-26 run rates U 5★ (tier high, limit
    300 元: still over).

    Expected (docs/rules.md "Tier changes", "A profile change is a change of facts too"):
    both products back to `warned`, tier high on each (the sweep reads it), not suspended
    on 07-31; a balance event on 08-01 keeps tier high (the balance path agrees); the 08-10
    sweep gives each the high tier's warning 2 naming the high tier's day (09-30)."""
    y = story.y
    for n in (0, 1):
        assert story.view("07-25", "U", n)["state"] == "suspension_warned"
        after = story.view("07-26", "U", n)
        assert (after["state"], after["facts"]["tier"]) == ("warned", "high"), after["facts"]
        assert after["facts"]["credit_limit_fen"] == 300_00
        assert after["ladder"]["suspension_deadline"] is None, after["ladder"]
        assert story.view("07-31", "U", n)["state"] == "warned"
        assert story.view("08-01", "U", n)["facts"]["tier"] == "high"
        assert since(story.view("08-10", "U", n), story.d(7, 26)) == [
            ("warning", 2, story.d(8, 10), f"{y}-09-30")]


# --- 2. a raised limit that covers a suspended debt -----------------------------------------

async def test_a_rating_whose_limit_covers_a_suspended_debt_restores_it(
    story: Story, clients: dict[str, httpx.AsyncClient],
) -> None:
    """W: suspended 06-30 for May's 80 元. The 07-26 run rates it 5★ (score 92 with one
    suspension; limit 300 元 ≥ 80 元). Expected: restored by the run (as a balance event
    within the limit would: `amount due ≤ credit limit`), told by a 开机通知."""
    assert story.view("06-30", "W")["state"] == "suspended"
    rating = (await story.rating("W"))["rating"]
    assert (rating["star_level"], rating["limit_fen"]) == (5, 300_00), rating
    after = story.view("07-26", "W")
    assert after["state"] == "normal", after["state"]
    assert [d[0] for d in since(after, story.d(7, 1))] == ["restore"], decisions(after)
    pid = story.lg["W"].product_id

    async def sent() -> list[str]:
        found = ok(await clients["notifier"].get("/v1/messages", params={"product_id": pid}))
        return [x["template"] for x in found]

    got = await eventually(sent, lambda ts: "restore_notice" in ts, timeout=30,
                           what="开机通知")
    assert got.count("restore_notice") == 1, got


# --- 3. tenure crossing six months ----------------------------------------------------------

async def test_a_customer_whose_tenure_crosses_six_months_is_rated_the_month_after(
    story: Story,
) -> None:
    """N opened on y-01-28, value class A, 3,000 元 a month. On 07-26 its tenure is 5 whole
    months: unrated (limit 0, tier low). On 08-05 it is 6: 4★ (score 84), limit 200 元,
    tier high."""
    body = await story.rating("N")
    mine = [h for h in body["history"] if h["model"] == "basic"]
    assert [(h["period"], h["star_after"], h["limit_after_fen"]) for h in mine] == [
        (story.m(7), None, 0), (story.m(8), 4, 200_00)], mine
    assert "tenure 5 months < 6" in mine[0]["reason"], mine[0]
    assert mine[1]["score"] == 84, mine[1]
    assert (body["rating"]["star_level"], body["rating"]["limit_fen"]) == (4, 200_00)
    view = await story.api.credit(story.lg["N"].product_id)
    assert (view["facts"]["tier"], view["facts"]["credit_limit_fen"]) == ("high", 200_00)


# --- 4. blacklisted mid-ladder ---------------------------------------------------------------

async def test_a_blacklisted_customer_is_unrated_and_warned_before_it_is_suspended(
    story: Story,
) -> None:
    """K: 5★ (high tier) by the 07-26 run, June's 1,000 元 owing on account A1 (warning 1 on
    07-10; the high tier's suspension warning would be 09-25). Its second account is written
    off (核销) on 08-01; the 08-05 run makes it unrated (limit 0, tier low), the low tier's
    suspension day (07-31) long past and no suspension warning ever given.

    Expected (docs/rules.md "Tier changes": after a downgrade with none given, the
    suspension warning comes at the next sweep, naming that day + the notice period): 08-06
    a suspension warning naming 08-12; not suspended on 08-10; suspended on 08-12, late."""
    y = story.y
    body = await story.rating("K")
    assert body["rating"]["star_level"] is None and body["rating"]["limit_fen"] == 0, body
    assert "blacklisted" in body["history"][-1]["reason"], body["history"][-1]
    assert story.view("07-26", "K")["facts"]["tier"] == "high"
    after = story.view("08-05", "K")
    assert (after["facts"]["tier"], after["facts"]["credit_limit_fen"]) == ("low", 0)
    assert [d[0] for d in since(story.view("07-25", "K"), story.d(7, 2))] == ["warning"]
    assert since(story.view("08-06", "K"), story.d(7, 11)) == [
        ("suspension_warning", None, story.d(8, 6), f"{y}-08-12")]
    assert story.view("08-10", "K")["state"] == "suspension_warned"
    final = story.view("08-12", "K")
    assert final["state"] == "suspended"
    [suspend] = [d for d in final["decisions"] if d["decision"] == "suspend"]
    assert business_date(datetime.fromisoformat(suspend["as_of"])) == story.d(8, 12)
    assert "late" in suspend["reason"], suspend["reason"]


# --- 5. a lowered limit by an override ------------------------------------------------------

async def test_a_limit_lowered_by_an_override_warns_before_it_suspends(
    story: Story, clients: dict[str, httpx.AsyncClient],
) -> None:
    """D: billing's 5★, high tier (limit 300 元), owes June's 250 元: within its limit, no
    threat of suspension. On 07-27 a credit-admin overrides it to 1★ (limit 10 元, tier
    low), audited.

    Expected: the 07-31 sweep (the low tier's suspension day) does not suspend: a
    suspension warning naming 08-06 (07-31 + July's six days); a balance event on 08-01
    keeps the tier low and the date; suspended on 08-06, late."""
    y = story.y
    before = story.view("07-25", "D")
    assert before["state"] in ("normal", "warned"), before["state"]
    assert not {"suspension_warning", "suspend"} & {d[0] for d in decisions(before)}
    assert (story.view("07-27", "D")["facts"]["tier"],
            story.view("07-27", "D")["facts"]["credit_limit_fen"]) == ("low", 10_00)
    at31 = story.view("07-31", "D")
    assert at31["state"] == "suspension_warned"
    assert since(at31, story.d(7, 26)) == [
        ("suspension_warning", None, story.d(7, 31), f"{y}-08-06")]
    aug1 = story.view("08-01", "D")
    assert (aug1["state"], aug1["facts"]["tier"],
            aug1["ladder"]["suspension_deadline"]) == ("suspension_warned", "low", f"{y}-08-06")
    final = story.view("08-06", "D")
    assert final["state"] == "suspended"
    assert [d[0] for d in since(final, story.d(8, 1))] == ["suspend"]
    assert "late" in final["decisions"][-1]["reason"], final["decisions"][-1]
    cid = story.lg["D"].customer.customer_id
    audit = ok(await clients["credit-control"].get("/v1/audit", params={
        "entity": "rating_override", "entity_id": cid}))
    assert [(a["action"], a["new"]["star_level"], a["new"]["limit_fen"]) for a in audit] == [
        ("add", 1, 10_00)], audit


# --- 6. an override running out -------------------------------------------------------------

async def test_an_expired_override_returns_to_the_models_rating_without_the_voided_warning(
    story: Story,
) -> None:
    """E: billing's low tier, June's 500 元: suspension-warned 07-25 naming 07-31; the 07-26
    run rates it 1★ (limit 10 元, low); on 07-27 an override to 5★ until 08-08 (the warning
    voided: back to `warned`). The y-08 run asked again on 08-09 applies the expiry.

    Expected: not suspended on 07-31; after the expiry the profile is the model's 1★ again
    (`override_ended`, "override expired"), the voided 07-25 warning does not count: a new
    suspension warning on 08-10 naming 08-16; not suspended on 08-12."""
    y = story.y
    assert story.view("07-26", "E")["state"] == "suspension_warned"
    assert story.view("07-27", "E")["state"] == "warned"
    assert story.view("07-31", "E")["state"] == "warned"
    after = story.view("08-09", "E")
    assert (after["facts"]["tier"], after["facts"]["credit_limit_fen"]) == ("low", 10_00)
    body = await story.rating("E")
    ended = [h for h in body["history"] if h["model"] == "override_ended"]
    assert [(h["star_before"], h["star_after"], h["limit_after_fen"], h["reason"])
            for h in ended] == [(5, 1, 10_00, "override expired")], ended
    assert since(story.view("08-10", "E"), story.d(7, 26)) == [
        ("suspension_warning", None, story.d(8, 10), f"{y}-08-16")]
    assert story.view("08-12", "E")["state"] == "suspension_warned"


# --- 7. an override removed from a customer the model never rated --------------------------

async def test_an_override_removed_from_a_never_rated_customer_returns_to_billings_rating(
    story: Story,
) -> None:
    """X: billing's 4★, high tier (limit 200 元); never rated by the model (billing sent no
    open date). June's 1,000 元: warning 1 on 07-10. A credit-admin overrides it to 3★ on
    07-27 and removes the override at once.

    Expected (docs/rating.md: a customer never rated keeps billing's tier; an override that
    ends returns the profile to the model's rating, and there is none): tier high and limit
    200 元 again, so no suspension warning on 07-31 (the high tier's is 09-25).

    Found (fixed: `overrides.apply_ended_overrides` gives such a customer a profile that
    says nothing, `rating_sql.billing_profile_values`, and the products' tier back from
    their account's snapshot): tier low and limit 0 (`Rating(None, 0)`, "unrated"), so the
    07-31 sweep suspension-warned a high-tier 4★ customer two months early."""
    view = story.view("07-27", "X")
    assert (view["facts"]["tier"], view["facts"]["credit_limit_fen"]) == ("high", 200_00), (
        view["facts"])
    assert story.view("07-31", "X")["state"] == "warned"


# --- 8. a run asked twice for its period; the star report --------------------------------

async def test_a_second_call_for_the_period_returns_the_first_and_rates_nothing(
    story: Story, db: AsyncEngine,
) -> None:
    """The y-08 run asked again on 08-09: the first one's summary (`already_done`), and no
    rating change of the period written by it."""
    first, again = story.runs["y-08"], story.runs["y-08 again"]
    assert not first["already_done"] and again["already_done"], (first, again)
    keep = ("run_id", "considered", "changed", "as_of")
    assert {k: again[k] for k in keep} == {k: first[k] for k in keep}
    assert first["run_id"] == f"basic:{story.m(8)}"
    async with db.connect() as conn:
        late = await conn.scalar(text(
            "SELECT count(*) FROM credit.rating_changes WHERE model = 'basic' AND period = :p"
            " AND at > :first"), {"p": story.m(8), "first": moment(story.d(8, 5), 10)})
    assert late == 0


async def test_the_star_report_counts_every_rating_to_the_customer(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, story: Story,
) -> None:
    """`GET /v1/reports/stars`: customers per star equal the ratings stored (read before and
    after it, while no run moves them), shares to two places of the total, the gap to the
    seed's share; the CSV has the same rows."""
    http = clients["credit-control"]

    async def counts() -> dict[str, int]:
        async with db.connect() as conn:
            rows = await conn.execute(text(
                "SELECT coalesce(star_level::text, 'unrated'), count(*) "
                "FROM credit.customer_ratings GROUP BY 1"))
            return {s: int(n) for s, n in rows}

    for _ in range(5):
        before = await counts()
        report = ok(await http.get("/v1/reports/stars"))
        if await counts() == before:
            break
    got = {r["star"]: r for r in report["rows"]}
    assert [r["star"] for r in report["rows"]] == ["5", "4", "3", "2", "1", "0", "unrated"]
    assert {s: r["customers"] for s, r in got.items() if r["customers"]} == before
    total = sum(before.values())
    assert report["rated_customers"] == total
    for s, r in got.items():
        share = round(100 * before.get(s, 0) / total, 2)
        assert r["share_pct"] == share, r
        seed = SEED_SHARES.get(s)
        assert r["seed_share_pct"] == seed
        assert r["gap_points"] == (round(share - seed, 2) if seed is not None else None), r
    csv = await http.get("/v1/reports/stars", params={"format": "csv"})
    assert csv.status_code == 200, csv.text
    lines = csv.text.strip().splitlines()
    assert len(lines) == 8 and lines[1].startswith("5,"), lines


# --- 9. bad input ---------------------------------------------------------------------------

BAD_OVERRIDES: list[tuple[str, dict[str, Any], str]] = [
    ("star 6", {"star_level": 6}, "star_level"),
    ("star -1", {"star_level": -1}, "star_level"),
    ("5★ with a 100 元 limit", {"star_level": 5, "limit_fen": 100_00}, "limit_fen"),
    ("1★ with a 50 元 limit", {"star_level": 1, "limit_fen": 50_00}, "limit_fen"),
    ("unrated with a limit", {"star_level": None, "limit_fen": 10_00}, "limit_fen"),
    ("a negative limit", {"star_level": 3, "limit_fen": -1}, "limit_fen"),
    ("expired already", {"expires_at": "2001-01-01T00:00:00+08:00"}, "expires_at"),
    ("expires in year 9999", {"expires_at": "9999-12-31T00:00:00+08:00"}, "expires_at"),
    ("expires not a date", {"expires_at": "next spring"}, "expires_at"),
    ("no reason", {"reason": ""}, "reason"),
    ("an unknown field", {"force": True}, "force"),
]


async def footprint(db: AsyncEngine, customer_id: str) -> tuple[Any, ...]:
    async with db.connect() as conn:
        return tuple([await conn.scalar(text(sql), {"c": customer_id}) for sql in (
            "SELECT count(*) FROM credit.rating_overrides WHERE customer_id = :c",
            "SELECT count(*) FROM credit.rating_changes WHERE customer_id = :c",
            "SELECT count(*) FROM credit.audit_log WHERE entity_id = :c",
            "SELECT row(star_level, credit_limit_fen, tier)::text FROM credit.credit_profiles"
            " WHERE customer_id = :c")])


@pytest.mark.parametrize(("what", "change", "field"), BAD_OVERRIDES,
                         ids=[w for w, _, _ in BAD_OVERRIDES])
async def test_a_bad_override_is_422_naming_the_field_and_changes_nothing(
    story: Story, db: AsyncEngine, what: str, change: dict[str, Any], field: str,
) -> None:
    cid = story.lg["W"].customer.customer_id
    body = {"override_id": f"OVbad{new_uid()}", "star_level": 3, "reason": "QA pass 36",
            "expires_at": moment(story.d(12, 31), 0).isoformat(), **change}
    before = await footprint(db, cid)
    r = await story.api.http.post(f"/v1/ratings/{cid}/overrides", json=body)
    assert r.status_code == 422, (what, r.status_code, r.text[:300])
    assert field in r.text, (what, r.text[:300])
    assert await footprint(db, cid) == before, what


async def test_an_override_for_an_unknown_customer_or_a_reused_id_is_refused(
    story: Story, db: AsyncEngine,
) -> None:
    """An unknown customer: 404 naming it. An override id already used (E's, run out)
    with a different body, for another customer: 409, nothing changed. Removing an
    unknown override: 404; one that has ended: 409."""
    http = story.api.http
    ghost = f"Gq36ghost{story.uid}"
    body = {"override_id": f"OVghost{story.uid}", "star_level": 3, "reason": "QA pass 36",
            "expires_at": moment(story.d(12, 31), 0).isoformat()}
    r = await http.post(f"/v1/ratings/{ghost}/overrides", json=body)
    assert r.status_code == 404 and ghost in r.text, r.text
    assert await footprint(db, ghost) == (0, 0, 0, None)
    cid = story.lg["N"].customer.customer_id
    before = await footprint(db, cid)
    reused = {**body, "override_id": story.runs["E-override"], "star_level": 4}
    r = await http.post(f"/v1/ratings/{cid}/overrides", json=reused)
    assert r.status_code == 409 and story.runs["E-override"] in r.text, r.text
    assert await footprint(db, cid) == before
    r = await http.post(f"/v1/ratings/overrides/OVnone{story.uid}/remove",
                        json={"reason": "QA"})
    assert r.status_code == 404, r.text
    r = await http.post(f"/v1/ratings/overrides/{story.runs['E-override']}/remove",
                        json={"reason": "QA"})
    assert r.status_code == 409 and "ended" in r.text, r.text


@pytest.mark.parametrize("change", [{"star_level": "5"}, {"limit_fen": "5000"}],
                         ids=["star", "limit"])
async def test_an_override_with_a_number_sent_as_text_is_refused(
    story: Story, db: AsyncEngine, change: dict[str, Any],
) -> None:
    """A client sending the star or the limit as text is told, as `PUT /v1/profiles` tells
    it (strict: "a client's bug, told rather than guessed"), not guessed at.

    Found (fixed: strict fields in `AddOverride`): 201, an override of 5★ in force."""
    cid = story.lg["W"].customer.customer_id
    body = {"override_id": f"OVtext{new_uid()}", "star_level": 3, "reason": "QA pass 36",
            "expires_at": moment(story.d(12, 31), 0).isoformat(), **change}
    before = await footprint(db, cid)
    r = await story.api.http.post(f"/v1/ratings/{cid}/overrides", json=body)
    assert r.status_code == 422, r.text[:300]
    assert next(iter(change)) in r.text, r.text[:300]
    assert await footprint(db, cid) == before


BAD_RUNS: list[tuple[str, dict[str, Any], str]] = [
    ("an unknown model", {"model": "fancy"}, "model"),
    ("as of 1999", {"model": "basic", "as_of": "1999-12-05T10:00:00+08:00"}, "as_of"),
    ("as of 9500", {"model": "basic", "as_of": "9500-01-05T10:00:00+08:00"}, "as_of"),
    ("as of a day 32", {"model": "guidance", "as_of": "2300-01-32T10:00:00+08:00"}, "as_of"),
    ("an unknown field", {"model": "basic", "dry_run": True}, "dry_run"),
]


@pytest.mark.parametrize(("what", "body", "field"), BAD_RUNS, ids=[w for w, _, _ in BAD_RUNS])
async def test_a_bad_rating_run_is_422_and_runs_nothing(
    api: CreditApi, db: AsyncEngine, what: str, body: dict[str, Any], field: str,
) -> None:
    r = await api.http.post("/v1/ratings/runs", json=body)
    assert r.status_code == 422, (what, r.status_code, r.text[:300])
    assert field in r.text, (what, r.text[:300])
    async with db.connect() as conn:
        odd = await conn.scalar(text(
            "SELECT count(*) FROM credit.rating_runs WHERE period < '2000' OR period > '8999'"))
    assert odd == 0


async def test_an_override_sent_twice_is_made_once_and_answered_the_same(
    story: Story, db: AsyncEngine,
) -> None:
    """A client that lost the answer sends the same override again: the first answer again
    (201, the same body), one override, one rating change, one audit entry; the same id with
    another body is 409 and changes nothing. (Until the thirty-second session the retry was
    409 "already has an override in force", as if the first had not been made.) The override
    is removed at the end, so the customer is as the story left it."""
    http = story.api.http
    cid = story.lg["W"].customer.customer_id
    body = {"override_id": f"OVtwice{story.uid}", "star_level": 3, "reason": "QA pass 36",
            "expires_at": moment(story.d(12, 31), 0).isoformat()}
    overrides, changes, audits, _ = await footprint(db, cid)
    first = await http.post(f"/v1/ratings/{cid}/overrides", json=body)
    assert first.status_code == 201, first.text
    made = await footprint(db, cid)
    assert made[:3] == (overrides + 1, changes + 1, audits + 1), made
    again = await http.post(f"/v1/ratings/{cid}/overrides", json=body)
    assert (again.status_code, again.json()) == (201, first.json()), again.text
    other = await http.post(f"/v1/ratings/{cid}/overrides", json={**body, "star_level": 4})
    assert other.status_code == 409 and body["override_id"] in other.text, other.text
    assert await footprint(db, cid) == made
    r = await http.post(f"/v1/ratings/overrides/{body['override_id']}/remove",
                        json={"reason": "QA pass 36: put back"})
    assert r.status_code == 200, r.text
