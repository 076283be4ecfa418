"""The deduction notice (划扣通知) says what billing really collected for a product
(credit-control's credit.deduction_collected, DeductionCollected), on the business day it did:
never what the deduction decision asked for (a decision of type deduction makes no message).
On real PostgreSQL through the notifier's receiving and sending, and through real Kafka with
the notifier alone as a process: one notice per contact and product, held by the quiet hours
like every customer notice, made once however often the event is delivered or re-published,
its outcome (when followed) carrying the deduction's id."""

import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import CreditState, DecisionType
from common.outbox import Outbox
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack
from notifier.adapters import tables as t

from .notifier_fixtures import (
    collected,
    context_for,
    decision,
    drain,
    local,
    log_of,
    make_ctx,
    receive,
    smsc_rows,
)
from .test_notifier_outcomes import published
from .test_notifier_recheck import api_messages
from .test_notifier_revision_kafka import Credit

pytestmark = [pytest.mark.integration]
D, S = DecisionType, CreditState
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "uv.lock").exists())


def deduction_text(uid: str, day: str, yuan: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})的欠费已根据约定于{day}"
            f"从您的预存款中划扣{yuan}元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!")


async def test_a_deduction_collected_makes_one_notice_of_what_was_collected_once(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Billing was asked for 20.00 and collected 12.34 on the 15th at 20:00: the contact is
    told 12.34 on the 15th (the context was written on the 2nd), once, however often the
    event comes again."""
    at = local(test_year, "11-15T20:00")
    ctx = make_ctx(db, FixedClock(at))
    notice = context_for(uid, test_year)
    ask = decision(notice, D.DEDUCTION, at=at, before=S.WARNED, after=S.WARNED,
                   amount_fen=2_000)
    await receive(ctx, ask)
    assert await log_of(db, notice.product.product_id) == []  # billing's ask: no SMS
    took = collected(notice, 1_234, at, deduction_id=ask.decision_id)
    await receive(ctx, took)
    await receive(ctx, took)  # re-published under a new event id
    [m] = await log_of(db, notice.product.product_id)
    assert (m["template"], m["recipient"], m["status"]) == (
        "deduction_notice", "13800000001", "pending")
    assert m["text"] == deduction_text(uid, f"{test_year}年11月15日", "12.34")
    assert (m["source_id"], m["trigger"], m["reminder"]) == (
        f"decision:{ask.decision_id}", "deduction", False)
    assert m["fields"]["amount_fen"] == 1_234 and m["decision_as_of"] == at
    # What the deduction decision made, by its id: this notice.
    assert [x["message_id"] for x in await api_messages(ctx, decision_id=ask.decision_id)] == [
        m["message_id"]]
    await drain(ctx, at)
    await receive(ctx, took)  # after it left, too
    [sent] = await smsc_rows(db, [x["message_id"] for x in
                                  await log_of(db, notice.product.product_id)])
    assert (sent["text"], sent["submits"]) == (m["text"], 1)


async def test_the_quiet_hours_hold_a_deduction_notice(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    at = local(test_year, "11-15T22:30")
    ctx = make_ctx(db, FixedClock(at))
    notice = context_for(uid, test_year)
    await receive(ctx, collected(notice, 1_234, at))
    [m] = await log_of(db, notice.product.product_id)
    assert (m["status"], m["next_attempt_at"]) == ("held", local(test_year, "11-16T08:00"))
    assert m["text"] == deduction_text(uid, f"{test_year}年11月15日", "12.34")


async def test_one_deduction_paying_two_products_tells_of_each(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Billing's allocation paid two products' arrears with one deduction's money: the
    contact is told of each, with what each was paid (one notice per product)."""
    at = local(test_year, "11-15T10:00")
    ctx = make_ctx(db, FixedClock(at))
    first, second = (context_for(f"{uid}{n}", test_year) for n in "ab")
    await receive(ctx, collected(first, 1_234, at, deduction_id=f"ded-{uid}"),
                  collected(second, 766, at, deduction_id=f"ded-{uid}"))
    [a] = await log_of(db, first.product.product_id)
    [b] = await log_of(db, second.product.product_id)
    assert a["text"] == deduction_text(f"{uid}a", f"{test_year}年11月15日", "12.34")
    assert b["text"] == deduction_text(f"{uid}b", f"{test_year}年11月15日", "7.66")
    assert a["recipient"] == b["recipient"] and a["message_id"] != b["message_id"]


async def test_a_followed_deduction_notice_s_outcome_names_the_deduction(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    at = local(test_year, "11-15T10:00")
    ctx = make_ctx(db, FixedClock(at), outbox=Outbox(t.outbox),
                   outcome_templates=frozenset({"deduction_notice"}))
    notice = context_for(uid, test_year)
    took = collected(notice, 1_234, at, deduction_id=f"ded-{uid}")
    await receive(ctx, took)
    await drain(ctx, at)
    [outcome] = await published(db, took.account_id)
    assert (outcome["decision_id"], outcome["product_id"], outcome["template"],
            outcome["status"]) == (f"ded-{uid}", took.product_id, "deduction_notice", "sent")


async def _messages_of(db: AsyncEngine, product_id: str) -> list[tuple[str, str]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT template, text FROM notifier.messages WHERE product_id = :p "
            "ORDER BY created_at"), {"p": product_id})
        return [(r.template, r.text) for r in rows]


@pytest.mark.e2e
@pytest.mark.usefixtures("shared_notifier_paused")  # conftest.py
async def test_through_kafka_a_deduction_is_told_once_as_collected(
    stack: Stack, db: AsyncEngine, uid: str, test_year: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """credit-control's events on credit.decisions.v1 under the account's key: the deduction
    decision (asking 20.00), what it collected (12.34), the same bytes again (a redelivery),
    the same fact re-published under a new event id, and a sentinel behind them."""
    base = int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100"))
    monkeypatch.setenv("NOTIFIER_SERVICE_NAME", f"notifier-deduction-{uid}")
    procs = ServiceProcesses([ServiceSpec("notifier", "notifier", "NOTIFIER_", base + 14)],
                             stack, ROOT / "test-artifacts" / "logs-notifier-deduction", "t")
    credit = Credit(stack, f"A{uid}")
    notice, sentinel = (context_for(f"{uid}-{n}", test_year) for n in ("deduct", "sentinel"))
    at = local(test_year, "11-15T20:00")
    ask = decision(notice, D.DEDUCTION, at=at, before=S.WARNED, after=S.WARNED,
                   amount_fen=2_000)
    took = collected(notice, 1_234, at, deduction_id=ask.decision_id)
    once = credit.message(took)
    await credit.publish([credit.message(ask), once, once, credit.message(took),
                          credit.message(decision(sentinel, at=at))])
    procs.start("notifier")
    try:
        procs.wait_ready("notifier")
        await eventually(lambda: _messages_of(db, sentinel.product.product_id),
                         lambda ms: len(ms) == 1, timeout=60, what="the sentinel")
        assert await _messages_of(db, notice.product.product_id) == [
            ("deduction_notice", deduction_text(f"{uid}-deduct", f"{test_year}年11月15日",
                                                "12.34"))]
    finally:
        procs.stop_all()
