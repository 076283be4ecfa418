"""Before/after guard for the balance-event builder (issue 17, the bill run): one fixed
scenario — a synthetic base over two months, a customer with two contacts and no star level,
a MAS product without a channel, a product never charged, an account billed only through an
adjustment, payments, a reversal, a late adjustment of a closed month, a write-off, a deposit
and deductions, two bill runs — and every outbox row it writes (topic, key, type, envelope
without event_id) plus the accounts' sequences and the bill runs, compared with
`bill_run_unchanged.golden.json`, captured from the builder as it was before the change
(commit "billing: golden events of the bill-run scenario, before the one builder").

Refresh the golden file only for a deliberate change of the events:
`BILLING_WRITE_GOLDEN=1 bash scripts/test.sh <this file>`.
Year test_year + 14 is this module's."""

import csv
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_events.adapters import tables as t
from billing_events.domain import commands as c
from billing_events.service_layer import handlers as h
from billing_events.service_layer.bulk import HEADERS, import_file
from billing_events.service_layer.context import BillingContext
from billing_events.synthetic import generate
from common.clock import BUSINESS_TZ, FixedClock, parse_bill_month
from common.idempotency import IdempotencyKeys
from common.outbox import Outbox

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).with_name("bill_run_unchanged.golden.json")


def at(y: int, month: int, day: int) -> datetime:
    return datetime(y, month, day, 9, 30, tzinfo=BUSINESS_TZ)


async def load_base(ctx: BillingContext, tmp: Path, prefix: str, y: int) -> None:
    base = generate(30, 17, [parse_bill_month(f"{y}-01"), parse_bill_month(f"{y}-02")],
                    arrears_rate=0.3, prefix=prefix)
    for kind in ("customers", "accounts", "products", "charges", "payments"):
        path = tmp / f"{kind}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=HEADERS[kind])
            writer.writeheader()
            writer.writerows(getattr(base, kind))
        report = await import_file(ctx, path)
        assert not report.rejected, report.rejected[:3]


async def scenario(ctx: BillingContext, clock: FixedClock, tmp: Path, x: str, y: int) -> None:
    """Everything that writes a balance event, around two bill runs. The base and January's
    charges are recorded on 1 February, before January's bill run: a charge keeps the moment
    it was recorded, and a bill run dated before it is refused (domain/bill_month.py); the
    clock then stands at 1 March for the rest, as it always did."""
    clock.set(at(y, 2, 1))
    await load_base(ctx, tmp, x, y)
    await h.create_customer(ctx, c.CreateCustomer.model_validate({
        "customer_id": f"{x}-G", "name": "两个联系人集团", "tier": "high",
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "会计", "phone": "13800000003"},
                     {"name": "出纳", "phone": "13800000004"}]}))
    for a in ("A", "B"):
        await h.open_account(ctx, c.OpenAccount(account_id=f"{x}-{a}", customer_id=f"{x}-G"))
    products = [("A", "2", "MAS", "huawei", None), ("A", "1", "ADC", None, "直销"),
                ("A", "0", "SMS_DIRECT", None, None), ("B", "1", "WORK_ORDER", None, "代理")]
    for a, n, family, vendor, channel in products:
        await h.add_product(ctx, c.AddProduct.model_validate({
            "product_id": f"{x}-{a}P{n}", "account_id": f"{x}-{a}", "cpno": f"CP{x}{a}{n}",
            "name": f"产品{n}", "family": family, "vendor": vendor, "channel": channel}))
    for n, fen in (("1", 30_000), ("2", 45_500)):
        await h.post_charge(ctx, c.PostCharge(charge_id=f"{x}-AC{n}", account_id=f"{x}-A",
                                              product_id=f"{x}-AP{n}", bill_month=f"{y}-01",
                                              amount_fen=fen))
    clock.set(at(y, 3, 1))
    await h.record_payment(ctx, c.RecordPayment(payment_id=f"{x}-Apay0", account_id=f"{x}-A",
                                                amount_fen=10_000, paid_at=at(y, 1, 15)))
    await h.run_bill(ctx, c.RunBill(bill_run_id=f"{x}-BR1", bill_month=f"{y}-01",
                                    as_of=at(y, 2, 2)))
    await h.record_payment(ctx, c.RecordPayment(payment_id=f"{x}-Apay1", account_id=f"{x}-A",
                                                amount_fen=40_000, paid_at=at(y, 2, 5)))
    await h.reverse_payment(ctx, c.ReversePayment(reversal_id=f"{x}-Arev", reason="退票",
                                                  payment_id=f"{x}-Apay0",
                                                  reversed_at=at(y, 2, 6)))
    await h.adjust_bill(ctx, c.AdjustBill(adjustment_id=f"{x}-Aadj1", account_id=f"{x}-A",
                                          product_id=f"{x}-AP1", bill_month=f"{y}-01",
                                          amount_fen=-5_000, reason="贷记", as_of=at(y, 2, 7)))
    await h.adjust_bill(ctx, c.AdjustBill(adjustment_id=f"{x}-Badj", account_id=f"{x}-B",
                                          product_id=f"{x}-BP1", bill_month=f"{y}-02",
                                          amount_fen=88_000, reason="工单", as_of=at(y, 2, 8)))
    await h.receive_deposit(ctx, c.ReceiveDeposit(deposit_id=f"{x}-Adep", account_id=f"{x}-A",
                                                  amount_fen=20_000, received_at=at(y, 2, 9)))
    await h.write_off(ctx, c.WriteOff(write_off_id=f"{x}-Awo", account_id=f"{x}-A",
                                      amount_fen=3_000, reason="核销", as_of=at(y, 2, 10)))
    for n, requested in (("1", 12_000), ("2", 50_000)):
        async with ctx.engine.begin() as conn:
            await h.apply_deduction(ctx, conn, c.ApplyDeduction(
                decision_id=f"{x}-D{n}", account_id=f"{x}-A", requested_fen=requested,
                as_of=at(y, 2, 10 + int(n))))
    await h.update_customer(ctx, f"{x}-G", c.CustomerDetails.model_validate({
        "name": "两个联系人集团（更名）", "tier": "high", "star_level": 4,
        "account_manager": {"name": "周经理", "phone": "13900000003"},
        "contacts": [{"name": "会计", "phone": "13800000003"}]}))
    await h.run_bill(ctx, c.RunBill(bill_run_id=f"{x}-BR2", bill_month=f"{y}-02",
                                    as_of=at(y, 3, 2)))


