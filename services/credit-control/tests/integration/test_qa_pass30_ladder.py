"""QA pass 30: the arrears ladder under changing facts, through the running services: balance
events on Kafka as billing-events publishes them (bill runs, payments, reversals, master
data), credit profiles and rating overrides through credit-control's API, work orders done
by staff, sweeps run as of chosen business moments, then decisions, the product's credit
state and the notifier's messages read back.

Year `test_year + 21` is this module's (`qa_year`). It posts no bill run to billing-events
(its balance events go to Kafka directly, `helpers.Ledger`), so it never moves `test_year`
on: a module that bills in `test_year + n` makes the next session's `test_year` n + 1 years
later, and a long-lived stack runs out of years (2999) that way."""

from datetime import UTC, date, datetime
from typing import Any

import httpx
import msgspec
import pytest

from common.clock import business_date
from common.contracts.billing import BalanceCause, BalanceChanged, BillMonthDue, ProductDue
from common.contracts.snapshots import ProductFamily, Tier
from common.envelope import Envelope, wrap
from common.testing.polling import eventually

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T, C = ProductFamily, Tier, BalanceCause


@pytest.fixture(scope="module")
async def qa_year(test_year: int) -> int:
    """This module's year (no other module sweeps or bills in it). The bill months events
    carry end at 2999-12: on a long-lived stack whose `test_year` crept past 2978 the module
    takes 2999 (it bills nothing, so any year its sweeps may use will do)."""
    return min(test_year + 21, 2999)


# --- helpers --------------------------------------------------------------------------------

async def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def sweep(api: CreditApi, key: str, *days: date, hour: int = 20) -> None:
    """Sweeps as of `days` at `hour` (each after the suspension warnings' SMS were heard of);
    a sweep the mass-suspension guard holds (a shared stack may trip it) is confirmed."""
    for d in days:
        body = await api.sweep(d, f"q30{key}-{d.isoformat()}T{hour}", hour)
        if body.get("held"):
            await ok(await api.http.post(f"/v1/sweeps/{body['sweep_id']}/confirm", json={}),
                     200)


def ladder(view: dict[str, Any]) -> list[tuple[str, int | None, date, str | None]]:
    """(decision, warning level, business date, deadline) in the order they were taken."""
    return [(d["decision"], d.get("warning_level"),
             business_date(datetime.fromisoformat(d["as_of"])), d["context"].get("deadline"))
            for d in view["decisions"]]


