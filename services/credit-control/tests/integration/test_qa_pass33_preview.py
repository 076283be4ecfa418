"""QA pass 33: never cutting a customer off by mistake at month end. The sweep preview, its
approval, the mass-suspension guard, under facts that change between preview and sweep,
through the running services: balance events on Kafka as billing-events publishes them
(helpers.Ledger), previews, approvals, sweeps, exemptions and freezes through
credit-control's HTTP API, then states and decisions read back.

Year `test_year + 24` is this module's (`qa_year`, capped at 2999). Every customer is ADC,
mid tier, of its own group, with no deposit (no deduction), each owing its own odd amount
so that amounts can be checked to the fen:
- the "main" four owe March (bill run 04-01): warning 1 on 04-10, the suspension warning on
  05-25, the suspension due on 05-31;
- the "guard" two owe April (bill run 05-01): warning 1 on 05-10, the suspension warning on
  06-25, the suspension due on 06-30."""

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from common.contracts.billing import BalanceCause as C
from common.contracts.snapshots import ProductFamily as F
from common.contracts.snapshots import Tier as T
from common.testing.notices import notices_heard

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MAIN = {"pay": 12_345, "red": 23_456, "frz": 34_567, "keep": 45_678}
GUARD = {"gpay": 11_111, "gkeep": 22_229}


# --- helpers --------------------------------------------------------------------------------

def ok(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def preview(api: CreditApi, day: date, **params: Any) -> dict[str, Any]:
    await notices_heard(api.db)  # as the sweep does first
    found: dict[str, Any] = ok(await api.http.get("/v1/sweeps/preview", params={
        "as_of": at(day).isoformat(), **params}), 200)
    return found


async def sweep(api: CreditApi, day: date, sweep_id: str) -> dict[str, Any]:
    await notices_heard(api.db)
    body: dict[str, Any] = ok(await api.http.post("/v1/sweeps", json={
        "sweep_id": sweep_id, "as_of": at(day).isoformat()}))
    return body


async def decisions_of(api: CreditApi, *ledgers: Ledger) -> list[tuple[str, str, str]]:
    """(product, decision, decision id) of these products, every one taken."""
    async with api.db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT product_id, decision, decision_id FROM credit.decisions "
            "WHERE product_id = ANY(:p) ORDER BY product_id, decision_id"),
            {"p": [lg.product_id for lg in ledgers]})
        return [(str(a), str(b), str(c)) for a, b, c in rows]


async def approvals_count(api: CreditApi) -> int:
    async with api.db.connect() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM credit.preview_approvals"))).scalar_one())


class Guard:
    """Sets the guard's settings for one test and puts back what they were: they are the
    whole database's."""

    def __init__(self, api: CreditApi, **settings: Any) -> None:
        self.api, self.settings = api, settings

    async def __aenter__(self) -> "Guard":
        self.was = ok(await self.api.http.get("/v1/guard"), 200)
        ok(await self.api.http.put("/v1/guard", json=self.settings), 200)
        return self

    async def __aexit__(self, *exc: object) -> None:
        ok(await self.api.http.put("/v1/guard", json={
            k: self.was[k] for k in ("enabled", "max_share", "min_active",
                                     "needs_approved_preview")}), 200)


# --- the story ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def qa_year(test_year: int) -> int:
    return min(test_year + 24, 2999)


@pytest.fixture(scope="module")
async def story(api: CreditApi, qa_year: int) -> dict[str, Any]:
    y, uid = qa_year, new_uid()
    got: dict[str, Any] = {"y": y, "uid": uid}
    for name in (*MAIN, *GUARD):
        got[name] = ledger(uid, f"q33{name}", F.ADC, T.MID)
    mar, apr = f"{y}-03", f"{y}-04"
    await api.deliver(*((got[n], got[n].event(C.BILL_RUN, at(date(y, 4, 1), 9),
                                              [(mar, fen)], mar)) for n, fen in MAIN.items()))
    await sweep(api, date(y, 4, 10), f"q33{uid}-0410")
    await api.deliver(*((got[n], got[n].event(C.BILL_RUN, at(date(y, 5, 1), 9),
                                              [(apr, fen)], apr)) for n, fen in GUARD.items()))
    await sweep(api, date(y, 5, 10), f"q33{uid}-0510")
    await sweep(api, date(y, 5, 25), f"q33{uid}-0525")
    for n in MAIN:
        assert await api.state(got[n].product_id) == "suspension_warned", n
    for n in GUARD:
        assert await api.state(got[n].product_id) == "warned", n
    return got


# --- 1. the preview: the whole and its filters ----------------------------------------------

