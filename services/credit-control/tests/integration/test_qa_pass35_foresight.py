"""QA pass 35: foresight against what then happens. The sweep preview (who a sweep at a
moment would warn, suspend, deduct, with each product's own amount) against the sweep that
follows, facts changing in between; the what-if replay (规则推演) of a month under the current
rule table against what the live system decided that month, and under drafts against the
difference worked out by hand.

The month is built through billing-events' API (so billing's balance history, the what-if's
input, and the balance events credit-control applies are the same facts): customers, accounts,
products of a sales channel of this module's own (`qa35-<uid>`, the what-if's and the
preview's scope), January's charges, the bill run on 02-01, payments and a deposit. The live
sweeps go through credit-control's HTTP API at 20:00 on every day a rule of these tiers
falls on (02-10, 02-25, 02-28, 03-10, 03-15, 03-25, 03-31), each after a preview as of the
same moment. Year `test_year + 28` is this module's (`qa_year`, capped at 2999; not a leap
year while the suite's years are odd, the February cases below say what they expect either
way). Two customers are on another channel (`qa35x-<uid>`): red-listed and frozen between a
preview and its sweep, facts the what-if takes as they are now (its documented scope), so
they are left out of the replays.

Accounts (all ADC unless said):
- nev: low tier, owes 123.45 and never pays: warned 02-10, suspension-warned 02-25,
  suspended 02-28 (February's last day);
- late: low, owes 234.56, pays it all on 02-28 at 15:00, after the day's first preview and
  before the 20:00 sweep;
- mix: low, an ADC product owing 100.00 and a MAS product owing 50.00; the account pays
  100.00 on 02-20 (billing pays the older bill first, then the lower product id: the ADC
  one), so only the MAS product is suspension-warned and suspended, for its own 50.00;
- mid: mid tier, two products owing 50.00 and 40.00, one deposit of 60.00: warning 2 on
  03-10, the deduction on 03-15 (the first asks 50.00, the second the 10.00 left), the
  second's 30.00 left is suspension-warned 03-25 and suspended 03-31;
- red, frz (other channel): low, owing 111.11 and 222.22: red-listed / frozen (customer scope)
  on 02-28 after the first preview."""

import calendar
from collections import Counter
from datetime import date, datetime, time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, business_date
from common.testing.notices import notices_heard
from common.testing.polling import eventually

from .helpers import CreditApi, new_uid, qa_year_after

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# tag → (tier, [(product suffix, family, January's charge in fen)], deposit, channel key)
ACCOUNTS: dict[str, tuple[str, list[tuple[str, str, int]], int, str]] = {
    "nev": ("low", [("a", "ADC", 123_45)], 0, "main"),
    "late": ("low", [("a", "ADC", 234_56)], 0, "main"),
    "mix": ("low", [("a", "ADC", 100_00), ("b", "MAS", 50_00)], 0, "main"),
    "mid": ("mid", [("a", "ADC", 50_00), ("b", "ADC", 40_00)], 60_00, "main"),
    "red": ("low", [("a", "ADC", 111_11)], 0, "aside"),
    "frz": ("low", [("a", "ADC", 222_22)], 0, "aside"),
}
MAIN = [t for t, a in ACCOUNTS.items() if a[3] == "main"]
ASIDE = [t for t, a in ACCOUNTS.items() if a[3] == "aside"]
SUSPENDED = ("suspended", "suspend_requested", "pre_cancel")


# --- helpers --------------------------------------------------------------------------------

def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text[:600])
    return response.json()


def moment(day: date, hh: int = 20, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), BUSINESS_TZ)


class Month:
    """The module's accounts: ids and what each product owes, and what the live system did."""

    def __init__(self, y: int, uid: str) -> None:
        self.y, self.uid = y, uid
        self.channel = {"main": f"qa35-{uid}", "aside": f"qa35x-{uid}"}
        self.previews: dict[str, dict[str, Any]] = {}  # label → the preview's answer
        self.swept: dict[str, list[dict[str, Any]]] = {}  # label → the sweep's decisions
        self.at_month_end: dict[str, dict[str, Any]] = {}  # "02"/"03" → live facts then
        self.rules: dict[str, Any] = {}  # GET /v1/rules when the story began

    @property
    def feb_end(self) -> date:
        return date(self.y, 2, calendar.monthrange(self.y, 2)[1])

    def account(self, tag: str) -> str:
        return f"A35{tag}{self.uid}"

    def customer(self, tag: str) -> str:
        return f"G35{tag}{self.uid}"

    def product(self, tag: str, suffix: str = "a") -> str:
        return f"P35{tag}{self.uid}{suffix}"

    def products(self, *tags: str) -> list[str]:
        return [self.product(t, s) for t in tags for s, _, _ in ACCOUNTS[t][1]]