async def messages(notifier: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await ok(await notifier.get(
        "/v1/messages", params={"product_id": product_id}), 200)
    return found


# --- 1. an upgrade through a rating override in the middle of the ladder --------------------

async def test_an_upgrade_by_rating_override_puts_the_product_back_to_warned(
    api: CreditApi, qa_year: int,
) -> None:
    """Low tier, ADC, January 1,000.00 yuan (over any star's limit): warning 1 on 02-10, the
    suspension warning on 02-25 naming 02-28. On 02-26 a credit-admin overrides the rating to
    5★ (tier high: docs/rating.md, the rule ladder runs with the profile's tier).

    Expected (docs/rules.md "Tier changes"): "after an upgrade (low → high) the earlier warning
    no longer announces the suspension, the product goes back to `warned` and gets the high
    tier's warnings 2 and 3 and its own suspension warning": not suspended on 02-28, warning 2
    on 03-10, warning 3 on 04-10, a suspension warning on 04-25 naming 04-30, suspended on
    04-30.

    Found (fixed: the profile change reconsiders the customer's products,
    credit/service_layer/reconsider.py): not suspended on 02-28 (the sweep's SQL no longer
    counts the warning), but the product stayed `suspension_warned` until 04-30 and got
    no warning 2 or 3 (a warning row acts on normal / warned only): the decisions were
    bill notice, warning 1, suspension warning 02-25, suspension warning 04-25, suspend
    04-30. The rating writes the products'
    tier straight into `product_credit` (`rating_sql.feed_profiles`, `_PRODUCT_TIERS`) and
    nothing runs `ladder.reconcile`, which a tier change by billing's master data does (the
    balance path). Two of the high tier's three reminders are lost, and for two months staff
    see a product "suspension-warned" whose warning no longer counts."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30up", F.ADC, T.LOW)
    m1 = f"{y}-01"
    await api.deliver((lg, lg.bill_run(m1, 100_000, at(date(y, 2, 1), 9))))
    await sweep(api, f"up{uid}", date(y, 2, 10), date(y, 2, 25))
    assert await api.state(lg.product_id) == "suspension_warned"
    await ok(await api.http.post(f"/v1/ratings/{lg.customer.customer_id}/overrides", json={
        "override_id": f"OVq30{uid}", "star_level": 5, "reason": "重要客户, 升级信用等级",
        "expires_at": f"{y}-12-31T00:00:00+08:00"}))
    await sweep(api, f"up{uid}", date(y, 2, 28))
    # not suspended, and no longer threatened
    assert await api.state(lg.product_id) == "warned"
    await sweep(api, f"up{uid}", date(y, 3, 10), date(y, 4, 10), date(y, 4, 25),
                date(y, 4, 30))
    apr = f"{y}-04-30"
    assert ladder(await api.credit(lg.product_id))[1:] == [
        ("warning", 1, date(y, 2, 10), f"{y}-02-28"),
        ("suspension_warning", None, date(y, 2, 25), f"{y}-02-28"),
        ("warning", 2, date(y, 3, 10), apr),
        ("warning", 3, date(y, 4, 10), apr),
        ("suspension_warning", None, date(y, 4, 25), apr),
        ("suspend", None, date(y, 4, 30), None),
    ]


async def test_a_warning_voided_by_an_override_does_not_come_back_when_it_ends(
    api: CreditApi, qa_year: int,
) -> None:
    """Low tier, ADC, April 1,000.00 yuan: the suspension warning on 05-25 naming 05-31. On
    05-26 an override rates the customer 5★ (tier high): not suspended on 05-31. On 06-05
    the override is removed (the tier goes back to low).

    Expected: the 05-25 warning, voided by the upgrade (docs/rules.md "Tier changes": it no
    longer announces the suspension; the product went back to `warned`), does not announce a
    suspension on 06-05: a new suspension warning naming 06-05 + June's notice period (25th
    → 30th: 5 days), 06-10, and the suspension then, late — as through billing's master
    data, whose reconcile drops the voided warning for good.

    Found (fixed, as above): suspended by the 06-05 sweep itself, on the strength of the
    05-25 warning whose deadline (05-31) passed with no suspension: the rating left the
    warning on the product's ladder, and with the tier low again it counted (same cause as
    the test above)."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30ovr", F.ADC, T.LOW)
    await api.deliver((lg, lg.bill_run(f"{y}-04", 100_000, at(date(y, 5, 1), 9))))
    await sweep(api, f"ovr{uid}", date(y, 5, 10), date(y, 5, 25))
    await ok(await api.http.post(f"/v1/ratings/{lg.customer.customer_id}/overrides", json={
        "override_id": f"OVq30r{uid}", "star_level": 5, "reason": "重要客户, 升级信用等级",
        "expires_at": f"{y}-12-31T00:00:00+08:00"}))
    await sweep(api, f"ovr{uid}", date(y, 5, 31))
    assert await api.state(lg.product_id) != "suspended"
    await ok(await api.http.post(f"/v1/ratings/overrides/OVq30r{uid}/remove",
                                 json={"reason": "评级复核后撤销"}), 200)
    await sweep(api, f"ovr{uid}", date(y, 6, 5))
    assert ladder(await api.credit(lg.product_id))[3:] == [
        ("suspension_warning", None, date(y, 6, 5), f"{y}-06-10")]


# --- 2. a bounced payment while the restore it caused is still in flight --------------------

