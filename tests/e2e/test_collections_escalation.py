"""Collections escalation end to end (docs/collections.md "Escalation"), through the four
running services' HTTP APIs only: one account in arrears past suspension goes through the
three phases of seed 002 (10 days each); in phase 2 a credit-admin approves associated
suspension (关联停机) and the customer's other product, in another account that owes nothing,
is suspended through the same chain as any suspension; phase 3 disconnects (pre-cancels) the
account's product and refers it for legal collection; the payment that clears the arrears
restores both products with the seed's restore notice and closes the case.

Year test_year + 16 (months 03-05) is this module's."""

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses

from .test_product_amounts import (
    add_product,
    charge,
    credit_of,
    delivered,
    notice_a,
    ok,
    open_account,
    sweep,
    texts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def restore_notice(p: dict[str, str]) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品{p['name']}(产品编号:{p['cpno']})已可正常使用,"
            "如有疑问可咨询您的客户经理或10086,谢谢!")


def notice_b(group: dict[str, str], p: dict[str, str], yuan: str) -> str:
    return (f"王经理,您好!您看管集团{group['name']}的集团产品{p['name']}(产品编号:{p['cpno']})"
            f"尚有{yuan}元欠费,现已被停用该集团产品服务,请及时通知该集团产品联系人缴清欠费。")


async def state_of(credit: httpx.AsyncClient, product_id: str) -> str | None:
    found = await credit_of(credit, product_id)
    return found["state"] if found else None


async def run(credit: httpx.AsyncClient, as_of: str, *accounts: str) -> dict[str, Any]:
    """The run for this test's accounts only: the suite's other suspended accounts are
    never escalated by it (a disconnection would be a decision their tests do not expect)."""
    return await ok(await credit.post("/v1/collections/run", json={
        "as_of": as_of, "account_ids": list(accounts)}), 200)


async def the_case(credit: httpx.AsyncClient, account_id: str) -> dict[str, Any]:
    found = await ok(await credit.get("/v1/collections/cases",
                                      params={"account_id": account_id}), 200)
    assert len(found) == 1, found
    return await ok(await credit.get(f"/v1/collections/cases/{found[0]['case_id']}"), 200)