def same_instants(envelope: dict[str, Any]) -> None:
    """Timestamps as instants: the codec may spell UTC "Z" or "+00:00" (msgspec writes "Z",
    orjson wrote "+00:00"); the instant and the offset of a non-UTC time must not change."""
    payload = envelope["payload"]
    for holder, key in ((envelope, "occurred_at"), (payload, "as_of"),
                        (payload, "last_payment_at")):
        if isinstance(holder.get(key), str) and holder[key].endswith("Z"):
            holder[key] = holder[key][:-1] + "+00:00"


def without_rating_fields(payload: dict[str, Any]) -> None:
    """Fields added since the golden for the rating model (issue 18, docs/rating.md): the
    customer's open date (its creation's wall clock) and a bill run's billed amount, checked
    on their own (test_product_dues.py)."""
    payload.get("customer", {}).pop("opened_on", None)
    payload.get("customer", {}).pop("value_class", None)
    billed = payload.pop("billed_fen", None)
    assert isinstance(billed, int) if payload.get("cause") == "bill_run" else billed is None


async def written(db: AsyncEngine, x: str, y: int) -> dict[str, Any]:
    """The scenario's rows, with the per-run prefix and year replaced so runs compare."""
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT topic, key, event_type, payload FROM billing.outbox WHERE key LIKE :p"),
            {"p": f"{x}-%"})).all()
        sequences = (await conn.execute(text(
            "SELECT account_id, sequence FROM billing.accounts WHERE account_id LIKE :p "
            "ORDER BY account_id"), {"p": f"{x}-%"})).all()
        runs = (await conn.execute(text(
            "SELECT bill_run_id, bill_month::text, as_of, accounts_billed FROM billing.bill_runs"
            " WHERE bill_run_id LIKE :p ORDER BY bill_run_id"), {"p": f"{x}-%"})).all()
    events = []
    for r in rows:
        envelope = orjson.loads(r.payload)
        del envelope["event_id"]
        same_instants(envelope)
        without_rating_fields(envelope["payload"])
        events.append({"topic": r.topic, "key": r.key, "event_type": r.event_type,
                       "envelope": envelope})
    # Within one statement the rows of different accounts come in no fixed order; per
    # account, the sequence orders them.
    events.sort(key=lambda e: (e["key"], e["envelope"]["payload"]["sequence"]))
    found = {"events": events, "sequences": [list(s) for s in sequences],
             "bill_runs": [[r[0], r[1], r[2].isoformat(), r[3]] for r in runs]}
    raw = orjson.dumps(found, option=orjson.OPT_INDENT_2).decode()
    return dict(orjson.loads(raw.replace(x, "X").replace(f"{y}-", "YYYY-")))


async def test_the_events_of_the_scenario_are_those_before_the_change(
    db: AsyncEngine, uid: str, test_year: int, tmp_path: Path,
) -> None:
    y, x = test_year + 14, f"gold{uid}"
    clock = FixedClock(at(y, 3, 1))
    ctx = BillingContext(db, Outbox(t.outbox), IdempotencyKeys(t.idempotency_keys), clock)
    await scenario(ctx, clock, tmp_path, x, y)
    found = await written(db, x, y)
    assert len(found["events"]) > 100  # the scenario wrote what it should
    if os.environ.get("BILLING_WRITE_GOLDEN"):
        GOLDEN.write_bytes(orjson.dumps(found, option=orjson.OPT_INDENT_2
                                        | orjson.OPT_SORT_KEYS) + b"\n")
    expected = orjson.loads(GOLDEN.read_bytes())
    assert found["sequences"] == expected["sequences"]
    assert found["bill_runs"] == expected["bill_runs"]
    assert len(found["events"]) == len(expected["events"])
    for got, want in zip(found["events"], expected["events"], strict=True):
        assert got == want, (got["key"], got["envelope"]["payload"]["sequence"])
