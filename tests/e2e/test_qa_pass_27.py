"""QA pass 27: billing money edges (a write-off and a credit note, a dispute's dates, an
account at the contracts' money bound, a bill month past the contracts' ceiling, one id raced
with different bodies), through the running services' HTTP APIs.

Year test_year + 45 is this module's (`quiet_year`): months 01-02 the write-off, 03 the
dispute's bill (open), 05 the amounts at the money bound (open, never billed). It runs no
sweep (a sweep acts on every product as of its moment). (A long-lived local test stack whose
`test_year` has crept towards 2999, the last bill month the events carry, needs a reset:
`STACK=test bash deploy/local/stack.sh reset`; CI starts from a fresh stack, at 2200.)"""

import asyncio
from functools import partial
from typing import Any

import httpx
import pytest

from common.testing.polling import eventually

from .test_product_amounts import add_product, charge, credit_of, ok, open_account

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
async def quiet_year(test_year: int) -> int:
    """This module's year: no other module bills in it."""
    return test_year + 45


async def bill_run(billing: httpx.AsyncClient, run_id: str, month: str, at: str) -> None:
    """The month's bill run; another test's (or session's) run of the same month closed it."""
    r = await billing.post("/v1/bill-runs", json={"bill_run_id": run_id, "bill_month": month,
                                                  "as_of": at})
    assert r.status_code in (201, 409), r.text


