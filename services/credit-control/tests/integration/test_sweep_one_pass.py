"""The one-pass sweep (issue 17): every rule row due that day is evaluated against a product
at once, and what it decides must be what the rows run one after the other decided: the most
severe first, each seeing the state the ones before it left.

ADC mid tier, March owing (arrears month 2 is May: warning 2 from the 10th, deduction from the
15th, suspension warning from the 25th naming the 31st, suspension on the 31st), with a
deposit to deduct from. Each case skips some days so that several rows are due on one day."""

import hashlib
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from common.contracts.billing import BalanceCause
from common.contracts.snapshots import ProductFamily, Tier

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T, C = ProductFamily, Tier, BalanceCause
BILL_FEN, DEPOSIT_FEN = 10_000, 4_000


async def owing_since_march(api: CreditApi, uid: str, name: str, y: int,
                            deposit_fen: int = DEPOSIT_FEN) -> Ledger:
    lg = ledger(uid, name, F.ADC, T.MID)
    lg.deposit_fen = deposit_fen
    m3 = f"{y}-03"
    await api.deliver((lg, lg.event(C.BILL_RUN, at(date(y, 4, 1), 9), [(m3, BILL_FEN)], m3)))
    await api.sweep(date(y, 4, 10), f"op-{name}{uid}-0410")  # warning 1
    return lg


async def decided(api: CreditApi, lg: Ledger, day: date) -> list[tuple[Any, ...]]:
    """The decisions of `day` as published, in order: (decision, level, before, after)."""
    return [(d["decision"], d["warning_level"], d["state_before"], d["state_after"])
            for d in await api.outbox(lg.account_id, "credit.decisions.v1")
            if "decision" in d and d["as_of"][:10] == day.isoformat()]


async def inputs(api: CreditApi, lg: Ledger, decision: str) -> dict[str, Any]:
    async with api.db.connect() as conn:
        found: dict[str, Any] = await conn.scalar(text(
            "SELECT inputs::json FROM credit.decisions WHERE product_id = :p AND decision = :d"),
            {"p": lg.product_id, "d": decision})
    return found


async def test_a_deduction_keeps_the_state_so_the_same_product_is_still_warned(
    api: CreditApi, test_year: int
) -> None:
    """20 May: the deduction (from the 15th) and warning 2 (from the 10th) are both due; the
    deduction comes first and leaves the state, so the warning follows in the same sweep."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "dw", y)
    await api.sweep(date(y, 5, 20), f"op-dw{uid}-0520")
    assert await decided(api, lg, date(y, 5, 20)) == [
        ("deduction", None, "warned", "warned"), ("warning", 2, "warned", "warned")]
    published = await api.outbox(lg.account_id, "credit.decisions.v1")
    assert [d["amount_fen"] for d in published if d.get("decision") == "deduction"] == [
        DEPOSIT_FEN]


async def test_a_suspension_comes_first_then_the_deduction_and_no_warning(
    api: CreditApi, test_year: int
) -> None:
    """31 May, after the suspension warning of the 25th (no deposit yet: no deduction then)
    and a deposit on the 28th: suspension and deduction are both due. The suspension is
    first; ADC's suspension is done at once and a deduction may follow it (it keeps the state:
    suspended); a suspended product is not warned."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "sd", y, deposit_fen=0)
    await api.sweep(date(y, 5, 25), f"op-sd{uid}-0525")
    lg.deposit_fen = DEPOSIT_FEN
    await api.deliver((lg, lg.event(C.MASTER_DATA, at(date(y, 5, 28), 9),
                                    [(f"{y}-03", BILL_FEN)])))
    await api.sweep(date(y, 5, 31), f"op-sd{uid}-0531")
    assert await decided(api, lg, date(y, 5, 25)) == [
        ("suspension_warning", None, "warned", "suspension_warned")]
    assert await decided(api, lg, date(y, 5, 31)) == [
        ("suspend", None, "suspension_warned", "suspended"),
        ("deduction", None, "suspended", "suspended")]
    assert await api.state(lg.product_id) == "suspended"
    changes = [(e["state_before"], e["state_after"])
               for e in await api.outbox(lg.account_id, "credit.decisions.v1")
               if "decision" not in e]
    assert changes == [("suspension_warned", "suspended")]