async def build(billing: httpx.AsyncClient, credit: httpx.AsyncClient, m: Month) -> None:
    y = m.y
    for tag, (tier, products, deposit, ch) in ACCOUNTS.items():
        ok(await billing.post("/v1/customers", json={
            "customer_id": m.customer(tag), "name": f"推演预览集团{tag}", "tier": tier,
            "account_manager": {"name": "钱经理", "phone": "13900139035"},
            "contacts": [{"name": "孙联系人", "phone": "13800138035"}]}), 201)
        # Held by an override (star 0: low, star 2: mid, its 20.00 limit below what it owes),
        # so a rating run of a session sharing the stack does not re-rate them meanwhile.
        ok(await credit.post(f"/v1/ratings/{m.customer(tag)}/overrides", json={
            "override_id": f"OV{m.customer(tag)}", "star_level": 2 if tier == "mid" else 0,
            "reason": "QA 35: 信用度按集团协议保持", "expires_at": "8999-12-31T00:00:00+08:00"}),
            201)
        ok(await billing.post("/v1/accounts", json={"account_id": m.account(tag),
                                                     "customer_id": m.customer(tag)}), 201)
        for suffix, family, fen in products:
            pid = m.product(tag, suffix)
            ok(await billing.post("/v1/products", json={
                "product_id": pid, "account_id": m.account(tag), "cpno": f"CP{pid}",
                "name": "集团彩铃" if family == "ADC" else "企信通MAS", "family": family,
                **({"vendor": "huawei"} if family == "MAS" else {}),
                "channel": m.channel[ch], "as_of": moment(date(y, 1, 2), 9).isoformat()}), 201)
            ok(await billing.post("/v1/charges", json={
                "charge_id": f"CH{pid}", "account_id": m.account(tag), "product_id": pid,
                "bill_month": f"{y}-01", "amount_fen": fen,
                "as_of": moment(date(y, 1, 15), 9).isoformat()}), 201)
        if deposit:
            ok(await billing.post("/v1/deposits", json={
                "deposit_id": f"DP{m.account(tag)}", "account_id": m.account(tag),
                "amount_fen": deposit,
                "received_at": moment(date(y, 1, 20), 10).isoformat()}), 201)
    ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR35{m.uid}", "bill_month": f"{y}-01",
        "as_of": moment(date(y, 2, 1), 2).isoformat()}), 201)


async def pay(billing: httpx.AsyncClient, m: Month, tag: str, fen: int, when: datetime) -> None:
    ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAY{m.account(tag)}{when:%m%d}", "account_id": m.account(tag),
        "amount_fen": fen, "paid_at": when.isoformat()}), 201)


async def caught_up(db: AsyncEngine, m: Month) -> None:
    """credit-control applied every balance event billing made of these accounts."""
    accounts = [m.account(t) for t in ACCOUNTS]

    async def behind() -> list[str]:
        async with db.connect() as conn:
            rows = await conn.execute(text(
                "SELECT b.account_id FROM billing.accounts b LEFT JOIN "
                "credit.account_positions p USING (account_id) WHERE b.account_id = ANY(:a) "
                "AND b.sequence > COALESCE(p.sequence, 0)"), {"a": accounts})
            return [r[0] for r in rows]

    await eventually(behind, lambda b: b == [], timeout=60, what="billing's events applied")


async def preview(api: CreditApi, day: date, **params: Any) -> dict[str, Any]:
    await notices_heard(api.db)  # as the sweep does first
    found: dict[str, Any] = ok(await api.http.get("/v1/sweeps/preview", params={
        "as_of": moment(day).isoformat(), "limit": 1000, **params}))
    return found


