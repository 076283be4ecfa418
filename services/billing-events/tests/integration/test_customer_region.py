"""A group customer's region (区县分公司, the county branch it belongs to; issue 19): optional
master data, validated like a channel, shown on the customer, carried in every balance
event's customer snapshot, and a real change of it published as cause=master_data. CSV files
may carry it as the customers' last column, or leave the column out as before."""

import csv
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.stack import Stack

from .helpers import events, post
from .test_import_csv import run

pytestmark = [pytest.mark.integration]


def _customer(uid: str, **extra: object) -> dict[str, object]:
    return {"name": f"南城物流{uid}", "tier": "mid",
            "account_manager": {"name": "周经理", "phone": "13900000003"},
            "contacts": [{"name": "联系人", "phone": "13800000003"}]} | extra


async def test_a_customers_region_is_master_data_in_its_events(
    clients: dict[str, httpx.AsyncClient], db: AsyncEngine, uid: str
) -> None:
    billing = clients["billing-events"]
    gid, aid = f"GR{uid}", f"AR{uid}"
    made = await post(billing, "/v1/customers",
                      {"customer_id": gid, **_customer(uid, region="南城")})
    assert made["region"] == "南城"
    assert (await billing.get(f"/v1/customers/{gid}")).json()["region"] == "南城"
    await post(billing, "/v1/accounts", {"account_id": aid, "customer_id": gid})
    await post(billing, "/v1/products", {"product_id": f"PR{uid}", "account_id": aid,
                                         "cpno": f"CPR{uid}", "name": "企信通",
                                         "family": "ADC"})
    # A move to another county branch is published; the same body again is not.
    moved = await billing.put(f"/v1/customers/{gid}", json=_customer(uid, region="虎门"))
    assert moved.status_code == 200 and moved.json()["changed"] is True
    same = await billing.put(f"/v1/customers/{gid}", json=_customer(uid, region="虎门"))
    assert same.json()["changed"] is False
    # Left out: the customer has no region any more (PUT replaces the master data whole).
    cleared = await billing.put(f"/v1/customers/{gid}", json=_customer(uid))
    assert cleared.json()["changed"] is True and cleared.json()["region"] is None
    published = await events(db, aid)
    assert [(e["cause"], e["customer"].get("region")) for e in published] == [
        ("master_data", "南城"), ("master_data", "虎门"), ("master_data", None)]


@pytest.mark.parametrize("region", ["", "x" * 33, "南城\n", "南\x00城", 7])
async def test_a_bad_region_is_refused_and_nothing_is_stored(
    clients: dict[str, httpx.AsyncClient], uid: str, region: object
) -> None:
    billing = clients["billing-events"]
    r = await billing.post("/v1/customers",
                           json={"customer_id": f"GX{uid}", **_customer(uid, region=region)})
    assert r.status_code == 422, r.text
    assert "region" in r.text
    assert (await billing.get(f"/v1/customers/GX{uid}")).status_code == 404


async def test_a_customers_csv_with_or_without_the_region_column_loads(
    stack: Stack, db: AsyncEngine, tmp_path: Path, uid: str
) -> None:
    header = ["customer_id", "name", "tier", "star_level", "manager_name", "manager_phone",
              "contacts"]
    row = ["", "东城电子", "low", "", "周经理", "13900000003", "会计:13800000003"]
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    with old.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, [f"GO{uid}", *row[1:]]])
    with new.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([
            [*header, "region"], [f"GN{uid}", *row[1:], "东城"], [f"GE{uid}", *row[1:], ""],
            [f"GB{uid}", *row[1:], "x" * 33]])
    report = tmp_path / "rejected.csv"
    done = run(stack, "import-csv", str(old), str(new), "--rejected", str(report))
    assert done.returncode == 2, done.stderr  # the over-long region was refused
    rejected = list(csv.reader(report.open(encoding="utf-8")))[1:]
    assert [(name, number) for name, number, _ in rejected] == [(new.name, "4")]
    assert "region" in rejected[0][2]
    async with db.connect() as conn:
        regions = dict((await conn.execute(text(
            "SELECT customer_id, region FROM billing.customers WHERE customer_id = ANY(:ids)"),
            {"ids": [f"GO{uid}", f"GN{uid}", f"GE{uid}", f"GB{uid}"]})).all())
    assert regions == {f"GO{uid}": None, f"GN{uid}": "东城", f"GE{uid}": None}