async def test_a_payment_reversed_while_its_restore_work_order_is_open(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], qa_year: int,
) -> None:
    """Low tier, WORK_ORDER product, March 100.00 yuan: suspension warning 04-25, suspended
    04-30 (its work order done). Paid on 05-02: restore_requested, a restore work order. The
    cheque bounces on 05-03 (冲正) before the operator restored it; the operator finishes the
    restore work order after that.

    Expected: the customer is not restored into arrears without being told why it owes
    again: either the restore is called off (the product stays suspended), or, restored, it
    is `payment_reversed` (冲正/退票通知) and is suspended again only after a suspension
    warning naming a date no earlier than the suspension (docs/rules.md "A reversed payment
    ... makes a normal product (cleared or restored) owe again").

    Found (fixed: `payment_reversed` from `restore_requested` too, the restore going on;
    rules.on_balance, model Action.REOPEN): the reversal's balance event found the product
    `restore_requested` and decided nothing (`rules.on_balance` gave `payment_reversed` to a
    `normal` product only, and a restore only to a suspended one); the operator's work
    order done moved it to `normal`, owing 100.00 yuan again, the notifier sent the
    开机通知 (已可正常使用), and no 冲正/退票 notice ever said why it owed: the next
    sweep's suspension warning (05-04 naming 05-10) was the first the customer heard, and
    the product was restored for a week on a bounced cheque. An ADC product, restored at
    once, got `payment_reversed` for the same events; MAS and SMS-direct had the same
    window while the chain's restore command was out."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30wo", F.WORK_ORDER, T.LOW)
    pid, m3 = lg.product_id, f"{y}-03"
    await api.deliver((lg, lg.bill_run(m3, 10_000, at(date(y, 4, 1), 9))))
    await sweep(api, f"wo{uid}", date(y, 4, 10), date(y, 4, 25), date(y, 4, 30))
    assert [w["action"] for w in await api.finish_work_orders(pid)] == ["suspend"]
    assert await api.state(pid) == "suspended"
    await api.deliver((lg, lg.payment(at(date(y, 5, 2), 10))))
    assert await api.state(pid) == "restore_requested"
    await api.deliver((lg, lg.event(C.REVERSAL, at(date(y, 5, 3), 10), [(m3, 10_000)])))
    done = await api.finish_work_orders(pid)
    view = await api.credit(pid)
    decided = [d for d, *_ in ladder(view)]
    assert (view["state"] in ("suspended", "suspend_requested")
            or decided[-1] == "payment_reversed"), (
        [w["action"] for w in done], view["state"], decided)
    await sweep(api, f"wo{uid}", date(y, 5, 4), date(y, 5, 10))
    # Whatever the way back, no suspension without a suspension warning naming a date no
    # later than it, after the reversal.
    after = [row for row in ladder(await api.credit(pid)) if row[2] >= date(y, 5, 3)]
    suspends = [row for row in after if row[0] == "suspend"]
    warnings = [row for row in after if row[0] == "suspension_warning"]
    for s in suspends:
        assert any(w[2] < s[2] and w[3] is not None and w[3] <= s[2].isoformat()
                   for w in warnings), after


# --- 3. a credit limit raised over the debt after the suspension warning --------------------

async def test_a_limit_raised_past_the_deadline_needs_a_new_warning_before_suspension(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], qa_year: int,
) -> None:
    """Low tier, ADC, 3★ (limit 50.00 yuan), May's bill 80.00 yuan: warning 1 on 06-10, the
    suspension warning on 06-25 naming 06-30. On 06-26 the credit-admin
    raises the limit to 100.00 yuan (PUT /v1/profiles, within 3★'s range): the account owes
    no more than its limit, so it is not suspended on 06-30. June's bill (40.00 yuan) on
    07-01 takes it over the limit again.

    Expected: not suspended on 06-30; and the warning of 06-25, whose deadline passed while
    the account was within its limit, does not announce a suspension on 07-01: a new
    suspension warning with its notice period comes first (as when the limit is raised by a
    balance event: the product is cleared, a new cycle, docs/rules.md).

    Found (fixed: `PUT /v1/profiles` reconsiders the customer's products as of its `as_of`,
    credit/service_layer/reconsider.py): not suspended on 06-30 (the sweep reads the new
    limit), but the product stayed
    `suspension_warned` with the 06-25 warning on its ladder: the profile change reconciles
    nothing (`admin.put_profile` writes `credit_profiles` only; the rating's
    `feed_profiles` the same), while the same limit raised through billing's master data
    clears it (`rules.on_balance`: not owing → `arrears_cleared`, a new cycle). On 07-01
    June's bill sends no bill notice (it goes to normal / warned products only) and the
    day's sweep suspends at once on the strength of the 06-25 warning, whose threat was not
    carried out on its deadline: decisions bill notice, warning 1, suspension warning 06-25,
    suspend 07-01. The customer's last word from us was "pay by 06-30", and on 06-30 it was
    within its limit."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30lim", F.ADC, T.LOW, star_level=3)
    pid, m5, m6 = lg.product_id, f"{y}-05", f"{y}-06"
    await api.deliver((lg, lg.bill_run(m5, 8_000, at(date(y, 6, 1), 9))))
    await sweep(api, f"lim{uid}", date(y, 6, 10), date(y, 6, 25))
    assert await api.state(pid) == "suspension_warned"
    await ok(await api.http.put(f"/v1/profiles/{lg.customer.customer_id}", json={
        "star_level": 3, "credit_limit_fen": 10_000,
        "as_of": f"{y}-06-26T10:00:00+08:00"}), 200)
    assert await api.state(pid) == "normal"  # within its limit: cleared, a new cycle
    await sweep(api, f"lim{uid}", date(y, 6, 30))
    assert await api.state(pid) != "suspended"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 7, 1), 9),
                                    [(m5, 8_000), (m6, 4_000)], m6)))
    await sweep(api, f"lim{uid}", date(y, 7, 1), date(y, 7, 2))
    # Cleared on 06-26; June's bill on 07-01 a new cycle (its bill notice), then a new
    # suspension warning: July 25th → 31st, 6 days' notice from the warning of 07-01.
    assert ladder(await api.credit(pid))[3:] == [
        ("arrears_cleared", None, date(y, 6, 26), None),
        ("bill_notice", None, date(y, 7, 1), f"{y}-07-25"),
        ("suspension_warning", None, date(y, 7, 1), f"{y}-07-07")]


