"""What-if replay of a rule change through the HTTP API (issue 19): a month built through
billing's API (a channel of its own), replayed by credit-control under the current rule table
and under drafts; billing's balance history is the input. Nothing live is touched."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from credit_control.adapters.peers import Peers
from credit_control.whatif.adapters.billing_history import TooManyProducts, month_history
from tests.e2e.test_dashboard import ok

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
YEAR_OFFSET = 33  # this file's year (h19w: test_year + 33..35)
# (tag, tier, family, day of October paid in full or None): the same month as the unit test.
ACCOUNTS = [("1", "low", "ADC", None), ("2", "low", "ADC", 27), ("3", "low", "ADC", 15),
            ("4", "mid", "ADC", None), ("5", "low", "SMS_DIRECT", None), ("6", "low", "ADC", 20)]


async def build_month(billing: httpx.AsyncClient, uid: str, y: int, channel: str) -> None:
    for tag, tier, family, _ in ACCOUNTS:
        c, a, p = f"WC{tag}{uid}", f"WA{tag}{uid}", f"WP{tag}{uid}"
        await ok(await billing.post("/v1/customers", json={
            "customer_id": c, "name": f"推演集团{tag}", "tier": tier,
            "account_manager": {"name": "赵经理", "phone": "13900139011"},
            "contacts": [{"name": "周联系人", "phone": "13800138011"}]}))
        await ok(await billing.post("/v1/accounts", json={"account_id": a, "customer_id": c}))
        await ok(await billing.post("/v1/products", json={
            "product_id": p, "account_id": a, "cpno": f"CP{tag}{uid}", "name": "集团彩铃",
            "family": family, "channel": channel}))
        await ok(await billing.post("/v1/charges", json={
            "charge_id": f"WCH{tag}{uid}", "account_id": a, "product_id": p,
            "bill_month": f"{y}-09", "amount_fen": 100_00}))
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"WBR{uid}", "bill_month": f"{y}-09",
        "as_of": f"{y}-10-01T02:00:00+08:00"}))
    for tag, _, _, paid in ACCOUNTS:
        if paid is not None:
            await ok(await billing.post("/v1/payments", json={
                "payment_id": f"WPAY{tag}{uid}", "account_id": f"WA{tag}{uid}",
                "amount_fen": 100_00, "paid_at": f"{y}-10-{paid:02d}T12:00:00+08:00"}))


async def test_what_if_reports_no_difference_for_the_same_table_and_the_hand_made_one_for_a_moved_suspension(  # noqa: E501
    clients: dict[str, httpx.AsyncClient], role_clients: dict[str, dict[str, httpx.AsyncClient]],
    services: ServiceProcesses, test_year: int, uid: str, db: AsyncEngine, tmp_path: Path,
) -> None:
    y = test_year + YEAR_OFFSET
    channel = f"what-if-{uid}"
    await build_month(clients["billing-events"], uid, y, channel)
    credit = clients["credit-control"]
    rules = await ok(await credit.get("/v1/rules"), 200)
    by_id = {r["rule_id"]: r for r in rules["rows"]}
    # The hand-made expectation assumes the default low tier ADC ladder: 25th → last day.
    assert (by_id["adc-suspension-warning-low"]["day"], by_id["adc-suspend-low"]["day"]) == (
        25, "last")
    base = {"month": f"{y}-10", "as_of": f"{y}-12-01T09:00:00+08:00", "channel": channel}
    # The live system applies the month's balance events meanwhile (bill notices for the six,
    # arrears cleared for the three that pay): wait for them, so any later change is ours.
    before = await eventually(lambda: _live(db, uid), lambda n: n[0] == 9, timeout=120,
                              what="the live decisions of the month's balance events")

    # Read-only but heavy: operators and credit-admins may run it, not the read-only role.
    viewer = role_clients["ops-viewer"]["credit-control"]
    refused = await viewer.post("/v1/rules/what-if", json=base | {"rows": rules["rows"]})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert (await viewer.get("/dashboard/what-if")).status_code == 403
    operator = role_clients["operator"]["credit-control"]
    same = await ok(await operator.post("/v1/rules/what-if",
                                        json=base | {"rows": rules["rows"]}), 200)
    assert same["same"] is True and same["products"] == []
    assert same["products_replayed"] == len(ACCOUNTS)
    assert same["current"]["suspended_per_day"] == {f"{y}-10-31": 2}  # WP1, WP5

    draft = [r | {"day": 18} if r["rule_id"] == "adc-suspension-warning-low" else
             r | {"day": 24} if r["rule_id"] == "adc-suspend-low" else r
             for r in rules["rows"]]
    got = await ok(await credit.post("/v1/rules/what-if", json=base | {"rows": draft}), 200)
    assert got["same"] is False
    assert {(c["product_id"], c["milestone"], c["change"], c["current"], c["draft"])
            for c in got["products"]} == {
        (f"WP1{uid}", "suspension_warned", "earlier", f"{y}-10-25", f"{y}-10-18"),
        (f"WP1{uid}", "suspended", "earlier", f"{y}-10-31", f"{y}-10-24"),
        (f"WP2{uid}", "suspension_warned", "earlier", f"{y}-10-25", f"{y}-10-18"),
        (f"WP2{uid}", "suspended", "only_draft", None, f"{y}-10-24"),
        (f"WP6{uid}", "suspension_warned", "only_draft", None, f"{y}-10-18"),
    }
    assert got["draft"]["suspended_per_day"] == {f"{y}-10-24": 2, f"{y}-10-31": 1}
    assert got["draft"]["sms_per_template"]["restore_notice"] == 1  # WP2 pays the 27th
    assert got["current"]["arrears_at_month_end_fen"] == 300_00  # WP1, WP4, WP5
    assert got["draft"]["suspended_arrears_at_month_end_fen"] == 200_00  # WP1, WP5

    # The same through the CLI (`creditctl rules what-if`), the draft from a file.
    draft_file = tmp_path / "draft.json"
    draft_file.write_text(json.dumps({"rows": draft}), encoding="utf-8")
    cli = creditctl(services, "rules", "what-if", "--month", f"{y}-10", "--draft",
                    str(draft_file), "--channel", channel, "--as-of", base["as_of"],
                    "--output", "json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["products"] == got["products"]
    table = creditctl(services, "rules", "what-if", "--month", f"{y}-10", "--draft",
                      str(draft_file), "--channel", channel, "--as-of", base["as_of"])
    assert table.returncode == 0 and "suspended per day" in table.stdout, table.stderr
    wrong = creditctl(services, "rules", "what-if", "--month", f"{y}-10")
    assert wrong.returncode != 0 and "exactly one" in wrong.stderr

    # The dashboard's page: the current table with one row moved (the warning a week earlier).
    page = await operator.get("/dashboard/what-if", params={
        "month": f"{y}-10", "rule_id": "adc-suspension-warning-low", "day": "18",
        "channel": channel, "as_of": base["as_of"]})
    assert page.status_code == 200, page.text
    assert "what-if-products" in page.text and "3 changes" in page.text
    assert all(f"WP{n}{uid}" in page.text for n in (1, 2, 6)) and f"WP3{uid}" not in page.text
    bad_page = await operator.get("/dashboard/what-if", params={
        "month": f"{y}-10", "rule_id": "adc-suspend-low", "day": "24", "as_of": base["as_of"]})
    assert bad_page.status_code == 422 and "not valid" in bad_page.text

    # Nothing live was touched: no decision (no suspension), no rule table version.
    assert await _live(db, uid) == before
    assert (await ok(await credit.get("/v1/rules"), 200))["version"] == rules["version"]


async def test_what_if_refuses_what_it_cannot_answer(
    clients: dict[str, httpx.AsyncClient], test_year: int, uid: str,
) -> None:
    y = test_year + YEAR_OFFSET + 1
    credit = clients["credit-control"]
    rows = (await ok(await credit.get("/v1/rules"), 200))["rows"]
    cases = {
        "not over": ({"month": f"{y}-10", "as_of": f"{y}-10-15T09:00:00+08:00",
                      "rows": rows}, 422, "unprocessable"),
        "too far back": ({"month": f"{y}-10", "as_of": f"{y + 2}-01-15T09:00:00+08:00",
                          "rows": rows}, 422, "unprocessable"),
        "invalid draft": ({"month": f"{y}-10", "as_of": f"{y}-12-01T09:00:00+08:00",
                           "rows": [r for r in rows if r["rule_id"] != "adc-suspend-low"]},
                          422, "unprocessable"),
        "no draft": ({"month": f"{y}-10", "as_of": f"{y}-12-01T09:00:00+08:00"}, 422, None),
        "unknown version": ({"month": f"{y}-10", "as_of": f"{y}-12-01T09:00:00+08:00",
                             "version": 10_000}, 404, "not_found"),
    }
    for name, (body, status, error) in cases.items():
        r = await credit.post("/v1/rules/what-if", json=body)
        assert r.status_code == status, (name, r.text)
        assert "message" in r.json(), name
        if error:
            assert r.json()["error"] == error, name
    bad = await credit.post("/v1/rules/what-if", json={"month": f"{y}-10", "rows": rows,
                                                        "as_of": f"{y}-12-01T09:00:00+08:00",
                                                        "channel": ""})
    assert bad.status_code == 422


async def test_the_product_cap_is_checked_before_any_replay(
    clients: dict[str, httpx.AsyncClient], services: Any, test_year: int, uid: str,
) -> None:
    y = test_year + YEAR_OFFSET + 2
    channel = f"what-if-cap-{uid}"
    await build_month(clients["billing-events"], uid, y, channel)
    token = clients["billing-events"].headers["Authorization"].split()[1]
    peers = Peers(services.specs["billing-events"].url, "", "", token)
    try:
        found = await month_history(peers, date(y, 10, 1), 3, 100, channel)
        assert sorted(h.account_id for h in found) == sorted(
            f"WA{tag}{uid}" for tag, *_ in ACCOUNTS)
        with pytest.raises(TooManyProducts):
            await month_history(peers, date(y, 10, 1), 3, len(ACCOUNTS) - 1, channel)
    finally:
        await peers.aclose()


def creditctl(services: ServiceProcesses, *args: str) -> subprocess.CompletedProcess[str]:
    urls = {name: spec.url for name, spec in services.specs.items()}
    env = {**os.environ, "COLUMNS": "300", "CREDITCTL_TOKEN": "operator-token",
           "CREDITCTL_BILLING_URL": urls["billing-events"],
           "CREDITCTL_CREDIT_URL": urls["credit-control"],
           "CREDITCTL_NOTIFIER_URL": urls["notifier"],
           "CREDITCTL_GATEWAY_URL": urls["gateway-adapter"]}
    return subprocess.run([sys.executable, "-m", "creditctl", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


async def _live(db: AsyncEngine, uid: str) -> tuple[Any, ...]:
    async with db.connect() as conn:
        decisions = await conn.scalar(text(
            "SELECT count(*) FROM credit.decisions WHERE product_id LIKE :p"),
            {"p": f"WP%{uid}"})
        suspended = await conn.scalar(text(
            "SELECT count(*) FROM credit.decisions WHERE product_id LIKE :p "
            "AND decision = 'suspend'"), {"p": f"WP%{uid}"})
        versions = await conn.scalar(text("SELECT count(*) FROM credit.rule_tables"))
    return decisions, suspended, versions
