"""One rule between a bill month's charges and its bill run (domain/bill_month.py) for every
way a charge comes in: a charge posted without `as_of` and every CSV row keep the moment they
were recorded (`charges.charged_at`), so a bill run dated before them is refused as one dated
before a charge with `as_of` is (test_money.py); a CSV row into a closed month is reported
with the rule's reason, and an import waits for a bill run of its months under way instead of
slipping a charge under it.

Billing's use cases are called in process with a clock of the test's (the running services
keep the wall clock, years before the suite's bill months). Months of `test_year + 2` used
here only: 07 a charge without `as_of`, 08 a CSV import, 10 an import racing a bill run,
11 a CSV row into a closed month."""

import asyncio
import csv
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_events.adapters import repository as repo
from billing_events.adapters import tables as t
from billing_events.domain import commands as c
from billing_events.service_layer import handlers as h
from billing_events.service_layer.bulk import HEADERS, import_file
from billing_events.service_layer.context import BillingContext
from common.clock import BUSINESS_TZ, FixedClock, parse_bill_month
from common.errors import Unprocessable
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox

from .helpers import footprint, open_account, post

pytestmark = pytest.mark.integration


def at(y: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(y, month, day, hour, 30, tzinfo=BUSINESS_TZ)


def context(db: AsyncEngine, now: datetime) -> BillingContext:
    return BillingContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys),
                          FixedClock(now))


async def account(ctx: BillingContext, x: str) -> tuple[str, str]:
    await h.create_customer(ctx, c.CreateCustomer.model_validate({
        "customer_id": f"{x}G", "name": "账期集团", "tier": "mid",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "会计", "phone": "13800000003"}]}))
    await h.open_account(ctx, c.OpenAccount(account_id=f"{x}A", customer_id=f"{x}G"))
    await h.add_product(ctx, c.AddProduct.model_validate({
        "product_id": f"{x}P", "account_id": f"{x}A", "cpno": f"CP{x}", "name": "企信通",
        "family": "ADC"}))
    return f"{x}A", f"{x}P"


def charges_file(folder: Path, rows: list[tuple[str, str, str, str, int]]) -> Path:
    path = folder / "charges.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS["charges"])
        writer.writerows(rows)
    return path


async def charged_at(db: AsyncEngine, charge_id: str) -> datetime | None:
    async with db.connect() as conn:
        found: datetime | None = await conn.scalar(text(
            "SELECT charged_at FROM billing.charges WHERE charge_id = :c"), {"c": charge_id})
    return found


async def bill_run_written(db: AsyncEngine, bill_run_id: str) -> bool:
    async with db.connect() as conn:
        return bool(await conn.scalar(text(
            "SELECT count(*) FROM billing.bill_runs WHERE bill_run_id = :r"),
            {"r": bill_run_id}))


