"""Write-offs lapse when what they wrote off is paid or cancelled after all (docs/billing.md,
"Write-offs lapse"): a write-off (核销) never becomes the customer's money that pays the next
bills. Against real PostgreSQL, through the API and the CSV import.

Bill months of `test_year + 47` (a bill run closes a month for everyone): 01–02 a recovery
by payment, 03–04 a bounced recovery, 05–06 the CSV path, 07–08 a credit note, 09–10 a
credit note after a later bill; each month billed on the 2nd of the next."""

import csv
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.stack import Stack

from .helpers import charge_and_close, events, footprint, open_account, post
from .test_import_csv import run

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def year(test_year: int) -> int:
    return test_year + 47


async def _write_off(billing: httpx.AsyncClient, ids: dict[str, str], uid: str, fen: int,
                     at: str, n: int = 1) -> dict[str, Any]:
    written: dict[str, Any] = await post(billing, "/v1/write-offs", {
        "write_off_id": f"WO{uid}-{n}", "account_id": ids["account"], "amount_fen": fen,
        "reason": "坏账核销", "as_of": at})
    return written


async def _lapses(db: AsyncEngine, account: str) -> list[tuple[str, int, str | None]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT cause, amount_fen, payment_id FROM billing.write_off_lapses "
            "WHERE account_id = :a ORDER BY created_at, lapse_id"), {"a": account})
        return [(r[0], int(r[1]), r[2]) for r in rows]


async def test_a_payment_of_written_off_debt_recovers_it_and_the_next_bill_is_owed(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, year: int
) -> None:
    """January's 100.00 written off; then the customer pays 150.00 after all: the write-off
    lapses by 100.00 (recovered), the account is 50.00 in credit (the customer's own money),
    and February's 80.00 leaves 30.00 owed, not 0 (before: the write-off paid it)."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{year}-01", 10_000, uid)
    written = await _write_off(billing, ids, uid, 10_000, f"{year}-02-20T10:00:00+08:00")
    assert written["account"]["amount_due_fen"] == 0
    paid = await post(billing, "/v1/payments", {
        "payment_id": f"PW{uid}", "account_id": ids["account"], "amount_fen": 15_000,
        "paid_at": f"{year}-02-25T10:00:00+08:00"})
    assert paid["account"]["balance_fen"] == 5_000
    assert await _lapses(db, ids["account"]) == [("payment", 10_000, f"PW{uid}")]
    await charge_and_close(billing, ids, f"{year}-02", 8_000, uid)
    view = (await billing.get(f"/v1/accounts/{ids['account']}")).json()
    assert (view["balance_fen"], view["amount_due_fen"]) == (-3_000, 3_000)
    assert view["dues"] == [{"bill_month": f"{year}-02", "amount_due_fen": 3_000}]
    # The dated ledger knows the lapse: February's debt can be written off in its turn.
    again = await _write_off(billing, ids, uid, 3_000, f"{year}-03-10T10:00:00+08:00", n=2)
    assert again["account"]["amount_due_fen"] == 0
    last = (await events(db, ids["account"]))[-1]
    assert (last["cause"], last["balance_fen"], last["amount_due_fen"]) == ("write_off", 0, 0)


async def test_a_recovery_that_bounces_brings_the_write_off_back(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, year: int
) -> None:
    """March's 100.00 written off, paid after all (the write-off lapses), then the payment
    bounces: March is written off again (nothing owed for it), and April's 80.00 is owed in
    full, neither paid by the write-off nor owed twice."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{year}-03", 10_000, uid)
    await _write_off(billing, ids, uid, 10_000, f"{year}-04-20T10:00:00+08:00")
    paid = await post(billing, "/v1/payments", {
        "payment_id": f"PB{uid}", "account_id": ids["account"], "amount_fen": 10_000,
        "paid_at": f"{year}-04-25T10:00:00+08:00"})
    assert paid["account"]["balance_fen"] == 0
    bounced = await post(billing, "/v1/reversals", {
        "reversal_id": f"RB{uid}", "payment_id": f"PB{uid}", "reason": "银行退票",
        "reversed_at": f"{year}-04-28T10:00:00+08:00"})
    assert (bounced["account"]["balance_fen"], bounced["account"]["amount_due_fen"]) == (0, 0)
    assert await _lapses(db, ids["account"]) == [("payment", 10_000, f"PB{uid}"),
                                                 ("reversal", -10_000, None)]
    await charge_and_close(billing, ids, f"{year}-04", 8_000, uid)
    view = (await billing.get(f"/v1/accounts/{ids['account']}")).json()
    assert view["dues"] == [{"bill_month": f"{year}-04", "amount_due_fen": 8_000}]


