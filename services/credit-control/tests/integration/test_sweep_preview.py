"""The sweep preview (GET /v1/sweeps/preview, issue 19): what a sweep at a moment would decide,
decision for decision, without writing anything.

ADC mid tier owing since March (test_sweep_one_pass's ledger): on 25 May the suspension
warning is due, on 31 May the suspension."""

import hashlib
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from common.testing.polling import eventually

from .helpers import CreditApi, at, new_uid, notices_heard
from .test_sweep_one_pass import owing_since_march

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _preview(api: CreditApi, day: date, **params: Any) -> dict[str, Any]:
    r = await api.http.get("/v1/sweeps/preview",
                           params={"as_of": at(day).isoformat(), **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _footprint(api: CreditApi, *ledgers: Any) -> tuple[int, int, int]:
    """What a preview must not write, for the test's own products: their decisions, the
    outbox rows keyed by their accounts or products, their state changes. Not whole tables:
    the running services' late work for other tests (a chain result, an SMS outcome) may
    land in between; the preview runs in a transaction it rolls back either way."""
    products = [lg.product_id for lg in ledgers]
    async with api.db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT (SELECT count(*) FROM credit.decisions WHERE product_id = ANY(:p)), "
            "(SELECT count(*) FROM credit.outbox_messages WHERE key = ANY(:k)), "
            "(SELECT count(*) FROM credit.state_history WHERE product_id = ANY(:p))"),
            {"p": products, "k": products + [lg.account_id for lg in ledgers]})).one()
    return int(row[0]), int(row[1]), int(row[2])


async def _swept_ids(api: CreditApi, day: date, since: datetime) -> list[str]:
    async with api.db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT decision_id FROM credit.decisions WHERE as_of = :as_of "
            "AND created_at >= :since ORDER BY decision_id"),
            {"as_of": at(day), "since": since})
        return [str(r[0]) for r in rows]


async def _now(api: CreditApi) -> datetime:
    async with api.db.connect() as conn:
        found: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    return found