# --- 4. a held suspension warning when the ladder restarts before it leaves -----------------

async def test_a_held_suspension_warning_is_not_sent_after_the_ladder_restarts(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], qa_year: int,
) -> None:
    """Mid tier, ADC: January 300.00 and February 200.00 yuan owing. The 03-25 sweep runs
    at 07:59:45 (business time): the suspension warning for January, naming 03-31, is held by
    the customers' quiet hours (08:00-21:00; in a simulated year, held as long as the quiet
    hours had left: 15 s). At 07:59:50 the customer pays January: the oldest owing month is
    February now, the ladder restarts (docs/rules.md: suspension_warned → warned, February's
    suspension on 04-30), and nothing will happen on 03-31.

    Expected: the held warning does not leave ("never a threat that will not be carried
    out", "a reminder whose reason has gone before it leaves is not sent"): cancelled at
    send time, as the same warning is when the product is cleared; not suspended on 03-31.

    Found (fixed: the reconcile publishes `credit.state_changed` suspension_warned → warned,
    balance_events.Batch._withdrawn, and the notifier's re-check cancels a suspension warning
    made before it, recheck.RULES `withdrawn_seq`): not suspended on 03-31 (right), but at
    08:00 the warning left (`submitted`,
    delivered): "…尚有200.00元话费未缴清,请及时缴费。如在YYYY年03月31日前仍未缴清费用,将停用
    您的集团产品服务。" — the amount revised to February's 200.00 by the
    `credit.product_amount_changed` the payment published, the threat left as it was:
    February's suspension is on 04-30, after its own suspension warning on 04-25. The
    restart is a state-history row only (`ProductCredit.follow`: no decision, no event), so
    the notifier's send-time re-check (`notifier/domain/recheck.py`: cancelled when the
    product returned to normal, was suspended or became exempt since) never learns that the
    warning's reason has gone; `ProductAmountChanged` says `state: warned` but the notifier
    only revises amounts with it. The same holds for a warning waiting for a retry, and for
    an upgrade by billing's master data that leaves the warning not counting (a second
    product here: low tier, February owing, warned 03-25 at 07:59:45 naming 03-31, upgraded
    to high at 07:59:50: the reconcile puts it back to `warned` with no event, and its held
    warning leaves too, threatening 03-31 where the high tier suspends on 05-31)."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30held", F.ADC, T.MID)
    up = ledger(uid, "q30hup", F.ADC, T.LOW)
    m1, m2 = f"{y}-01", f"{y}-02"
    await api.deliver((lg, lg.bill_run(m1, 30_000, at(date(y, 2, 1), 9))))
    await sweep(api, f"held{uid}", date(y, 2, 10))
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 3, 1), 9),
                                    [(m1, 30_000), (m2, 20_000)], m2)),
                      (up, up.bill_run(m2, 20_000, at(date(y, 3, 1), 9))))
    await sweep(api, f"held{uid}", date(y, 3, 10))
    early = datetime(y, 3, 25, 7, 59, 45, tzinfo=at(date(y, 3, 25)).tzinfo)
    await ok(await api.http.post("/v1/sweeps", json={
        "sweep_id": f"q30held{uid}-{y}-03-25", "as_of": early.isoformat()}))
    for x in (lg, up):
        assert await api.state(x.product_id) == "suspension_warned"
    up.customer = msgspec.structs.replace(up.customer, tier=T.HIGH)
    await api.deliver((lg, lg.event(C.PAYMENT, early.replace(second=50), [(m2, 20_000)])),
                      (up, up.event(C.MASTER_DATA, early.replace(second=50),
                                    [(m2, 20_000)])))
    for x in (lg, up):  # the ladder restarted / the warning no longer counts
        history = (await api.credit(x.product_id))["state_history"]
        assert history[-1]["state_after"] == "warned", history[-1]

    async def warnings() -> list[dict[str, Any]]:
        return [m for x in (lg, up) for m in await messages(clients["notifier"], x.product_id)
                if m["template"] == "suspension_warning"]

    sent = await eventually(warnings, lambda found: len(found) == 2 and all(
        m["status"] not in ("held", "pending", "sending") for m in found),
        what="the held suspension warnings settled", timeout=90)
    await sweep(api, f"held{uid}", date(y, 3, 31))
    for x in (lg, up):  # February's ladder: mid tier 04-30, high tier 05-31
        assert await api.state(x.product_id) == "warned"
    assert [m["status"] for m in sent] == ["cancelled", "cancelled"], [
        (m["product_id"], m["status"], m["text"]) for m in sent]


# --- 5. two products of one account at different places on the ladder ----------------------

def account_event(lg: Ledger, cause: BalanceCause, as_of: datetime,
                  owed: dict[str, list[tuple[str, int]]],
                  closed: str | None = None) -> Envelope[Any]:
    """A balance event with billing's per-product allocation (`product_dues`): `owed` is
    product id → (bill month, fen) still owing; the account's dues are their sums."""
    months: dict[str, int] = {}
    for dues in owed.values():
        for m, fen in dues:
            months[m] = months.get(m, 0) + fen
    lg.sequence += 1
    account_dues = tuple(BillMonthDue(bill_month=m, amount_due_fen=f)
                         for m, f in sorted(months.items()))
    total = sum(months.values())
    balance = BalanceChanged(
        account_id=lg.account_id, sequence=lg.sequence, cause=cause, as_of=as_of,
        balance_fen=-total, amount_due_fen=total, dues=account_dues, closed_bill_month=closed,
        customer=lg.customer, products=lg.products,
        product_dues=tuple(ProductDue(
            product_id=p.product_id,
            amount_due_fen=sum(f for _, f in owed.get(p.product_id, [])),
            dues=tuple(BillMonthDue(bill_month=m, amount_due_fen=f)
                       for m, f in owed.get(p.product_id, [])))
            for p in sorted(lg.products, key=lambda p: p.product_id)))
    envelope = wrap(balance, key=lg.account_id, source="test-billing",
                    occurred_at=datetime.now(UTC))
    lg.sent.append(envelope)
    return envelope