async def test_csv_payments_make_write_offs_lapse_as_the_api_does(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, stack: Stack, tmp_path: Path,
    uid: str, year: int,
) -> None:
    """The same recovery through the CSV import: two payments of one account in one file
    (60.00 then 70.00) against May's written-off 100.00; the lapse (100.00) is shared from
    the last payment back (70.00, then 30.00), so each payment's own share is known if it
    bounces; 30.00 of credit stays, as through the API."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{year}-05", 10_000, uid)
    await _write_off(billing, ids, uid, 10_000, f"{year}-06-20T10:00:00+08:00")
    pay = tmp_path / "5_payments.csv"
    with pay.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([
            ("payment_id", "account_id", "amount_fen", "paid_at"),
            (f"PC1{uid}", ids["account"], "6000", f"{year}-06-25T10:00:00+08:00"),
            (f"PC2{uid}", ids["account"], "7000", f"{year}-06-26T10:00:00+08:00")])
    loaded = run(stack, "import-csv", str(pay))
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    assert sorted(await _lapses(db, ids["account"])) == [
        ("payment", 3_000, f"PC1{uid}"), ("payment", 7_000, f"PC2{uid}")]
    last = (await events(db, ids["account"]))[-1]
    assert (last["cause"], last["balance_fen"], last["amount_due_fen"]) == ("payment", 3_000, 0)
    # A re-run of the same file loads nothing and lapses nothing more.
    before = await footprint(db, ids["account"])
    assert run(stack, "import-csv", str(pay)).returncode == 0
    assert await footprint(db, ids["account"]) == before


async def test_a_credit_note_on_a_written_off_month_leaves_no_credit(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, year: int
) -> None:
    """July's 100.00 written off, then credited back by 60.00 (a wrong bill): the write-off
    lapses by 60.00 (it wrote off a debt that was not owed), balance 0, not +60.00; August's
    80.00 is owed in full. A positive adjustment on a written-off account lapses nothing."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{year}-07", 10_000, uid)
    await _write_off(billing, ids, uid, 10_000, f"{year}-08-20T10:00:00+08:00")
    noted = await post(billing, "/v1/adjustments", {
        "adjustment_id": f"AD{uid}", "account_id": ids["account"],
        "product_id": ids["product"], "bill_month": f"{year}-07", "amount_fen": -6_000,
        "reason": "账单有误,部分冲减", "as_of": f"{year}-08-25T10:00:00+08:00"})
    assert (noted["account"]["balance_fen"], noted["account"]["amount_due_fen"]) == (0, 0)
    assert await _lapses(db, ids["account"]) == [("adjustment", 6_000, None)]
    await charge_and_close(billing, ids, f"{year}-08", 8_000, uid)
    view = (await billing.get(f"/v1/accounts/{ids['account']}")).json()
    assert view["dues"] == [{"bill_month": f"{year}-08", "amount_due_fen": 8_000}]


async def test_a_credit_note_after_a_later_bill_lapses_what_it_cancels_of_the_write_off(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, year: int
) -> None:
    """September's 100.00 written off, October's 80.00 billed and owed, then September
    credited back in full (QA pass 29): the whole write-off lapses (what it covered is
    cancelled), so October's 80.00 stays owed, not paid by the write-off."""
    billing = clients["billing-events"]
    ids = await open_account(billing, uid)
    await charge_and_close(billing, ids, f"{year}-09", 10_000, uid)
    await _write_off(billing, ids, uid, 10_000, f"{year}-10-20T10:00:00+08:00")
    await charge_and_close(billing, ids, f"{year}-10", 8_000, uid)
    noted = await post(billing, "/v1/adjustments", {
        "adjustment_id": f"AD{uid}", "account_id": ids["account"],
        "product_id": ids["product"], "bill_month": f"{year}-09", "amount_fen": -10_000,
        "reason": "账单有误,全额冲减", "as_of": f"{year}-11-10T10:00:00+08:00"})
    assert noted["account"]["dues"] == [{"bill_month": f"{year}-10", "amount_due_fen": 8_000}]
    assert await _lapses(db, ids["account"]) == [("adjustment", 10_000, None)]