async def test_the_preview_is_what_the_sweep_then_decides_and_writes_nothing(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    first = await owing_since_march(api, uid, "pa", y)
    second = await owing_since_march(api, uid, "pb", y, deposit_fen=0)
    for day in (date(y, 5, 25), date(y, 5, 31)):
        await notices_heard(api.db)  # as the sweep does first: the 25th's warnings heard
        before = await _footprint(api, first, second)
        preview = await _preview(api, day, limit=1000)
        assert await _footprint(api, first, second) == before  # nothing written
        mine: dict[str, set[str]] = {}
        for i in preview["items"]:
            if i["product_id"] in (first.product_id, second.product_id):
                mine.setdefault(i["product_id"], set()).add(i["decision"])
                assert i["amount_due_fen"] == 10_000
        expected = "suspension_warning" if day.day == 25 else "suspend"
        assert set(mine) == {first.product_id, second.product_id}, preview
        assert all(expected in kinds for kinds in mine.values()), mine
        since = await _now(api)
        await api.sweep(day, f"op-pv{uid}-{day:%m%d}")
        swept = await _swept_ids(api, day, since)
        # Decision for decision: the preview's fingerprint is the sweep's own decisions'.
        assert preview["total"] == len(swept)
        assert preview["fingerprint"] == hashlib.sha256("\n".join(swept).encode()).hexdigest()
    assert await api.state(first.product_id) == "suspended"


async def test_a_preview_answers_the_same_until_the_facts_change(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "pc", y)
    day = date(y, 5, 25)
    once = await _preview(api, day, account_id=lg.account_id)
    twice = await _preview(api, day, account_id=lg.account_id)
    assert once["fingerprint"] == twice["fingerprint"]
    assert sorted(i["decision"] for i in once["items"]) == ["deduction", "suspension_warning"]
    assert {i["account_id"] for i in once["items"]} == {lg.account_id}
    assert once["total"] >= once["matching"] == 2
    await api.deliver((lg, lg.payment(at(date(y, 5, 20), 9))))  # paid: nothing to warn
    after = await _preview(api, day, account_id=lg.account_id)
    assert after["items"] == [] and after["matching"] == 0
    assert after["fingerprint"] != once["fingerprint"]
    assert after["total"] == once["total"] - 2


@pytest.mark.parametrize("params", [{}, {"as_of": "tonight"}, {"as_of": "2026-13-01"},
                                    {"as_of": "2026-05-25T20:00:00+08:00", "limit": "0"}])
async def test_a_bad_preview_request_is_a_clear_4xx(
    api: CreditApi, params: dict[str, str]
) -> None:
    r = await api.http.get("/v1/sweeps/preview", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]


@pytest.mark.parametrize("token, sees_names", [("test-token", True), ("viewer-token", False)])
async def test_the_dashboard_page_shows_the_preview_masked_per_role(
    api: CreditApi, test_year: int, token: str, sees_names: bool
) -> None:
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "pg", y)
    day = date(y, 5, 25)
    r = await api.http.get("/dashboard/sweeps/preview",
                           params={"as_of": at(day).isoformat(), "account_id": lg.account_id},
                           headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    page = r.text
    assert lg.product_id in page and "suspension_warning" in page
    assert "100.00" in page  # the product's own amount due, in yuan
    assert f"{y}-05-25 20:00:00 北京时间" in page
    assert lg.customer.name in page  # a group company's name is no one's personal data
    assert ("王经理" in page) is sees_names  # the account manager's is
    before = await _footprint(api, lg)
    await api.http.get("/dashboard/sweeps/preview", params={"as_of": at(day).isoformat()},
                       headers={"Authorization": f"Bearer {token}"})
    assert await _footprint(api, lg) == before
    # Without a moment the page only offers tonight's: nothing runs until asked.
    r = await api.http.get("/dashboard/sweeps/preview",
                           headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and 'id="preview-ask"' in r.text
    assert "preview-items" not in r.text


# --- sweeps that need an approved preview ----------------------------------------------------

class Approvals:
    """Turns `needs_approved_preview` on for one test and back to what it was after: the
    setting is the whole database's, and the other tests' sweeps must not need approvals."""

    def __init__(self, api: CreditApi) -> None:
        self.api = api

    async def __aenter__(self) -> "Approvals":
        self.was = (await self.api.http.get("/v1/guard")).json()
        await self._put(True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._put(self.was.get("needs_approved_preview", False))

    async def _put(self, on: bool) -> None:
        r = await self.api.http.put("/v1/guard", json={
            "enabled": self.was["enabled"], "max_share": self.was["max_share"],
            "min_active": self.was["min_active"], "needs_approved_preview": on})
        assert r.status_code == 200, r.text

    async def approve(self, day: date) -> dict[str, Any]:
        await notices_heard(self.api.db)
        seen = await _preview(self.api, day)
        r = await self.api.http.post("/v1/sweeps/preview/approvals", json={
            "as_of": at(day).isoformat(), "fingerprint": seen["fingerprint"], "note": "ok"})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def sweep(self, day: date, sweep_id: str) -> dict[str, Any]:
        await notices_heard(self.api.db)
        r = await self.api.http.post("/v1/sweeps", json={"sweep_id": sweep_id,
                                                          "as_of": at(day).isoformat()})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def confirm(self, sweep_id: str) -> Any:
        return await self.api.http.post(f"/v1/sweeps/{sweep_id}/confirm", json={"note": "ok"})


async def _approvals_count(api: CreditApi) -> int:
    async with api.db.connect() as conn:
        return int((await conn.execute(text(
            "SELECT count(*) FROM credit.preview_approvals"))).scalar_one())


async def test_a_sweep_that_needs_approval_decides_only_what_was_approved(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "pr", y, deposit_fen=0)
    day = date(y, 5, 25)
    async with Approvals(api) as gate:
        # No approval: held whole, nothing decided.
        held = await gate.sweep(day, f"op-pr{uid}-a")
        assert held["status"] == "held" and held["held"]["kind"] == "preview", held
        assert held["decisions"] == {}
        assert await api.state(lg.product_id) == "warned"
        # A stale fingerprint is refused and changes nothing.
        before = await _approvals_count(api)
        r = await api.http.post("/v1/sweeps/preview/approvals", json={
            "as_of": at(day).isoformat(), "fingerprint": "0" * 64})
        assert r.status_code == 409 and "look at the preview again" in r.json()["message"]
        assert await _approvals_count(api) == before
        # Approved as previewed: the confirmation runs exactly that.
        approval = await gate.approve(day)
        since = await _now(api)
        r = await gate.confirm(f"op-pr{uid}-a")
        assert r.status_code == 200, r.text
        assert await api.state(lg.product_id) == "suspension_warned"
        async with api.db.connect() as conn:
            approved = set((await conn.execute(text(
                "SELECT decision_ids FROM credit.preview_approvals WHERE approval_id = :a"),
                {"a": approval["approval_id"]})).scalar_one())
        assert set(await _swept_ids(api, day, since)) <= approved


async def test_a_paid_one_is_skipped_and_one_not_approved_holds_the_sweep(
    api: CreditApi, test_year: int
) -> None:
    y, uid = test_year, new_uid()
    paid = await owing_since_march(api, uid, "pp", y, deposit_fen=0)
    day = date(y, 5, 25)
    async with Approvals(api) as gate:
        await gate.approve(day)  # `paid`'s suspension warning is in it
        await api.deliver((paid, paid.payment(at(date(y, 5, 24), 9))))
        # Approved, no longer due: the sweep runs without it (nothing new to approve).
        done = await gate.sweep(day, f"op-pp{uid}-a")
        assert done["status"] == "done", done
        assert await api.state(paid.product_id) == "normal"
        # A product that fell due after the approval holds the next sweep of the day.
        late = await owing_since_march(api, uid, "pl", y, deposit_fen=0)
        held = await gate.sweep(day, f"op-pp{uid}-b")
        assert held["status"] == "held" and held["held"]["kind"] == "preview", held
        r = await gate.confirm(f"op-pp{uid}-b")  # still not approved: 409, nothing runs
        assert r.status_code == 409, r.text
        assert r.json()["difference"]["not_approved"] >= 1
        assert await api.state(late.product_id) == "warned"
        await gate.approve(day)  # looked at again, approved: the confirmation runs it
        r = await gate.confirm(f"op-pp{uid}-b")
        assert r.status_code == 200, r.text
        assert await api.state(late.product_id) == "suspension_warned"


async def test_the_sweep_statement_takes_only_approved_decisions(
    api: CreditApi, test_year: int
) -> None:
    """The guarantee behind approvals: whatever changes after the check (a balance event
    while the sweep runs, a resume an hour later), the statement takes only approved ids."""
    from datetime import timedelta

    from credit_control.admin.adapters import admin_repository as admin_repo
    from credit_control.credit.adapters import sweep_sql
    from credit_control.credit.domain import rules

    y, uid = test_year, new_uid()
    a = await owing_since_march(api, uid, "qa", y, deposit_fen=0)
    b = await owing_since_march(api, uid, "qb", y, deposit_fen=0)
    day = date(y, 5, 25)
    seen = await _preview(api, day, account_id=a.account_id)
    a_ids = [i["decision_id"] for i in seen["items"]]
    assert a_ids
    async with api.db.connect() as conn:
        table, _ = await admin_repo.rule_table(conn)
        await conn.rollback()
    steps = list(enumerate(rules.sweep_plan(table, day)))
    for approved, expected in ((a_ids, {a.product_id}), ([], set())):
        async with api.db.connect() as conn:
            tx = await conn.begin()
            values = sweep_sql.params(steps, at(day), at(day), table.version, "", 100_000,
                                      "test", None, at(day) + timedelta(hours=24), day,
                                      approved=approved)
            await sweep_sql.run_chunk(conn, values)
            made = set((await conn.execute(text(
                "SELECT product_id FROM credit.decisions WHERE created_at = now() "
                "AND product_id = ANY(:p)"), {"p": [a.product_id, b.product_id]})).scalars())
            await tx.rollback()
        assert made == expected  # b was due as well: not approved, not taken


async def test_the_previewed_sms_is_the_one_the_sweep_then_sends(
    api: CreditApi, clients: dict[str, httpx.AsyncClient], test_year: int
) -> None:
    """`sms=true`: each listed decision with the SMS the notifier's templates in force make
    of it, and after the sweep the notifier's log holds exactly those texts."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "ps", y, deposit_fen=0)
    day = date(y, 5, 25)
    await notices_heard(api.db)
    preview = await _preview(api, day, account_id=lg.account_id, sms="true", limit=10)
    assert "sms_unavailable" not in preview, preview
    [item] = preview["items"]
    assert item["decision"] == "suspension_warning"
    previewed = {(m["template"], m["recipient"], m["text"]) for m in item["sms"]}
    assert previewed, item
    assert all(m["segments"] >= 1 and not m["undeliverable"] for m in item["sms"])
    # The product's own amount (100.00 yuan), never a total of the account's.
    assert all("100.00" in text for _, _, text in previewed), previewed

    await api.sweep(day, f"op-ps{uid}-0525")

    async def sent() -> set[tuple[str, str, str]]:
        r = await clients["notifier"].get("/v1/messages", params={"product_id": lg.product_id})
        assert r.status_code == 200, r.text
        return {(m["template"], m["recipient"], m["text"]) for m in r.json()
                if m["template"] == item["sms"][0]["template"]}

    assert await eventually(sent, lambda found: found == previewed,
                            what="the suspension warning in the notifier's log",
                            timeout=60) == previewed


async def test_a_preview_with_sms_asks_for_few_decisions(api: CreditApi) -> None:
    r = await api.http.get("/v1/sweeps/preview", params={
        "as_of": "2026-05-25T20:00:00+08:00", "sms": "true", "limit": "51"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "limit"