def listed(p: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(product, decision) → item, of a preview narrowed to a channel."""
    return {(i["product_id"], i["decision"]): i for i in p["items"]}


async def decided(db: AsyncEngine, products: list[str], when: datetime) -> list[dict[str, Any]]:
    """The decisions taken for these products as of exactly `when` (a sweep's)."""
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT decision_id, product_id, decision, amount_fen, "
            "(context::json ->> 'amount_due_fen')::bigint AS amount_due_fen, "
            "context::json ->> 'deadline' AS deadline "
            "FROM credit.decisions WHERE product_id = ANY(:p) AND as_of = :t "
            "ORDER BY product_id, decision_id"), {"p": products, "t": when})
        return [dict(r._mapping) for r in rows]


async def sweep(api: CreditApi, m: Month, day: date, label: str) -> list[dict[str, Any]]:
    await notices_heard(api.db)
    body = ok(await api.http.post("/v1/sweeps", json={
        "sweep_id": f"q35{m.uid}-{label}", "as_of": moment(day).isoformat()}), 201)
    if body.get("held") or body.get("status") == "held":  # the guard: an admin confirms
        ok(await api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm",
                               json={"note": "QA 35 核对无误"}))
    found = await decided(api.db, m.products(*MAIN), moment(day))
    m.swept[label] = found
    return found


async def live_month(api: CreditApi, m: Month, first: date) -> dict[str, Any]:
    """What the live system did in the month for the main channel's products: decisions per
    kind, suspensions per day; and now (just after the month's last sweep): the products
    suspended and the accounts' amount due."""
    last = date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
    products = m.products(*MAIN)
    async with api.db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT decision, as_of FROM credit.decisions WHERE product_id = ANY(:p)"),
            {"p": products})).all()
        states = dict((await conn.execute(text(
            "SELECT product_id, state FROM credit.product_credit WHERE product_id = ANY(:p)"),
            {"p": products})).all())
        dues = dict((await conn.execute(text(
            "SELECT account_id, amount_due_fen FROM credit.account_positions "
            "WHERE account_id = ANY(:a)"), {"a": [m.account(t) for t in MAIN]})).all())
    mine = [(str(d), business_date(a)) for d, a in rows if first <= business_date(a) <= last]
    return {
        "decisions": dict(sorted(Counter(d for d, _ in mine).items())),
        "suspended_per_day": dict(sorted(Counter(
            day.isoformat() for d, day in mine if d == "suspend").items())),
        "states": states,
        "suspended_at_month_end": sum(1 for s in states.values() if s in SUSPENDED),
        "arrears_at_month_end_fen": sum(int(v) for v in dues.values()),
    }


async def what_if(credit: httpx.AsyncClient, m: Month, month: str, rows: list[dict[str, Any]],
                  ) -> dict[str, Any]:
    found: dict[str, Any] = ok(await credit.post("/v1/rules/what-if", json={
        "month": month, "rows": rows, "channel": m.channel["main"],
        "as_of": moment(date(m.y, 4, 2), 9).isoformat()}))
    return found


def moved(rows: list[dict[str, Any]], **days: Any) -> list[dict[str, Any]]:
    """The table with some rows' day moved (rule id with '_' for '-')."""
    want = {k.replace("_", "-"): v for k, v in days.items()}
    assert set(want) <= {r["rule_id"] for r in rows}, want
    return [r | {"day": want[r["rule_id"]]} if r["rule_id"] in want else r for r in rows]


# --- the story ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int, db: AsyncEngine) -> int:
    """`test_year + 28` (capped at 2999), or, when a session sharing the stack already
    decided in a later year, the year after its newest decision: a sweep of a later
    business day acts on every owing product, these too, and moves their ladder past this
    module's dates (a sweep leaves a product whose last change is after its day alone)."""
    return await qa_year_after(db, test_year, 28)