async def account(billing: httpx.AsyncClient, account_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await ok(await billing.get(f"/v1/accounts/{account_id}"), 200)
    return found


# --- 1. a written-off debt never becomes the customer's money --------------------------------

async def test_credit_note_on_a_written_off_bill_does_not_pay_the_next_bill(
    clients: dict[str, httpx.AsyncClient], uid: str, quiet_year: int,
) -> None:
    """Billing staff write off a customer's unpaid January (100.00 yuan, 核销: bad debt, no
    money came in). Weeks later the January bill is found wrong and credited back in full
    (调账 −100.00, a credit note). Then February is billed 80.00 and nothing is paid.

    Expected: the customer owes the 80.00 of February (reminded, and suspended if unpaid):
    a write-off is the operator giving up on a debt, not money the customer has; once the
    debt itself is cancelled by the credit note there is nothing left for the write-off to
    cover (docs/billing.md: "write-off: bad debt taken off the dues … at most what is owed
    on closed months"; "over-payment is the account's credit" — an over-payment is money
    paid, a write-off is not). Correct to the cent; never missing one who should be cut off.

    Found: the write-off stays a credit of 100.00 (credits = payments + write-offs, debits =
    charges + adjustments): after the credit note the account has a balance of +100.00 and
    February's 80.00 is "paid" by it: amount due 0, the product owes nothing, no reminder,
    no suspension. Severity: money lost (the 80.00 is never collected) and a debtor slips
    out of credit control; any written-off account given a later credit note gets free
    service up to the written-off amount. Fixed: the write-off lapses by what the credit note
    cancels (docs/billing.md, "Write-offs lapse")."""
    billing = clients["billing-events"]
    y = quiet_year
    group = await open_account(billing, uid, "wo")
    product = await add_product(billing, group, f"P{uid}wo", "集团手机报")
    await charge(billing, group, product, f"{y}-01", 10_000)
    await bill_run(billing, f"BRq27{uid}01", f"{y}-01", f"{y}-02-02T09:00:00+08:00")
    written = await ok(await billing.post("/v1/write-offs", json={
        "write_off_id": f"WOq27{uid}", "account_id": group["account_id"], "amount_fen": 10_000,
        "reason": "坏账核销", "as_of": f"{y}-02-20T10:00:00+08:00"}))
    assert written["account"]["amount_due_fen"] == 0, written
    await ok(await billing.post("/v1/adjustments", json={
        "adjustment_id": f"ADq27{uid}", "account_id": group["account_id"],
        "product_id": product["product_id"], "bill_month": f"{y}-01", "amount_fen": -10_000,
        "reason": "账单有误,全额冲减", "as_of": f"{y}-02-25T10:00:00+08:00"}))
    await charge(billing, group, product, f"{y}-02", 8_000)
    await bill_run(billing, f"BRq27{uid}02", f"{y}-02", f"{y}-03-02T09:00:00+08:00")
    now = await account(billing, group["account_id"])
    assert now["balance_fen"] <= 0, now
    assert now["amount_due_fen"] == 8_000, now


# --- 2. a dispute is resolved after it was opened ----------------------------------------------

async def test_dispute_cannot_be_resolved_before_it_was_opened(
    clients: dict[str, httpx.AsyncClient], role_clients: dict[str, dict[str, httpx.AsyncClient]],
    uid: str, quiet_year: int,
) -> None:
    """Billing staff open a dispute on a product's March charges on 03-10 (as_of), then
    resolve it with an `as_of` of 03-01, nine days before it was opened (a typo).

    Expected: 422 naming `as_of`, nothing written: business times outside sane bounds are
    refused (the product promise), as billing already does for a reversal dated before its
    payment (`reversed_at` … "a cheque bounces after it was paid in, never before") and a
    write-off dated before its debt. A dispute's open period decides which days of late
    fees are never charged (docs/billing.md, "Late fees": "on a disputed bill … while the
    dispute is open"); a negative period is meaningless and makes the audit say it was
    resolved before anyone raised it.

    Found: 200, the dispute stored with resolved_at before opened_at. Severity: staff and
    audit (a wrong record; late fees computed over an impossible window). Fixed: 422 on
    `as_of`, nothing changed."""
    billing = clients["billing-events"]
    staff = role_clients["billing"]["billing-events"]
    y = quiet_year
    group = await open_account(billing, uid, "dp")
    product = await add_product(billing, group, f"P{uid}dp", "集团V网")
    await charge(billing, group, product, f"{y}-03", 5_000)
    opened = await ok(await staff.post("/v1/disputes", json={
        "dispute_id": f"DPq27{uid}", "account_id": group["account_id"],
        "product_id": product["product_id"], "bill_month": f"{y}-03",
        "reason": "客户对三月账单有异议", "as_of": f"{y}-03-10T10:00:00+08:00"}))
    assert opened["resolved_at"] is None, opened
    r = await staff.post(f"/v1/disputes/DPq27{uid}/resolve", json={
        "resolution": "核实无误", "as_of": f"{y}-03-01T10:00:00+08:00"})
    assert r.status_code == 422, r.text
    again = await staff.post(f"/v1/disputes/DPq27{uid}/resolve", json={
        "resolution": "核实无误", "as_of": f"{y}-03-11T10:00:00+08:00"})
    assert again.status_code == 200, again.text  # the first, refused, changed nothing


# --- 3. an account beyond what the events can carry --------------------------------------------

async def test_account_beyond_the_contract_money_bound_is_refused_not_lost(
    clients: dict[str, httpx.AsyncClient], uid: str, quiet_year: int,
) -> None:
    """Billing staff post charges of the largest amount a charge admits (10^13 fen, 100
    billion yuan: docs/billing.md strict integer fen) to one product's open month, 101 of
    them, then add a second product to the account.

    Expected: either the charge that takes the account past what a balance event can carry
    (±10^15 fen, common/contracts/bounds.py FEN_LIMIT, which every consumer enforces) is
    refused with a clear 4xx and changes nothing, or the account's events still reach
    credit-control: in every case the new product is known to credit-control
    (docs/billing.md: "Adding a product publishes a balance event … so no product escapes
    credit-control"). Bad input gets a clear 4xx, never a silent loss downstream.

    Found: every charge is accepted (201); from the 101st on, the account's balance events
    carry `unbilled_fen` above 10^15 (1,010,000,000,000,000), which the `BalanceChanged`
    contract refuses: credit-control never applies them (its inbox has the events up to
    10^15 and none after, while later events of other accounts are applied), and the
    product added next is never known there: the whole account has left credit control (no
    reminder, no suspension, whatever it owes later). Severity: an
    absurd amount, but it silently took an account out of credit control instead of a 422.
    Fixed: billing refuses the write that would take a figure past the bound (422)."""
    billing, credit = clients["billing-events"], clients["credit-control"]
    y = quiet_year
    group = await open_account(billing, uid, "bd")
    product = await add_product(billing, group, f"P{uid}bd", "集团手机报")
    statuses = []
    for n in range(101):
        r = await billing.post("/v1/charges", json={
            "charge_id": f"Cq27{uid}{n:03d}", "account_id": group["account_id"],
            "product_id": product["product_id"], "bill_month": f"{y}-05",
            "amount_fen": 10**13})
        statuses.append(r.status_code)
        assert r.status_code < 500, r.text
    # The 101st takes the account's unbilled total past 10^15: refused, nothing written.
    assert statuses == [201] * 100 + [422], statuses
    sibling = await add_product(billing, group, f"P{uid}bs", "集团V网")
    await eventually(partial(credit_of, credit, sibling["product_id"]),
                     lambda c: c is not None, what="the sibling known to credit-control",
                     timeout=60)


# --- 4. one id raced with different bodies ----------------------------------------------------

async def test_concurrent_payments_with_one_id_and_different_amounts_apply_once(
    clients: dict[str, httpx.AsyncClient], uid: str,
) -> None:
    """A cashier's client retries a payment while staff correct its amount: eight requests
    with the same `payment_id` and eight different amounts arrive at once, then the same
    body eight times at once.

    Pinned (fine): exactly one is applied (201), the seven others are 409 (same id, other
    body) and change nothing; the same body again answers the stored 201 with the same
    body each time; the balance counts the one payment once (docs/billing.md: "same id and
    body → the stored answer again (nothing written); same id, other body → 409")."""
    billing = clients["billing-events"]
    group = await open_account(billing, uid, "ik")

    async def pay(fen: int) -> httpx.Response:
        return await billing.post("/v1/payments", json={
            "payment_id": f"PAYq27{uid}", "account_id": group["account_id"],
            "amount_fen": fen})

    raced = await asyncio.gather(*(pay(100 * (n + 1)) for n in range(8)))
    codes = sorted(r.status_code for r in raced)
    assert codes == [201] + [409] * 7, [(r.status_code, r.text) for r in raced]
    [won] = [r.json() for r in raced if r.status_code == 201]
    again = await asyncio.gather(*(pay(won["amount_fen"]) for _ in range(8)))
    assert {r.status_code for r in again} == {201}, [r.text for r in again]
    assert all(r.json() == won for r in again)
    now = await account(billing, group["account_id"])
    assert now["balance_fen"] == won["amount_fen"], now


# --- 5. a bill month the events cannot carry ---------------------------------------------------

async def test_a_bill_month_the_events_cannot_carry_is_refused_at_the_door(
    clients: dict[str, httpx.AsyncClient], uid: str,
) -> None:
    """Billing staff (in simulation mode, as the suite, demos and training run: business
    times ahead of the clock allowed) post a charge for bill month 3500-01.

    Expected: 422 naming `bill_month`, nothing written: billing's own event contract carries
    bill months 1900-01 to 2999-12 only (common/contracts/bounds.py BILL_MONTH_PATTERN,
    checked when a `BillMonthDue` is built), so a month past it can never be billed; bad
    input gets a clear 4xx and changes nothing, never a 500 later.

    Fixed: billing's bill months end at 2999-12 (422 naming `bill_month`). Found: the charge
    was accepted (201: billing's `BusinessMonth` admits years up to 8999),
    and the month's bill run then fails with 500 Internal Server Error ("ValueError:
    bill_month must be a bill month YYYY-MM (1900-01 to 2999-12), got '3010-01'", raised in
    `balance_payload`), the account's charge stuck unbillable. The pass met it as its first
    bill run: the suite's own `test_year` (one past the newest bill run's year) is 2970 on
    the shared stack, so every e2e module that bills `test_year + 30` or later
    (test_credit_months.py, test_whatif.py, chaos_ha) now gets the 500. The bill run is not
    repeated here: a fix that widened the contract instead would store a bill run in 3500
    and push every later `test_year` there. Severity: staff get a 500 and an unbillable
    charge (simulation mode only: in production a month ahead of the clock is refused); the
    suite breaks for every year past 2999."""
    billing = clients["billing-events"]
    group = await open_account(billing, uid, "bm")
    product = await add_product(billing, group, f"P{uid}bm", "集团手机报")
    r = await billing.post("/v1/charges", json={
        "charge_id": f"Cq27{uid}bm", "account_id": group["account_id"],
        "product_id": product["product_id"], "bill_month": "3500-01", "amount_fen": 1_000})
    assert r.status_code == 422, r.text
    assert "bill_month" in r.text, r.text