def creditctl(services: ServiceProcesses, *args: str) -> subprocess.CompletedProcess[str]:
    """creditctl as staff run it: a process, the URLs from CREDITCTL_* variables."""
    env = {**os.environ, "COLUMNS": "300", "CREDITCTL_TOKEN": "admin-token",
           "CREDITCTL_CREDIT_URL": services.specs["credit-control"].url}
    return subprocess.run([sys.executable, "-m", "creditctl", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


async def test_one_account_through_the_three_phases_with_associated_suspension_and_restore(
    clients: dict[str, httpx.AsyncClient], services: ServiceProcesses,
    role_clients: dict[str, dict[str, httpx.AsyncClient]], uid: str, test_year: int,
) -> None:
    billing, credit = clients["billing-events"], clients["credit-control"]
    notifier = clients["notifier"]
    admin = role_clients["credit-admin"]["credit-control"]
    operator = role_clients["operator"]["credit-control"]
    y = test_year + 16
    group = await open_account(billing, uid, "ce")
    owing = await add_product(billing, group, f"P{uid}-own", "集团手机报")
    # The customer's second account, with a product that owes nothing.
    other = {**group, "account_id": f"A2ce{uid}"}
    await ok(await billing.post("/v1/accounts", json={
        "account_id": other["account_id"], "customer_id": group["customer_id"]}))
    clean = await add_product(billing, other, f"P{uid}-clean", "企信通")
    mine = (group["account_id"], other["account_id"])
    await charge(billing, group, owing, f"{y}-03", 45_600)
    await ok(await billing.post("/v1/bill-runs", json={
        "bill_run_id": f"BR{uid}03", "bill_month": f"{y}-03",
        "as_of": f"{y}-04-02T09:00:00+08:00"}))
    await eventually(lambda: credit_of(credit, clean["product_id"]), lambda c: c is not None,
                     what="the clean product is known", timeout=120)
    # A sibling in the owing account, added after the bill: nothing of the debt is its own.
    sibling = await add_product(billing, group, f"P{uid}-sib", "集团V网")
    await eventually(lambda: credit_of(credit, sibling["product_id"]),
                     lambda c: c is not None and c["facts"]["product_amount_due_fen"] == 0,
                     what="the sibling is known", timeout=120)
    await eventually(lambda: credit_of(credit, owing["product_id"]),
                     lambda c: c is not None and c["facts"]["amount_due_fen"] == 45_600,
                     what="the bill run reached credit-control", timeout=120)
    for day in ("10", "25"):
        await sweep(credit, f"S{uid}{day}", f"{y}-04-{day}T20:00:00+08:00")
    await delivered(credit, owing)
    await sweep(credit, f"S{uid}30", f"{y}-04-30T20:00:00+08:00")
    await eventually(lambda: state_of(credit, owing["product_id"]),
                     lambda s: s == "suspended", what="suspended at month end", timeout=120)

    # Phase 1: the case opens the day after (the daily run), in phase 1.
    opened = await run(credit, f"{y}-05-01T20:00:00+08:00", *mine)
    case = await the_case(credit, group["account_id"])
    assert case["case_id"] in opened["opened"]
    assert (case["status"], case["phase"], case["opened_on"]) == ("open", 1, f"{y}-05-01")
    assert case["arrears_fen"] == 45_600
    assert [s["step"] for s in case["steps"]] == ["open"]
    case_id = case["case_id"]
    for bad in ({"as_of": "yesterday"}, {"as_of": f"{y}-05-01T20:00:00+08:00",
                                          "account_ids": []}, {}):
        r = await credit.post("/v1/collections/run", json=bad)
        assert r.status_code == 422, r.text
    r = await credit.get("/v1/collections/cases/CC-nope")
    assert r.status_code == 404, r.text
    # Re-running the same moment changes nothing.
    again = await run(credit, f"{y}-05-01T20:00:00+08:00", *mine)
    assert case_id not in again["opened"] and case_id not in again["advanced"]

    # Associated suspension is a phase-2 measure, and a credit-admin's: refused, nothing done.
    r = await admin.post(f"/v1/collections/cases/{case_id}/associated-suspension",
                         json={"note": "too early", "as_of": f"{y}-05-02T10:00:00+08:00"})
    assert r.status_code == 422, r.text
    r = await operator.post(f"/v1/collections/cases/{case_id}/associated-suspension",
                            json={"note": "not mine to approve"})
    assert r.status_code == 403, r.text
    assert await state_of(credit, clean["product_id"]) == "normal"

    # Phase 2 begins on day 11.
    mid = await run(credit, f"{y}-05-10T20:00:00+08:00", *mine)
    assert case_id not in mid["advanced"]
    moved = await run(credit, f"{y}-05-11T20:00:00+08:00", *mine)
    assert moved["advanced"][case_id] == [2]
    approved = await ok(await admin.post(
        f"/v1/collections/cases/{case_id}/associated-suspension",
        json={"note": "拒不缴费,关联停机", "as_of": f"{y}-05-12T10:00:00+08:00"}), 200)
    assert approved["association_approved_by"] == "zhang.wei"
    assert [(a["product_id"], a["status"]) for a in approved["associations"]] == [
        (clean["product_id"], "suspended"), (sibling["product_id"], "suspended")]
    # Through the same decision path as any suspension: ADC flips at once.
    for p in (clean, sibling):
        got = await eventually(lambda p=p: credit_of(credit, p["product_id"]),
                               lambda c: c is not None and c["state"] == "suspended",
                               what="suspended by association", timeout=120)
        [suspension] = [d for d in got["decisions"] if d["decision"] == "suspend"]
        assert suspension["rule_id"] == "collections-associated-suspension"
        assert suspension["inputs"]["cause"] == "collections case", suspension["inputs"]
        assert case_id in suspension["reason"] and "zhang.wei" in suspension["reason"]
    # A second approval is a conflict.
    r = await admin.post(f"/v1/collections/cases/{case_id}/associated-suspension",
                         json={"note": "again"})
    assert r.status_code == 409, r.text

    # Phase 3 on day 21: disconnection (pre-cancellation) and legal referral.
    late = await run(credit, f"{y}-05-21T20:00:00+08:00", *mine)
    assert late["advanced"][case_id] == [3]
    await eventually(lambda: state_of(credit, owing["product_id"]),
                     lambda s: s == "pre_cancel", what="disconnected", timeout=120)
    case = await the_case(credit, group["account_id"])
    assert case["legal_referred_on"] == f"{y}-05-21"
    assert [s["step"] for s in case["steps"]] == [
        "open", "phase", "approve_association", "associated_suspension",
        "association_skipped", "associated_suspension", "phase", "disconnection",
        "legal_referral"]
    skipped = case["steps"][4]
    assert skipped["product_id"] == owing["product_id"]
    assert skipped["reason"] == ("not suspended by association: the product is in arrears "
                                 "itself (its own ladder decides)")
    assert all(s["reason"] for s in case["steps"])
    for p in (clean, sibling):  # suspended by association: never disconnected
        assert await state_of(credit, p["product_id"]) == "suspended"
    assert [s["product_id"] for s in case["steps"] if s["step"] == "disconnection"] == [
        owing["product_id"]]

    clean_texts = await eventually(
        lambda: texts(notifier, clean["product_id"]),
        lambda t: {"suspension_notice_contact", "suspension_notice_manager"} <= set(t),
        what="the associated suspension's notices", timeout=120)
    assert clean_texts["suspension_notice_contact"] == [
        notice_a(clean, "456.00", f"{y}年05月12日")]
    assert clean_texts["suspension_notice_manager"] == [notice_b(group, clean, "456.00")]
    sibling_texts = await eventually(
        lambda: texts(notifier, sibling["product_id"]),
        lambda t: {"suspension_notice_contact", "suspension_notice_manager"} <= set(t),
        what="the sibling's notices", timeout=120)
    assert sibling_texts["suspension_notice_contact"] == [
        notice_a(sibling, "456.00", f"{y}年05月12日")]

    # The payment that clears the arrears restores both products and closes the case.
    await ok(await billing.post("/v1/payments", json={
        "payment_id": f"PAY{uid}", "account_id": group["account_id"], "amount_fen": 45_600,
        "paid_at": f"{y}-05-25T10:00:00+08:00"}))
    for p in (owing, clean, sibling):
        await eventually(lambda p=p: state_of(credit, p["product_id"]),
                         lambda s: s == "normal", what=f"{p['product_id']} restored",
                         timeout=120)
    case = await the_case(credit, group["account_id"])
    assert case["status"] == "paid" and case["closed_reason"] == "arrears cleared (payment)"
    assert [a["status"] for a in case["associations"]] == ["restored", "restored"]
    assert [s["step"] for s in case["steps"][-3:]] == [
        "associated_restore", "associated_restore", "close"]
    # Both restored by the case, not by their accounts' events (the sibling's own account
    # paid: without the hold, rule 2 would have restored it on that payment).
    for p in (clean, sibling):
        restored = await credit_of(credit, p["product_id"])
        assert restored is not None
        assert [d["rule_id"] for d in restored["decisions"] if d["decision"] == "restore"] == [
            "collections-associated-restore"]
    for p in (owing, clean, sibling):
        got_texts = await eventually(lambda p=p: texts(notifier, p["product_id"]),
                                     lambda t: "restore_notice" in t,
                                     what=f"{p['product_id']}'s restore notice", timeout=120)
        assert got_texts["restore_notice"] == [restore_notice(p)]
    # Once paid, a later run reopens nothing and restores nothing twice.
    after = await run(credit, f"{y}-05-26T20:00:00+08:00", *mine)
    assert (after["opened"], after["settled"], after["advanced"]) == ([], [], {})
    assert (await the_case(credit, group["account_id"]))["status"] == "paid"

    # The same case from a terminal; bad input is an error line and a non-zero exit.
    shown = creditctl(services, "collections", "show", case_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "paid"
    listed = creditctl(services, "collections", "cases", "--account-id", group["account_id"],
                       "-o", "json")
    assert listed.returncode == 0 and [c["case_id"] for c in json.loads(listed.stdout)] == [
        case_id]
    refused = creditctl(services, "collections", "associate", "CC-nope", "--note", "x")
    assert refused.returncode != 0 and "CC-nope" in refused.stderr