@pytest.fixture(scope="module")
async def story(api: CreditApi, clients: dict[str, httpx.AsyncClient], db: AsyncEngine,
                qa_year: int) -> Month:
    y = qa_year
    m = Month(y, new_uid())
    billing = clients["billing-events"]
    m.rules = ok(await api.http.get("/v1/rules"))
    await build(billing, api.http, m)
    await caught_up(db, m)
    main = {"channel": m.channel["main"]}
    feb_end = m.feb_end
    for label, day in (("0210", date(y, 2, 10)), ("0225", date(y, 2, 25))):
        m.previews[label] = await preview(api, day, **main)
        await sweep(api, m, day, label)
        if label == "0210":
            await pay(billing, m, "mix", 100_00, moment(date(y, 2, 20), 12))
            await caught_up(db, m)
    # 02-27: the day before February's last: nothing is suspended yet.
    m.previews["0227"] = await preview(api, date(y, 2, 27), **main)
    # 02-28 (the last day): the first preview; then "late" pays, "red" is red-listed and
    # "frz" frozen; the preview again; the sweep.
    m.previews["feb-end-before"] = await preview(api, feb_end, **main)
    m.previews["feb-end-aside-before"] = await preview(api, feb_end,
                                                       channel=m.channel["aside"])
    await pay(billing, m, "late", 234_56, moment(feb_end, 15))
    ok(await api.http.post("/v1/exemptions", json={
        "exemption_id": f"EX35{m.uid}", "customer_id": m.customer("red"),
        "kind": "red_list", "reason": "重点保障客户, 分管副总批准", "approver": "分管副总"}), 201)
    ok(await api.http.post("/v1/freezes", json={
        "freeze_id": f"FZ35{m.uid}", "scope": "customer", "value": m.customer("frz"),
        "covers_warnings": True, "reason": "账单争议, 核实前不停机", "approver": "主管赵六",
        "starts_at": moment(feb_end, 0).isoformat(),
        "until": moment(date(y, 3, 20), 0).isoformat()}), 201)
    await caught_up(db, m)
    m.previews["feb-end"] = await preview(api, feb_end, **main)
    m.previews["feb-end-aside"] = await preview(api, feb_end, channel=m.channel["aside"])
    await sweep(api, m, feb_end, "feb-end")
    await eventually(lambda: api.state(m.product("mix", "b")), lambda s: s == "suspended",
                     timeout=60, what="the MAS product's suspension confirmed by the chain")
    m.at_month_end["02"] = await live_month(api, m, date(y, 2, 1))
    m.previews["feb-end-after"] = await preview(api, feb_end, **main)
    for label, day in (("0310", date(y, 3, 10)), ("0315", date(y, 3, 15))):
        m.previews[label] = await preview(api, day, **main)
        await sweep(api, m, day, label)
    # billing collects the deductions (credit.decisions.v1 → its deduction use case).
    await eventually(lambda: _deposit(db, m.account("mid")), lambda d: d == 0, timeout=60,
                     what="billing collected the deductions")
    await caught_up(db, m)
    for label, day in (("0325", date(y, 3, 25)), ("0331", date(y, 3, 31))):
        m.previews[label] = await preview(api, day, **main)
        await sweep(api, m, day, label)
    m.at_month_end["03"] = await live_month(api, m, date(y, 3, 1))
    return m


async def _deposit(db: AsyncEngine, account_id: str) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT deposit_fen FROM credit.account_positions WHERE account_id = :a"),
            {"a": account_id}) or 0)


# --- 1. the preview against the sweep that follows ------------------------------------------

ON_TIME = ("0210", "0225", "feb-end", "0310", "0315", "0325", "0331")


@pytest.mark.parametrize("label", ON_TIME)
async def test_the_preview_is_what_the_sweep_then_decided(story: Month, label: str) -> None:
    """Each day: the preview (the main channel), taken just before the sweep with no fact
    changing in between, lists exactly the decisions the sweep then took for these products,
    the same ids, each with the product's own amount and deadline."""
    seen = {i["decision_id"]: (i["product_id"], i["decision"], i["amount_fen"],
                               i["amount_due_fen"], i["deadline"])
            for i in story.previews[label]["items"]}
    taken = {d["decision_id"]: (d["product_id"], d["decision"], d["amount_fen"],
                                d["amount_due_fen"], d["deadline"])
             for d in story.swept[label]}
    assert taken, f"the story's sweep {label} decided nothing for these products"
    assert seen == taken, (label, story.previews[label]["as_of"], seen, taken)


