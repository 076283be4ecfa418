"""creditctl as a person runs it (a process, URLs and token from CREDITCTL_* variables)
against the four running services: import a CSV, sweep, read the timeline and the chain,
print the arrears report and check it against billing's receivables to the fen."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# Bill months: test_year and the next two are taken by other tests (see their modules).
YEAR_OFFSET = 3


def creditctl(services: ServiceProcesses, *args: str,
              token: str = "test-token") -> subprocess.CompletedProcess[str]:
    urls = {name: spec.url for name, spec in services.specs.items()}
    # import-csv runs billing's loader: the suite's months are ahead of the clock.
    env = {**os.environ, "COLUMNS": "300", "CREDITCTL_TOKEN": token,
           "BILLING_SIMULATION_MODE": "true",
           "CREDITCTL_BILLING_URL": urls["billing-events"],
           "CREDITCTL_CREDIT_URL": urls["credit-control"],
           "CREDITCTL_NOTIFIER_URL": urls["notifier"],
           "CREDITCTL_GATEWAY_URL": urls["gateway-adapter"]}
    return subprocess.run([sys.executable, "-m", "creditctl", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def write_csv(path: Path, header: tuple[str, ...], *rows: tuple[str, ...]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def small_base(folder: Path, uid: str, bill_month: str) -> list[Path]:
    """One group, one MAS product owing 123.45 yuan for the bill month."""
    return [
        write_csv(folder / "1_customers.csv",
                  ("customer_id", "name", "tier", "star_level", "manager_name", "manager_phone",
                   "contacts"),
                  (f"G{uid}", f"命令行科技{uid}", "low", "", "王经理", "13900139000",
                   "李联系人:13800138000")),
        write_csv(folder / "2_accounts.csv", ("account_id", "customer_id"), (f"A{uid}", f"G{uid}")),
        write_csv(folder / "3_products.csv",
                  ("product_id", "account_id", "cpno", "name", "family", "vendor", "channel"),
                  (f"P{uid}", f"A{uid}", f"CP{uid}", "华为CRM-MAS", "MAS", "huawei", "")),
        write_csv(folder / "4_charges.csv",
                  ("charge_id", "account_id", "product_id", "bill_month", "amount_fen"),
                  (f"C{uid}", f"A{uid}", f"P{uid}", bill_month, "12345")),
    ]


async def credit_view(credit: httpx.AsyncClient, product_id: str) -> dict[str, Any] | None:
    r = await credit.get(f"/v1/products/{product_id}/credit")
    return r.json() if r.status_code == 200 else None


async def test_import_sweep_timeline_chain_and_arrears_report(
    services: ServiceProcesses, clients: dict[str, httpx.AsyncClient], stack: Stack,
    tmp_path: Path, uid: str, test_year: int,
) -> None:
    y = test_year + YEAR_OFFSET
    billing, credit = clients["billing-events"], clients["credit-control"]
    product = f"P{uid}"

    imported = creditctl(services, "import-csv", *map(str, small_base(tmp_path, uid, f"{y}-10")),
                         "--database-url", stack.database_url)
    ok(imported)
    assert (await billing.get(f"/v1/accounts/A{uid}")).status_code == 200
    bill_run = await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BRcli{uid}", "bill_month": f"{y}-10",
        "as_of": f"{y}-11-02T09:00:00+08:00"})
    assert bill_run.status_code == 201, bill_run.text
    await eventually(lambda: credit_view(credit, product),
                     lambda v: v is not None and v["facts"]["amount_due_fen"] == 12345,
                     what="credit-control saw the bill run")

    ok(creditctl(services, "sweep", "--as-of", f"{y}-11-25T20:00:00"))  # notice before suspension
    await eventually(lambda: credit_view(credit, product),  # the warning reached the contact
                     lambda v: v is not None and v["ladder"]["notice"]["status"] == "delivered",
                     what="the suspension warning delivered", timeout=120)
    # The preview names the suspension and its amount, and decides nothing.
    previewed = ok(creditctl(services, "sweep", "--as-of", f"{y}-11-30T20:00:00", "--preview",
                             "--account", f"A{uid}"))
    assert "suspend" in previewed and product in previewed and "123.45" in previewed
    assert (await credit_view(credit, product) or {}).get("state") == "suspension_warned"
    # With --sms, the SMS the suspension would send, the product's own amount in it.
    with_sms = json.loads(ok(creditctl(services, "sweep", "--as-of", f"{y}-11-30T20:00:00",
                                       "--preview", "--account", f"A{uid}", "--sms",
                                       "-o", "json")))
    texts = [m["text"] for i in with_sms["items"] for m in i["sms"]]
    assert texts and all("123.45" in t for t in texts), with_sms
    assert "SMS they would send" in ok(creditctl(
        services, "sweep", "--as-of", f"{y}-11-30T20:00:00", "--preview", "--account",
        f"A{uid}", "--sms"))
    # Approved by the fingerprint the preview showed (JSON), refused for one it did not.
    shown = json.loads(ok(creditctl(services, "sweep", "--as-of", f"{y}-11-30T20:00:00",
                                    "--preview", "-o", "json")))
    approved = ok(creditctl(services, "sweep", "approve", "--as-of", f"{y}-11-30T20:00:00",
                            "--fingerprint", shown["fingerprint"], "--note", "looked"))
    assert "PA-" in approved
    stale = creditctl(services, "sweep", "approve", "--as-of", f"{y}-11-30T20:00:00",
                      "--fingerprint", "0" * 64)
    assert stale.returncode != 0 and "look at the preview again" in stale.stderr + stale.stdout
    swept = ok(creditctl(services, "sweep", "--as-of", f"{y}-11-30T20:00:00"))
    assert "suspend" in swept and f"{y}-11-30" in swept
    view = await eventually(lambda: credit_view(credit, product),
                            lambda v: v is not None and v["state"] == "suspended",
                            what="suspended through the chain")

    # The suspension notices the notifier sent on the confirmed suspension: the previewed ones.
    previewed_notices = {(m["template"], m["recipient"], m["text"])
                         for i in with_sms["items"] for m in i["sms"] if m["on"] == "suspended"}
    assert previewed_notices, with_sms

    async def notices_sent() -> set[tuple[str, str, str]]:
        r = await clients["notifier"].get("/v1/messages", params={"product_id": product})
        return {(m["template"], m["recipient"], m["text"]) for m in r.json()
                if m["template"].startswith("suspension_notice")}

    await eventually(notices_sent, lambda sent: sent == previewed_notices,
                     what="the previewed suspension notices sent", timeout=60)

    timeline = ok(creditctl(services, "timeline", product))
    assert view is not None
    suspend = next(d for d in view["decisions"] if d["decision"] == "suspend")
    suspend_line = next(line for line in timeline.splitlines()
                        if suspend["rule_id"] in line)
    assert "suspend" in suspend_line and "123.45" in suspend_line
    assert "suspend_requested → suspended" in timeline
    assert f"{y}-11-30 20:00" in suspend_line  # the sweep's moment, in Shanghai time

    chain = ok(creditctl(services, "chain", product))
    gateway_line = next(line for line in chain.splitlines() if "gateway" in line)
    assert "blocked" in gateway_line

    # --output json: the service's answer as it came; table: 北京时间, yuan, no reprs.
    as_json = json.loads(ok(creditctl(services, "timeline", product, "--output", "json")))
    assert as_json["state"] == "suspended" and as_json["product_id"] == product
    assert f"{y}-11-30 20:00:00 北京时间" in suspend_line
    told = json.loads(ok(creditctl(services, "messages", product, "--output", "json")))
    assert told and all(m["product_id"] == product for m in told)  # the notifier's log
    assert "suspension_warning" in ok(creditctl(services, "messages", product))
    kpis = ok(creditctl(services, "report", "kpis", "--month", f"{y}-10"))
    assert "verdict" in kpis and "arrears_rate" in kpis and "{" not in kpis
    # Measured after the bill run: by default a month is measured today at the latest, and
    # the suite's bill months lie ahead of the clock (a month billed after the day measured
    # has no receivables on it, QA pass 29).
    arrears = ok(creditctl(services, "report", "arrears", "--month", f"{y}-10",
                           "--as-of", f"{y}-12-31", "--by", "family"))
    assert "MAS" in arrears and "arrears (元)" in arrears
    assert "{" not in arrears and "'" not in arrears  # no Python dict reprs
    orders = json.loads(ok(creditctl(services, "work-orders", "--output", "json")))
    assert all(w["status"] not in ("done", "cancelled") for w in orders)

    await assert_report_matches_receivables(services, billing, f"{y}-10", None)
    await assert_report_matches_receivables(services, billing, f"{y}-10", "family")


async def assert_report_matches_receivables(
    services: ServiceProcesses, billing: httpx.AsyncClient, month: str, by: str | None,
) -> None:
    args = ["report", "arrears", "--month", month, "--source", "billing", "--csv"]
    printed = list(csv.DictReader(io.StringIO(ok(creditctl(
        services, *args, *(["--by", by] if by else []))))))
    params = {"bill_month": month, **({"by": by} if by else {})}
    body = (await billing.get("/v1/receivables", params=params)).json()
    expected = [(g["key"], g["receivables_fen"], g["arrears_fen"]) for g in body["groups"]] \
        if by else [(m["bill_month"], m["receivables_fen"], m["arrears_fen"])
                    for m in body["months"]]
    expected.append(("total", body["total"]["receivables_fen"], body["total"]["arrears_fen"]))
    key = by or "bill_month"
    assert [(r[key], int(r["receivables_fen"]), int(r["arrears_fen"])) for r in printed] \
        == expected
    assert body["total"]["arrears_fen"] >= 12345  # this test's own product is in arrears


async def test_errors_are_clear_and_exit_non_zero(services: ServiceProcesses) -> None:
    unknown = creditctl(services, "timeline", "no-such-product")
    assert unknown.returncode == 1
    assert "404" in unknown.stderr and "no-such-product" in unknown.stderr

    refused = creditctl(services, "work-orders", token="not-a-token")
    assert refused.returncode == 4 and "401" in refused.stderr

    bad = creditctl(services, "report", "arrears", "--month", "2011-13", "--source", "billing")
    assert bad.returncode == 1 and "422" in bad.stderr

    down = creditctl(services, "--gateway-url", "http://127.0.0.1:9", "chain", "x")
    assert down.returncode == 3 and "not reachable" in down.stderr