async def test_the_preview_lists_each_products_own_amount_and_its_filters_agree(
    api: CreditApi, story: dict[str, Any],
) -> None:
    """05-31: each of the four is to be suspended for its own amount, to the fen; a filter by
    account, customer, family or decision lists the same decisions as the whole."""
    y = story["y"]
    day = date(y, 5, 31)
    mine = {story[n].product_id: fen for n, fen in MAIN.items()}
    whole = await preview(api, day, limit=1000)
    by_account = {}
    for n, fen in MAIN.items():
        lg = story[n]
        one = await preview(api, day, account_id=lg.account_id)
        [item] = one["items"]
        assert (item["product_id"], item["decision"], item["amount_due_fen"]) == (
            lg.product_id, "suspend", fen), item
        assert (item["family"], item["tier"], item["held"]) == ("ADC", "mid", False), item
        assert one["fingerprint"] == whole["fingerprint"]  # a filter lists, never decides
        by_customer = await preview(api, day, customer_id=lg.customer.customer_id)
        assert by_customer["items"] == one["items"]
        by_account[lg.product_id] = item
    suspends = await preview(api, day, decision="suspend", family="ADC", limit=1000)
    assert suspends["matching"] == whole["decisions"].get("suspend", 0) - sum(
        1 for i in whole["items"] if i["decision"] == "suspend" and i["family"] != "ADC")
    listed = {i["product_id"]: i for i in suspends["items"] if i["product_id"] in mine}
    if whole["matching"] <= 1000:  # the whole fits the page: the same items
        assert {i["product_id"]: i for i in whole["items"] if i["product_id"] in mine} == (
            by_account)
    assert listed == by_account
    assert whole["by_family_tier"].get("suspend ADC mid", 0) >= len(MAIN)


async def test_the_preview_region_and_channel_filters_agree_with_their_counts(
    api: CreditApi, story: dict[str, Any],
) -> None:
    """by_region / by_channel count the whole sweep per region (a customer with none
    recorded under "") and per decision; a staff member who filters by one of those regions
    or channels must find the same number of decisions (`matching`). Our four customers
    have no region and no channel recorded: they are counted under "" in both."""
    day = date(story["y"], 5, 31)
    whole = await preview(api, day, limit=1)
    for key in ("region", "channel"):
        counts: dict[str, int] = {}
        for rec in whole[f"by_{key}"]:
            counts[rec[key]] = counts.get(rec[key], 0) + rec["count"]
        assert counts.get("", 0) >= len(MAIN), whole[f"by_{key}"]
        found = {value: (await preview(api, day, limit=1, **{key: value}))["matching"]
                 for value in counts}
        assert found == counts, (key, found, counts)


# --- 2. the approval, then facts change before the sweep ------------------------------------

async def test_an_approved_sweep_spares_whoever_paid_was_red_listed_or_frozen_since(
    api: CreditApi, story: dict[str, Any],
) -> None:
    """A credit-admin approves the 05-31 preview (all four suspensions in it). Afterwards
    "pay" pays, "red" is put on the red list and "frz" is frozen (customer scope). The sweep
    decides only approved decisions and none of those three: only "keep" is suspended.
    Approving the same preview twice stores one approval."""
    y, uid = story["y"], story["uid"]
    day = date(y, 5, 31)
    async with Guard(api, needs_approved_preview=True):
        seen = await preview(api, day, limit=1)
        body = {"as_of": at(day).isoformat(), "fingerprint": seen["fingerprint"],
                "note": "月末停机已核"}
        approval = ok(await api.http.post("/v1/sweeps/preview/approvals", json=body))
        count = await approvals_count(api)
        again = ok(await api.http.post("/v1/sweeps/preview/approvals", json=body))
        assert again["approval_id"] == approval["approval_id"]
        assert await approvals_count(api) == count
        async with api.db.connect() as conn:
            approved = set((await conn.execute(text(
                "SELECT decision_ids FROM credit.preview_approvals WHERE approval_id = :a"),
                {"a": approval["approval_id"]})).scalar_one())
        # After the approval: a payment, a red list entry, a freeze.
        pay, red, frz, keep = (story[n] for n in MAIN)
        await api.deliver((pay, pay.payment(at(day, 15))))
        ok(await api.http.post("/v1/exemptions", json={
            "exemption_id": f"EXq33{uid}", "customer_id": red.customer.customer_id,
            "kind": "red_list", "reason": "重点客户, 分管副总批准", "approver": "分管副总"}))
        ok(await api.http.post("/v1/freezes", json={
            "freeze_id": f"FZq33{uid}", "scope": "customer",
            "value": frz.customer.customer_id, "covers_warnings": True,
            "reason": "账单争议, 核实前不停机", "approver": "主管张三",
            "starts_at": at(day, 0).isoformat(), "until": at(date(y, 6, 20), 0).isoformat()}))
        done = await sweep(api, day, f"q33{uid}-0531")
        assert done["status"] == "done", done
    assert await api.state(keep.product_id) == "suspended"
    for lg in (pay, red, frz):
        assert await api.state(lg.product_id) != "suspended", lg.product_id
    taken = [d for d in await decisions_of(api, pay, red, frz, keep) if d[1] == "suspend"]
    assert [p for p, _, _ in taken] == [keep.product_id]
    assert {i for _, _, i in taken} <= approved