async def test_what_each_day_decides_is_the_ladder_worked_out_by_hand(story: Month) -> None:
    """The decisions the previews announced, per day, for each product, with the product's
    own amount (the SMS's XX) and, for a deduction, what it asks of the shared deposit."""
    m, y = story, story.y
    p = m.product
    feb_end = f"{y}-02-{calendar.monthrange(y, 2)[1]:02d}"

    def day(label: str) -> set[tuple[Any, ...]]:
        return {(i["product_id"], i["decision"], i["amount_due_fen"], i["amount_fen"],
                 i["deadline"]) for i in m.previews[label]["items"]}

    # A warning names the day its tier suspends: February's last (low), 03-31 (mid).
    mar_end = f"{y}-03-31"
    assert day("0210") == {(p("nev"), "warning", 123_45, None, feb_end),
                           (p("late"), "warning", 234_56, None, feb_end),
                           (p("mix"), "warning", 100_00, None, feb_end),
                           (p("mix", "b"), "warning", 50_00, None, feb_end),
                           (p("mid"), "warning", 50_00, None, mar_end),
                           (p("mid", "b"), "warning", 40_00, None, mar_end)}
    # 02-25: mix's ADC product was paid on 02-20 (own 0): only its MAS one, for its 50.00.
    assert day("0225") == {(p("nev"), "suspension_warning", 123_45, None, feb_end),
                           (p("late"), "suspension_warning", 234_56, None, feb_end),
                           (p("mix", "b"), "suspension_warning", 50_00, None, feb_end)}
    assert day("0310") == {(p("mid"), "warning", 50_00, None, mar_end),
                           (p("mid", "b"), "warning", 40_00, None, mar_end)}
    # One deposit of 60.00 for both: the first asks its 50.00, the second the 10.00 left.
    assert day("0315") == {(p("mid"), "deduction", 50_00, 50_00, None),
                           (p("mid", "b"), "deduction", 40_00, 10_00, None)}
    # Billing paid the first's 50.00 and 10.00 of the second's: 30.00 left, its own.
    assert day("0325") == {(p("mid", "b"), "suspension_warning", 30_00, None, mar_end)}
    assert day("0331") == {(p("mid", "b"), "suspend", 30_00, None, None)}


async def test_nothing_is_suspended_the_day_before_februarys_last(story: Month) -> None:
    """02-27 (the 28th is February's last day in a common year, the 29th in a leap year):
    the suspension warnings' deadline has not come; a sweep then would decide nothing for
    these products. On the last day the two that still owe are to be suspended."""
    assert story.previews["0227"]["items"] == []
    assert story.previews["0227"]["matching"] == 0
    first = listed(story.previews["feb-end-before"])
    assert {k for k in first if k[1] == "suspend"} == {
        (story.product("nev"), "suspend"), (story.product("late"), "suspend"),
        (story.product("mix", "b"), "suspend")}


async def test_a_payment_between_preview_and_sweep_spares_the_product(story: Month) -> None:
    """"late" is listed for suspension (234.56) in the first preview of the last day; it
    pays at 15:00; the preview taken again lists it no more, and otherwise lists what it
    listed; the sweep decides what the second preview said, and "late" ends normal."""
    m = story
    before, after = listed(m.previews["feb-end-before"]), listed(m.previews["feb-end"])
    gone = (m.product("late"), "suspend")
    assert before[gone]["amount_due_fen"] == 234_56
    assert gone not in after
    assert {k: v["decision_id"] for k, v in before.items() if k != gone} == {
        k: v["decision_id"] for k, v in after.items()}
    assert (m.product("late"), "suspend") not in {
        (d["product_id"], d["decision"]) for d in m.swept["feb-end"]}
    assert m.at_month_end["02"]["states"][m.product("late")] == "normal"


async def test_a_red_list_or_a_freeze_between_preview_and_sweep_spares_the_product(
    story: Month, db: AsyncEngine,
) -> None:
    """The other channel's two are listed for suspension in the first preview; "red" is
    red-listed and "frz" frozen; the preview again lists neither, and the sweep suspended
    neither."""
    m = story
    red, frz = m.product("red"), m.product("frz")
    before = listed(m.previews["feb-end-aside-before"])
    assert {k: v["amount_due_fen"] for k, v in before.items()} == {
        (red, "suspend"): 111_11, (frz, "suspend"): 222_22}
    assert m.previews["feb-end-aside"]["items"] == []
    assert await decided(db, [red, frz], moment(m.feb_end)) == []


