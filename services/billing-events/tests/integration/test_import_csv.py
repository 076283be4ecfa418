"""`python -m billing_events import-csv` and `generate` as a person runs them: good rows
load, rejected rows are reported with row number and reason, a re-run loads nothing twice."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]


def run(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    # simulation mode: the suite's bill months are ahead of the clock (conftest.py)
    env = {"BILLING_DATABASE_URL": stack.database_url, "PATH": "/usr/bin:/bin",
           "COLUMNS": "200", "BILLING_SIMULATION_MODE": "true"}
    return subprocess.run([sys.executable, "-m", "billing_events", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def csv_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.csv"))


async def test_generated_base_imports_and_bad_rows_are_reported(
    stack: Stack, db: AsyncEngine, tmp_path: Path, uid: str, test_year: int
) -> None:
    made = run(stack, "generate", "--groups", "30", "--seed", "5", "--out", str(tmp_path),
               "--first-month", f"{test_year + 2}-02", "--months", "2")
    assert made.returncode == 0, made.stderr
    files = csv_files(tmp_path)
    assert [f.name for f in files] == ["1_customers.csv", "2_accounts.csv", "3_products.csv",
                                       "4_charges.csv", "5_payments.csv"]
    # Ids of a fresh run, so the test can be repeated on the same database.
    for f in files:
        f.write_text(f.read_text(encoding="utf-8").replace("syn-", f"s{uid}-")
                     .replace("CPsyn", f"CP{uid}"), encoding="utf-8")
    bad = tmp_path / "6_bad_charges.csv"
    with bad.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([
            ("charge_id", "account_id", "product_id", "bill_month", "amount_fen"),
            (f"ok{uid}", f"s{uid}-a0", f"s{uid}-p0-0", f"{test_year + 2}-02", "100"),
            (f"b1{uid}", f"s{uid}-a0", f"s{uid}-p0-0", f"{test_year + 2}-02", "12.50"),
            (f"b2{uid}", "no-such-account", f"s{uid}-p0-0", f"{test_year + 2}-02", "100"),
            (f"b3{uid}", f"s{uid}-a0", f"s{uid}-p0-0", f"{test_year + 2}-13", "100"),
            (f"b4{uid}", f"s{uid}-a0"),
        ])
    report = tmp_path / "rejected.csv"
    first = run(stack, "import-csv", *map(str, files), str(bad), "--rejected", str(report))
    assert first.returncode == 2, first.stderr  # some rows were rejected
    rejected = list(csv.reader(report.open(encoding="utf-8")))[1:]
    assert [(name, row) for name, row, _ in rejected] == [
        (bad.name, "3"), (bad.name, "4"), (bad.name, "5"), (bad.name, "6")]
    assert "valid integer" in rejected[0][2] and "unknown account" in rejected[1][2]
    assert "bill_month" in rejected[2][2] and "columns" in rejected[3][2]
    lines = {f.name: sum(1 for _ in f.open(encoding="utf-8")) - 1 for f in files}
    async with db.connect() as conn:
        loaded = {t: await conn.scalar(text(
            f"SELECT count(*) FROM billing.{t} WHERE {key} LIKE :p"), {"p": f"s{uid}-%"})
            for t, key in (("customers", "customer_id"), ("accounts", "account_id"),
                           ("products", "product_id"), ("payments", "payment_id"))}
        charges = await conn.scalar(text(
            "SELECT count(*) FROM billing.charges WHERE account_id LIKE :p"), {"p": f"s{uid}-%"})
        events = await conn.scalar(text(
            "SELECT count(*) FROM billing.outbox WHERE key LIKE :p"), {"p": f"s{uid}-%"})
    assert loaded == {"customers": lines["1_customers.csv"], "accounts": 30,
                      "products": lines["3_products.csv"], "payments": lines["5_payments.csv"]}
    assert charges == lines["4_charges.csv"] + 1  # and the one good row of the bad file
    assert events and events > 0  # charges and payments changed balances: events written
    again = run(stack, "import-csv", *map(str, files))
    assert again.returncode == 0, again.stderr
    async with db.connect() as conn:
        assert await conn.scalar(text(
            "SELECT count(*) FROM billing.charges WHERE account_id LIKE :p"),
            {"p": f"s{uid}-%"}) == charges