async def test_two_products_each_warned_for_its_own_amount_before_its_own_suspension(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], qa_year: int,
) -> None:
    """Low tier, ADC, one account: product A owes January 100.00 yuan; product B was not
    billed in January, owes February 50.00 yuan from the 03-01 bill run. A: warning 1 on
    02-10, suspension warning 02-25 naming 02-28, suspended 02-28. B (the account's ladder
    runs on its oldest owing month, January, docs/rules.md): nothing while it owes nothing
    of its own; after the 03-01 bill its bill notice and, at the day's sweep, a suspension
    warning naming 03-07 (March: 6 days' notice), suspended 03-07, not before.

    Each message quotes its own product's amount, and no suspension comes without that
    product's own suspension warning naming a date no later than it."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30two", F.ADC, T.LOW)
    first = lg.products[0]
    second = msgspec.structs.replace(first, product_id=f"{first.product_id}b",
                                     cpno=f"{first.cpno}b", name="企信通")
    lg.products = (first, second)
    a, b, m1, m2 = first.product_id, second.product_id, f"{y}-01", f"{y}-02"
    await api.deliver((lg, account_event(lg, C.BILL_RUN, at(date(y, 2, 1), 9),
                                         {a: [(m1, 10_000)]}, m1)))
    await sweep(api, f"two{uid}", date(y, 2, 10), date(y, 2, 25), date(y, 2, 28))
    assert (await api.state(a), await api.state(b)) == ("suspended", "normal")
    await api.deliver((lg, account_event(lg, C.BILL_RUN, at(date(y, 3, 1), 9),
                                         {a: [(m1, 10_000)], b: [(m2, 5_000)]}, m2)))
    await sweep(api, f"two{uid}", date(y, 3, 1), date(y, 3, 6))
    assert await api.state(b) == "suspension_warned"
    await sweep(api, f"two{uid}", date(y, 3, 7))
    assert ladder(await api.credit(b)) == [
        ("bill_notice", None, date(y, 3, 1), f"{y}-03-25"),
        ("suspension_warning", None, date(y, 3, 1), f"{y}-03-07"),
        ("suspend", None, date(y, 3, 7), None),
    ]
    assert [row[0] for row in ladder(await api.credit(a))] == [
        "bill_notice", "warning", "suspension_warning", "suspend"]
    notifier = clients["notifier"]

    async def texts(pid: str) -> dict[str, str]:
        return {m["template"]: m["text"] for m in await messages(notifier, pid)}

    got_a = await eventually(lambda: texts(a), lambda t: "suspension_notice_contact" in t,
                             what="A's suspension notice", timeout=60)
    got_b = await eventually(lambda: texts(b), lambda t: "suspension_notice_contact" in t,
                             what="B's suspension notice", timeout=60)
    assert "尚有100.00元话费未缴清" in got_a["suspension_warning"], got_a
    assert f"如在{y}年02月28日前" in got_a["suspension_warning"], got_a
    assert "尚有100.00元欠费未缴纳" in got_a["suspension_notice_contact"], got_a
    assert "尚有50.00元话费未缴清" in got_b["suspension_warning"], got_b
    assert f"如在{y}年03月07日前" in got_b["suspension_warning"], got_b
    assert "尚有50.00元欠费未缴纳" in got_b["suspension_notice_contact"], got_b


# --- 6. a month-end suspension swept late, after the next month's bill -----------------------

async def test_a_late_month_end_sweep_quotes_the_amount_of_its_day(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], qa_year: int,
) -> None:
    """Low tier, ADC: August 300.00 yuan, suspension warning 09-25 naming 09-30. The 09-30
    sweep does not run on time; September's bill (200.00 yuan) closes on 10-01 at 09:00; the
    30th's sweep then runs as of 09-30 20:00 (posted as of the missed moment; the
    scheduler's catch-up of a missed month end, docs/credit-control.md "Scheduler and
    catch-up", runs the same statement as of the same moment) and suspends.

    Expected: the 停机通知 (A) is true to the cent: "截至YYYY年09月30日尚有300.00元欠费未缴纳"
    (what was owed on the day it names), or the day it really went with what is owed then
    (500.00 yuan on 10-01).

    Found (fixed: the sweep's notice context dates 截至 with its account's newest event's
    day when that came after the sweep's moment, sweep_sql `as_of_date`: "截至10月01日尚有
    500.00元"): "…截至YYYY年09月30日尚有500.00元欠费未缴纳,现已正式停用…": the day of the missed
    sweep with the amount of now, September's bill included, which was issued on 10-01; the
    manager's B quotes 500.00 too. The sweep's notice context takes `as_of_date` from the
    run's `as_of` (`sweep_sql`: `:as_of_date_json`, the business date of the missed moment)
    and `amount_due_fen` from `product_credit.product_amount_due_fen`, the product's own
    amount when the statement runs; the notifier renders 截至 from `as_of_date`
    (`notifier/domain/notices.py`). Every catch-up of a month end across the next bill run
    (billing closes months on the 1st–2nd) tells each suspended customer it owed, on the
    last day of the month, a bill that did not exist yet."""
    y, uid = qa_year, new_uid()
    lg = ledger(uid, "q30cu", F.ADC, T.LOW)
    pid, m8, m9 = lg.product_id, f"{y}-08", f"{y}-09"
    await api.deliver((lg, lg.bill_run(m8, 30_000, at(date(y, 9, 1), 9))))
    await sweep(api, f"cu{uid}", date(y, 9, 10), date(y, 9, 25))
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 10, 1), 9),
                                    [(m8, 30_000), (m9, 20_000)], m9)))
    await sweep(api, f"cu{uid}", date(y, 9, 30))
    assert ladder(await api.credit(pid))[-1] == ("suspend", None, date(y, 9, 30), None)
    got = await eventually(lambda: messages(clients["notifier"], pid),
                           lambda ms: any(m["template"] == "suspension_notice_contact"
                                          for m in ms), what="停机通知 A", timeout=60)
    [notice] = [m["text"] for m in got if m["template"] == "suspension_notice_contact"]
    assert (f"截至{y}年09月30日尚有300.00元欠费未缴纳" in notice
            or f"截至{y}年10月01日尚有500.00元欠费未缴纳" in notice), notice