async def test_after_the_sweep_the_preview_of_the_same_moment_decides_nothing_more(
    story: Month,
) -> None:
    """A sweep re-run (by hand, by the resumer) after the month-end one decides nothing: the
    preview as of the same moment lists nothing for these products."""
    assert story.previews["feb-end-after"]["items"] == []


async def test_the_guards_count_is_the_previews_suspensions(story: Month) -> None:
    """The mass-suspension guard counts what the sweep would suspend with its own criteria;
    the preview lists the suspensions with the sweep's statement. Both are of the whole
    database at the same moment: the guard's `would_suspend` is the preview's count."""
    checked = 0
    for label in ("feb-end-before", "feb-end", "0331"):
        p = story.previews[label]
        if p["guard"] is None:  # the guard is off on this stack
            continue
        suspends = p["decisions"].get("suspend", 0) + p["decisions"].get("suspend (held)", 0)
        assert p["guard"]["would_suspend"] == suspends, (label, p["guard"], p["decisions"])
        checked += 1
    if not checked:
        pytest.skip("the mass-suspension guard is off on this stack")


# --- 2. the what-if replay against the live month --------------------------------------------

async def test_february_replayed_under_the_current_table_is_what_the_live_system_did(
    api: CreditApi, story: Month,
) -> None:
    m, y = story, story.y
    feb_end = f"{y}-02-{calendar.monthrange(y, 2)[1]:02d}"
    got = await what_if(api.http, m, f"{y}-02", m.rules["rows"])
    live = m.at_month_end["02"]
    assert got["same"] is True and got["products"] == [], got["products"]
    assert got["products_replayed"] == len(m.products(*MAIN))
    cur = got["current"]
    # By hand: six bill notices, six warnings, mix's ADC product cleared by its payment,
    # "late" cleared by its own, three suspension warnings, two suspensions.
    want = {"arrears_cleared": 2, "bill_notice": 6, "suspend": 2, "suspension_warning": 3,
            "warning": 6}
    assert live["decisions"] == want
    assert cur["decisions"] == live["decisions"]
    assert cur["suspended_per_day"] == live["suspended_per_day"] == {feb_end: 2}
    assert cur["suspended_at_month_end"] == live["suspended_at_month_end"] == 2
    assert cur["arrears_at_month_end_fen"] == live["arrears_at_month_end_fen"] == (
        123_45 + 50_00 + 90_00)
    assert cur["suspended_arrears_at_month_end_fen"] == 123_45 + 50_00


async def test_march_replayed_under_the_current_table_is_what_the_live_system_did(
    api: CreditApi, story: Month,
) -> None:
    """March: the mid tier's second warning, the deductions sharing the deposit (60.00
    collected, two deduction notices: billing's 60.00 pays mid's first product 50.00 and
    10.00 of the second), the first product off the ladder (its own amount paid by the
    deduction), the suspension warning and suspension of what is left."""
    m, y = story, story.y
    got = await what_if(api.http, m, f"{y}-03", m.rules["rows"])
    live = m.at_month_end["03"]
    assert got["same"] is True
    cur = got["current"]
    assert live["decisions"] == {"arrears_cleared": 1, "deduction": 2, "suspend": 1,
                                 "suspension_warning": 1, "warning": 2}
    assert cur["decisions"] == live["decisions"]
    assert cur["suspended_per_day"] == live["suspended_per_day"] == {f"{y}-03-31": 1}
    assert cur["suspended_at_month_end"] == live["suspended_at_month_end"] == 3
    assert cur["deductions_fen"] == 60_00
    assert cur["sms_per_template"].get("deduction_notice") == 2
    assert cur["arrears_at_month_end_fen"] == live["arrears_at_month_end_fen"] == (
        123_45 + 50_00 + 30_00)