async def test_a_charge_posted_without_as_of_keeps_the_moment_it_was_recorded(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Through the running service: its moment is its balance event's `as_of` (now)."""
    billing = clients["billing-events"]
    ids = await open_account(billing, f"nm{uid}")
    await post(billing, "/v1/charges", {
        "charge_id": f"CNM{uid}", "account_id": ids["account"], "product_id": ids["product"],
        "bill_month": f"{test_year + 2}-07", "amount_fen": 1_200})
    kept = await charged_at(db, f"CNM{uid}")
    assert kept is not None
    async with db.connect() as conn:
        payload = await conn.scalar(text(
            "SELECT payload FROM billing.outbox WHERE key = :a ORDER BY id DESC LIMIT 1"),
            {"a": ids["account"]})
    event_as_of = datetime.fromisoformat(
        orjson.loads(payload)["payload"]["as_of"].replace("Z", "+00:00"))
    assert kept == event_as_of


async def test_a_bill_run_dated_before_a_charge_without_as_of_is_refused(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """July's charge posted on 3 August with no `as_of`: a bill run of July dated 2 August
    would close the month before it came in. Refused naming it; nothing written."""
    y, x = test_year + 2, f"bm{uid}"
    ctx = context(db, at(y, 8, 3))
    account_id, product_id = await account(ctx, x)
    await h.post_charge(ctx, c.PostCharge(charge_id=f"{x}C", account_id=account_id,
                                          product_id=product_id, bill_month=f"{y}-07",
                                          amount_fen=7_700))
    assert await charged_at(db, f"{x}C") == at(y, 8, 3)
    untouched = await footprint(db, account_id)
    run = c.RunBill(bill_run_id=f"{x}BR", bill_month=f"{y}-07", as_of=at(y, 8, 2))
    with pytest.raises(Unprocessable) as refused:
        await h.run_bill(ctx, run)
    assert refused.value.details["field"] == "as_of"
    assert refused.value.details["charge_id"] == f"{x}C"
    assert datetime.fromisoformat(refused.value.details["charged_at"]) == at(y, 8, 3)
    assert "before charge" in str(refused.value)
    assert await footprint(db, account_id) == untouched
    assert not await bill_run_written(db, f"{x}BR")
    # Dated at or after the charge it runs (the default: now).
    done = await h.run_bill(ctx, run.model_copy(update={"as_of": None}))
    assert done.body["accounts_billed"] >= 1


async def test_csv_rows_keep_the_imports_moment_and_a_bill_run_before_it_is_refused(
    db: AsyncEngine, uid: str, test_year: int, tmp_path: Path,
) -> None:
    y, x = test_year + 2, f"bc{uid}"
    ctx = context(db, at(y, 9, 5))
    account_id, product_id = await account(ctx, x)
    path = charges_file(tmp_path, [(f"{x}C1", account_id, product_id, f"{y}-08", 3_000),
                                   (f"{x}C2", account_id, product_id, f"{y}-08", 4_500)])
    report = await import_file(ctx, path)
    assert (report.loaded, report.rejected) == (2, [])
    assert await charged_at(db, f"{x}C1") == await charged_at(db, f"{x}C2") == at(y, 9, 5)
    untouched = await footprint(db, account_id)
    run = c.RunBill(bill_run_id=f"{x}BR", bill_month=f"{y}-08", as_of=at(y, 9, 2))
    with pytest.raises(Unprocessable) as refused:
        await h.run_bill(ctx, run)
    assert refused.value.details["charge_id"] in (f"{x}C1", f"{x}C2")
    assert datetime.fromisoformat(refused.value.details["charged_at"]) == at(y, 9, 5)
    assert await footprint(db, account_id) == untouched
    assert not await bill_run_written(db, f"{x}BR")
    await h.run_bill(ctx, run.model_copy(update={"as_of": at(y, 9, 5, 10)}))


async def test_a_csv_row_into_a_closed_month_is_reported_with_the_rules_reason(
    db: AsyncEngine, uid: str, test_year: int, tmp_path: Path,
) -> None:
    y, x = test_year + 2, f"bk{uid}"
    ctx = context(db, at(y, 12, 2))
    account_id, product_id = await account(ctx, x)
    await h.post_charge(ctx, c.PostCharge(charge_id=f"{x}C0", account_id=account_id,
                                          product_id=product_id, bill_month=f"{y}-11",
                                          amount_fen=1_000))
    await h.run_bill(ctx, c.RunBill(bill_run_id=f"{x}BR", bill_month=f"{y}-11"))
    path = charges_file(tmp_path, [(f"{x}C1", account_id, product_id, f"{y}-11", 3_000),
                                   (f"{x}C2", account_id, product_id, f"{y + 1}-01", 500)])
    report = await import_file(ctx, path)
    assert report.loaded == 1  # the open month's row still loads
    assert report.rejected == [(2, f"bill month {y}-11 is closed by its bill run; correct a "
                                   "closed month with an adjustment")]
    assert await charged_at(db, f"{x}C1") is None and await charged_at(db, f"{x}C2")


async def test_an_import_waits_for_a_bill_run_of_its_month_under_way(
    db: AsyncEngine, uid: str, test_year: int, tmp_path: Path,
) -> None:
    """A bill run of October holds its month (as POST /v1/bill-runs does) while the import
    comes in: the import waits, then finds the month closed and reports its row; before, it
    read "open", wrote the charge under the run, and the run closed the month without it."""
    y, x = test_year + 2, f"br{uid}"
    ctx = context(db, at(y, 11, 3))
    account_id, product_id = await account(ctx, x)
    path = charges_file(tmp_path, [(f"{x}C1", account_id, product_id, f"{y}-10", 3_000)])
    month = parse_bill_month(f"{y}-10")
    async with db.connect() as conn:
        tx = await conn.begin()
        await repo.lock_bill_month(conn, month, shared=False)
        importing = asyncio.create_task(import_file(ctx, path))
        await asyncio.sleep(1.0)
        assert not importing.done()  # waiting for the bill run
        await conn.execute(insert(t.bill_runs).values(
            bill_run_id=f"{x}BR", bill_month=month, as_of=at(y, 11, 2), accounts_billed=0))
        await tx.commit()
    report = await asyncio.wait_for(importing, 30)
    assert report.loaded == 0
    assert [n for n, _ in report.rejected] == [2]
    assert "closed by its bill run" in report.rejected[0][1]
    assert await charged_at(db, f"{x}C1") is None