async def test_a_late_suspension_warning_then_a_deduction_then_the_late_suspension(
    api: CreditApi, test_year: int
) -> None:
    """26 May: the suspension warning comes a day late and names 1 June (today + the notice
    period); the deduction after it in the same sweep sees that warning; warning 2 is not
    given to a suspension-warned product. 31 May suspends nothing; 1 June suspends, late."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "ls", y)
    await api.sweep(date(y, 5, 26), f"op-ls{uid}-0526")
    assert await decided(api, lg, date(y, 5, 26)) == [
        ("suspension_warning", None, "warned", "suspension_warned"),
        ("deduction", None, "suspension_warned", "suspension_warned")]
    deduction = await inputs(api, lg, "deduction")
    assert (deduction["suspension_warned_on"], deduction["suspension_deadline"]) == (
        f"{y}-05-26", f"{y}-06-01")
    await api.sweep(date(y, 5, 31), f"op-ls{uid}-0531")
    assert await decided(api, lg, date(y, 5, 31)) == []
    await api.sweep(date(y, 6, 1), f"op-ls{uid}-0601")
    assert await decided(api, lg, date(y, 6, 1)) == [
        ("suspend", None, "suspension_warned", "suspended")]
    suspend = next(d for d in await api.outbox(lg.account_id, "credit.decisions.v1")
                   if d.get("decision") == "suspend")
    assert f"late: suspension warning of {y}-05-26 named {y}-06-01" in suspend["reason"]


async def test_an_exempt_product_is_deducted_and_warned_but_not_suspension_warned(
    api: CreditApi, test_year: int
) -> None:
    """The red list covers the suspension warning and the suspension, not the warning or the
    deduction: with the suspension warning skipped, warning 2 is due on 26 May too."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "ex", y)
    r = await api.http.post("/v1/exemptions", json={
        "exemption_id": f"EXop{uid}", "customer_id": lg.customer.customer_id,
        "kind": "red_list", "reason": "重要客户", "approver": "分管副总",
        "created_by": "集团账务管理员"})
    assert r.status_code == 201, r.text
    await api.sweep(date(y, 5, 26), f"op-ex{uid}-0526")
    await api.sweep(date(y, 5, 31), f"op-ex{uid}-0531")
    assert await decided(api, lg, date(y, 5, 26)) == [
        ("deduction", None, "warned", "warned"), ("warning", 2, "warned", "warned")]
    assert await decided(api, lg, date(y, 5, 31)) == []
    published = await api.outbox(lg.account_id, "credit.decisions.v1")
    assert [d["context"]["suspension_exempt"] for d in published
            if d.get("decision") in ("deduction", "warning") and d["warning_level"] != 1] == [
        True, True]
    assert await api.state(lg.product_id) == "warned"


async def test_a_step_whose_decision_exists_changes_nothing_and_the_next_one_runs(
    api: CreditApi, test_year: int
) -> None:
    """If the suspension warning's decision id exists already (the step would conflict and
    decide nothing, as a row-by-row sweep did), the product stays warned, so the warning due
    the same day is given."""
    y, uid = test_year, new_uid()
    lg = await owing_since_march(api, uid, "cf", y)
    rule = "adc-suspension-warning-mid"
    key = f"{lg.product_id}|suspension_warning|{rule}:{y}-03:{y}-06-01|0"
    taken = str(uuid.UUID(hashlib.md5(key.encode()).hexdigest()))
    async with api.db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO credit.decisions (decision_id, product_id, account_id, decision, "
            "rule_id, reason, state_before, state_after, as_of, context) VALUES (:i, :p, :a, "
            "'suspension_warning', :r, 'taken before', 'warned', 'warned', :t, '{}')"),
            {"i": taken, "p": lg.product_id, "a": lg.account_id, "r": rule,
             "t": at(date(y, 5, 26))})
    await api.sweep(date(y, 5, 26), f"op-cf{uid}-0526")
    assert await decided(api, lg, date(y, 5, 26)) == [
        ("deduction", None, "warned", "warned"), ("warning", 2, "warned", "warned")]
    assert await api.state(lg.product_id) == "warned"