async def test_a_draft_moving_the_low_tier_earlier_differs_exactly_where_worked_out(
    api: CreditApi, story: Month,
) -> None:
    """Draft: the low tier ADC suspension warning on the 20th and the suspension on the
    24th. nev: both a few days earlier; late (pays on the last day at 15:00): warned
    earlier, and suspended only under the draft (then restored by its payment); mix's ADC
    product was paid on the 20th at noon, before the 20:00 sweep: never warned; its MAS
    product and the mid tier are under rows the draft does not change."""
    m, y = story, story.y
    feb_end = f"{y}-02-{calendar.monthrange(y, 2)[1]:02d}"
    draft = moved(m.rules["rows"], adc_suspension_warning_low=20,
                  adc_suspend_low=24)
    got = await what_if(api.http, m, f"{y}-02", draft)
    nev, late = m.product("nev"), m.product("late")
    assert {(c["product_id"], c["milestone"], c["change"], c["current"], c["draft"])
            for c in got["products"]} == {
        (nev, "suspension_warned", "earlier", f"{y}-02-25", f"{y}-02-20"),
        (nev, "suspended", "earlier", feb_end, f"{y}-02-24"),
        (late, "suspension_warned", "earlier", f"{y}-02-25", f"{y}-02-20"),
        (late, "suspended", "only_draft", None, f"{y}-02-24"),
    }
    assert got["draft"]["suspended_per_day"] == {f"{y}-02-24": 2, feb_end: 1}
    assert got["draft"]["sms_per_template"].get("restore_notice") == 1
    assert got["draft"]["suspended_at_month_end"] == got["current"]["suspended_at_month_end"]


async def test_a_suspension_moved_from_last_to_28_changes_only_the_months_longer_than_28(
    api: CreditApi, story: Month,
) -> None:
    """`day: 28` and `day: "last"` are the same day in a common-year February and not in
    March: the low tier's suspension on the 28th changes nothing in February (unless the
    year is a leap year: then a day earlier); the mid tier's changes March (mid's
    second product suspended on the 28th, three days earlier)."""
    m, y = story, story.y
    rows = m.rules["rows"]
    feb = await what_if(api.http, m, f"{y}-02", moved(rows, adc_suspend_low=28))
    if calendar.isleap(y):
        # nev a day earlier; late (pays on the 29th at 15:00) suspended only under it.
        assert {(c["product_id"], c["milestone"], c["change"]) for c in feb["products"]} == {
            (m.product("nev"), "suspended", "earlier"),
            (m.product("late"), "suspended", "only_draft")}
    else:
        assert feb["same"] is True, feb["products"]
    mar = await what_if(api.http, m, f"{y}-03", moved(rows, adc_suspend_mid=28))
    assert [(c["product_id"], c["milestone"], c["change"], c["current"], c["draft"])
            for c in mar["products"]] == [
        (m.product("mid", "b"), "suspended", "earlier", f"{y}-03-31", f"{y}-03-28")]


@pytest.mark.xfail(strict=True, reason=(
    "defect: a draft that moves the mid tier's deduction from the 15th to the 20th reports "
    "that it collects nothing (deductions_fen 0) and leaves 60.00 more arrears at month end: "
    "the replay books billing's real deduction of the 15th (the current table's) under the "
    "draft too, so the deposit is gone when the draft's own deduction asks on the 20th"))
async def test_a_deduction_moved_later_in_the_month_collects_the_same(
    api: CreditApi, story: Month,
) -> None:
    """Draft: the mid tier's deduction on the 20th instead of the 15th. Nothing was paid in
    between: the deposit would have been taken five days later, the same 60.00; the month's
    arrears are the same under both tables."""
    m, y = story, story.y
    rows = m.rules["rows"]
    got = await what_if(api.http, m, f"{y}-03", moved(rows, adc_deduction_2_mid=20))
    assert got["draft"]["deductions_fen"] == got["current"]["deductions_fen"] == 60_00
    assert got["draft"]["arrears_at_month_end_fen"] == got["current"][
        "arrears_at_month_end_fen"]


# --- 3. bad input ---------------------------------------------------------------------------