# --- 3. the mass-suspension guard -----------------------------------------------------------

async def test_a_guard_held_sweep_confirmed_suspends_what_was_held_but_not_who_paid(
    api: CreditApi, story: dict[str, Any],
) -> None:
    """06-30, the guard set to hold any suspension: the preview shows the two guard
    customers' suspensions as held, for their own amounts; the sweep is held and suspends
    nothing; "gpay" pays; the confirmation suspends "gkeep" only."""
    y, uid = story["y"], story["uid"]
    await sweep(api, date(y, 6, 25), f"q33{uid}-0625")
    gpay, gkeep = story["gpay"], story["gkeep"]
    for lg in (gpay, gkeep):
        assert await api.state(lg.product_id) == "suspension_warned"
    day = date(y, 6, 30)
    async with Guard(api, enabled=True, max_share=1e-9, min_active=1,
                     needs_approved_preview=False):
        seen = {}
        for n, fen in GUARD.items():
            one = await preview(api, day, account_id=story[n].account_id)
            [item] = one["items"]
            assert (item["decision"], item["held"], item["amount_due_fen"]) == (
                "suspend", True, fen), item
            assert one["guard"]["held"] is True, one["guard"]
            seen[n] = item["decision_id"]
        held = await sweep(api, day, f"q33{uid}-0630")
        assert held["status"] == "held", held
        assert [d for d in await decisions_of(api, gpay, gkeep) if d[1] == "suspend"] == []
        await api.deliver((gpay, gpay.payment(at(day, 20).replace(minute=30))))
        ok(await api.http.post(f"/v1/sweeps/q33{uid}-0630/confirm",
                               json={"note": "核对无误"}), 200)
    assert await api.state(gkeep.product_id) == "suspended"
    assert await api.state(gpay.product_id) != "suspended"
    taken = [(p, i) for p, d, i in await decisions_of(api, gpay, gkeep) if d == "suspend"]
    assert taken == [(gkeep.product_id, seen["gkeep"])]


# --- 4. idempotency and bad input -----------------------------------------------------------

async def test_a_sweep_id_reused_with_another_moment_is_refused_and_changes_nothing(
    api: CreditApi, story: dict[str, Any],
) -> None:
    y, uid = story["y"], story["uid"]
    before = await api.footprint(story[n] for n in (*MAIN, *GUARD))
    runs = ok(await api.http.get(f"/v1/sweeps/q33{uid}-0525"), 200)
    r = await api.http.post("/v1/sweeps", json={"sweep_id": f"q33{uid}-0525",
                                                "as_of": at(date(y, 7, 31)).isoformat()})
    assert 400 <= r.status_code < 500 and r.status_code != 404, r.text
    assert await api.footprint(story[n] for n in (*MAIN, *GUARD)) == before
    assert ok(await api.http.get(f"/v1/sweeps/q33{uid}-0525"), 200)["as_of"] == runs["as_of"]


@pytest.mark.parametrize("body", [
    {"as_of": "9999-12-31T20:00:00+08:00", "fingerprint": "0" * 64},
    {"as_of": "1999-12-31T20:00:00+08:00", "fingerprint": "0" * 64},
    {"as_of": "tonight", "fingerprint": "0" * 64},
    {"as_of": "2050-05-31T20:00:00+08:00", "fingerprint": "abc"},
    {"as_of": "2050-05-31T20:00:00+08:00"},
    {"as_of": "2050-05-31T20:00:00+08:00", "fingerprint": "0" * 64, "extra": 1},
])
async def test_a_bad_approval_is_a_clear_4xx_and_stores_nothing(
    api: CreditApi, body: dict[str, Any],
) -> None:
    before = await approvals_count(api)
    r = await api.http.post("/v1/sweeps/preview/approvals", json=body)
    assert r.status_code == 422, r.text
    assert await approvals_count(api) == before


@pytest.mark.parametrize("params", [
    {"family": "FOO"}, {"decision": "cut_off"}, {"limit": "1001"}, {"limit": "-1"},
    {"account_id": "A" * 65}, {"as_of": "9999-12-31T23:59:59+08:00"},
])
async def test_a_bad_preview_filter_is_a_clear_4xx(
    api: CreditApi, params: dict[str, str],
) -> None:
    r = await api.http.get("/v1/sweeps/preview", params={
        "as_of": "2050-05-31T20:00:00+08:00", **params})
    assert r.status_code == 422, r.text