BAD_WHAT_IFS: list[tuple[str, dict[str, Any], int]] = [
    ("month 13", {"month": "{y}-13"}, 422),
    ("month 00", {"month": "{y}-00"}, 422),
    ("month one digit", {"month": "{y}-2"}, 422),
    ("month a day", {"month": "{y}-02-28"}, 422),
    ("month year 0", {"month": "0000-02"}, 422),
    ("as_of out of bounds", {"as_of": "9999-12-31T23:59:59-12:00"}, 422),
    ("as_of year 1", {"as_of": "0001-01-01T00:00:00+14:00"}, 422),
    ("as_of 02-29 of a common year", {"as_of": "2507-02-29T09:00:00+08:00"}, 422),
    ("version 0", {"rows": None, "version": 0}, 422),
    ("version past bigint", {"rows": None, "version": 2**63}, 404),
    ("rows and version", {"version": 1}, 422),
    ("rows not a list", {"rows": "adc-suspend-low=24"}, 422),
    ("a row's day 29", {"rows": "day29"}, 422),
    ("a row's day 0", {"rows": "day0"}, 422),
    ("a row with an unknown field", {"rows": "extra"}, 422),
    ("a row without its family", {"rows": "nofamily"}, 422),
    ("the suspension after the month", {"rows": "warnafter"}, 422),
    ("a channel with a NUL", {"channel": "x\u0000y"}, 422),
]


@pytest.mark.parametrize(("what", "change", "status"), BAD_WHAT_IFS,
                         ids=[w for w, _, _ in BAD_WHAT_IFS])
async def test_a_bad_what_if_is_a_clear_4xx_and_changes_nothing(
    api: CreditApi, qa_year: int, what: str, change: dict[str, Any], status: int,
) -> None:
    rules = ok(await api.http.get("/v1/rules"))
    rows = rules["rows"]
    variants = {
        "day29": moved(rows, adc_suspend_low=29),
        "day0": moved(rows, adc_suspend_low=0),
        "extra": [rows[0] | {"force": True}, *rows[1:]],
        "nofamily": [{k: v for k, v in rows[0].items() if k != "family"}, *rows[1:]],
        "warnafter": [r | {"arrears_month": 2} if r["rule_id"] == "adc-suspension-warning-low"
                      else r for r in rows],
    }
    body: dict[str, Any] = {"month": f"{qa_year}-02", "rows": rows,
                            "as_of": f"{qa_year}-04-02T09:00:00+08:00"}
    for k, v in change.items():
        body[k] = v.format(y=qa_year) if isinstance(v, str) and "{y}" in v else v
        if k == "rows" and isinstance(v, str) and v in variants:
            body[k] = variants[v]
    body = {k: v for k, v in body.items() if v is not None}
    async with api.db.connect() as conn:
        versions = await conn.scalar(text("SELECT count(*) FROM credit.rule_tables"))
    r = await api.http.post("/v1/rules/what-if", json=body)
    assert r.status_code == status, (what, r.status_code, r.text[:400])
    answer = r.json()
    assert answer.get("message") or answer.get("detail"), (what, answer)
    async with api.db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM credit.rule_tables")) == versions
    assert ok(await api.http.get("/v1/rules"))["version"] == rules["version"]


BAD_PREVIEWS: list[tuple[str, dict[str, str]]] = [
    ("02-29 of a common year", {"as_of": "2507-02-29T20:00:00+08:00"}),
    ("hour 24", {"as_of": "2507-02-28T24:00:00+08:00"}),
    ("year 1 east of UTC", {"as_of": "0001-01-01T00:00:00+14:00"}),
    ("year 9999 west of UTC", {"as_of": "9999-12-31T23:59:59-12:00"}),
    ("no as_of", {}),
    ("as_of a word", {"as_of": "tonight"}),
    ("limit a word", {"limit": "all"}),
    ("sms with too many", {"sms": "true", "limit": "51"}),
]


@pytest.mark.parametrize(("what", "params"), BAD_PREVIEWS, ids=[w for w, _ in BAD_PREVIEWS])
async def test_a_bad_preview_is_a_clear_4xx(
    api: CreditApi, what: str, params: dict[str, str],
) -> None:
    base = {"as_of": "2507-02-28T20:00:00+08:00"} if "as_of" not in params and params else {}
    r = await api.http.get("/v1/sweeps/preview", params={**base, **params})
    assert r.status_code == 422, (what, r.status_code, r.text[:400])
    assert r.json(), what
