"""Amounts still true when they leave, on real PostgreSQL (domain/revision.py,
service_layer/receiving.py): a notice held by the quiet hours is given the product's new own
amount when credit-control says it changed (credit.product_amount_changed), and leaves saying
it; nothing owed of its own cancels it (its outcome published); a deduction notice, a message
claimed for sending, one made after the change and one from before migration 0008 are left
as they are; the wording of the template version a message was made with is kept."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import CreditState, DecisionType
from common.outbox import Outbox
from notifier.adapters import repository as repo
from notifier.adapters import tables as t
from notifier.domain.revision import NOTHING_OWED_REASON
from notifier.domain.templates import TemplateName
from notifier.service_layer.receiving import NotifierEvent, apply_credit_events

from .notifier_fixtures import (
    amount_changed,
    context_for,
    decision,
    drain,
    envelope,
    local,
    log_of,
    make_ctx,
    receive,
    smsc_rows,
)
from .test_notifier_outcomes import published
from .test_notifier_recheck import api_messages

pytestmark = [pytest.mark.integration]
D, S = DecisionType, CreditState


def bill_notice_text(uid: str, amount: str) -> str:
    return (f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})目前有{amount}元话费"
            "未缴清,请于11月25日前及时缴费以免影响您的集团产品服务。谢谢。")


async def test_a_held_bill_notice_leaves_saying_what_is_left_after_a_partial_payment(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-02T22:30"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year, amount_fen=12_345)
    await receive(ctx, decision(notice, D.BILL_NOTICE, at=local(test_year, "11-02T22:30")))
    [held] = await log_of(db, notice.product.product_id)
    assert (held["status"], held["text"]) == ("held", bill_notice_text(uid, "123.45"))
    assert held["fields"]["amount_fen"] == 12_345 and held["revised_at"] is None
    clock.set(local(test_year, "11-02T23:10"))
    await receive(ctx, amount_changed(notice, 2_345, local(test_year, "11-02T23:10")))
    [m] = await api_messages(ctx, product_id=notice.product.product_id)
    assert (m["status"], m["text"]) == ("held", bill_notice_text(uid, "23.45"))
    assert m["revised_at"] is not None and "fields" not in m  # the message log shows it
    [stored] = await log_of(db, notice.product.product_id)
    assert stored["fields"]["amount_fen"] == 2_345
    assert m["status_reason"] == held["status_reason"]  # still held by the quiet hours
    await drain(ctx, local(test_year, "11-03T08:00"))
    [sent] = await smsc_rows(db, [held["message_id"]])
    assert sent["text"] == bill_notice_text(uid, "23.45")


async def test_nothing_owed_of_its_own_cancels_the_waiting_warning_and_says_so(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-25T22:00"))
    ctx = make_ctx(db, clock, outbox=Outbox(t.outbox))
    notice = context_for(uid, test_year)
    warning = decision(notice, D.SUSPENSION_WARNING, at=local(test_year, "11-25T22:00"),
                       before=S.WARNED, after=S.SUSPENSION_WARNED)
    await receive(ctx, warning)
    clock.set(local(test_year, "11-25T23:10"))
    # The product's own arrears are paid; a sibling's keep the account (and it) off normal.
    await receive(ctx, amount_changed(notice, 0, local(test_year, "11-25T23:10"),
                                      account_fen=5_000, state=S.SUSPENSION_WARNED))
    [m] = await log_of(db, notice.product.product_id)
    assert (m["status"], m["status_reason"]) == ("cancelled", NOTHING_OWED_REASON)
    assert m["cancelled_at"] == local(test_year, "11-25T23:10")
    assert "0.00元" not in m["text"] and m["revised_at"] is None
    [outcome] = await published(db, warning.account_id)
    assert (outcome["decision_id"], outcome["status"]) == (warning.decision_id, "cancelled")
    await drain(ctx, local(test_year, "11-26T08:00"))
    assert await smsc_rows(db, [m["message_id"]]) == []


async def test_a_deduction_notice_says_what_was_collected_and_is_never_revised(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-02T22:30")))
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, D.DEDUCTION, at=local(test_year, "11-02T22:30"),
                                amount_fen=5_000))
    [before] = await log_of(db, notice.product.product_id)
    await receive(ctx, amount_changed(notice, 7_345, local(test_year, "11-02T22:40")))
    await receive(ctx, amount_changed(notice, 0, local(test_year, "11-02T22:50")))
    [after] = await log_of(db, notice.product.product_id)
    assert "划扣50.00元" in after["text"]
    assert (after["status"], after["text"], after["revised_at"]) == (
        "held", before["text"], None)


async def test_only_messages_made_before_the_change_are_revised_in_a_batch(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Events of one batch in order: a change revises what came before it, never what a later
    decision made (that one already says the newer amount)."""
    ctx = make_ctx(db, FixedClock(local(test_year, "11-02T22:30")))
    first = context_for(f"{uid}a", test_year)
    second = context_for(f"{uid}b", test_year)
    at = local(test_year, "11-02T22:30")
    await receive(ctx, decision(first, D.BILL_NOTICE, at=at), amount_changed(first, 2_345, at),
                  amount_changed(second, 2_345, at), decision(second, D.BILL_NOTICE, at=at))
    [a] = await log_of(db, first.product.product_id)
    [b] = await log_of(db, second.product.product_id)
    assert a["text"] == bill_notice_text(f"{uid}a", "23.45") and a["revised_at"] is not None
    assert b["text"] == bill_notice_text(f"{uid}b", "123.45") and b["revised_at"] is None


@pytest.mark.parametrize("how", ["claimed for sending", "made before migration 0008"])
async def test_a_message_that_cannot_be_revised_is_left_as_it_is(
    db: AsyncEngine, uid: str, test_year: int, how: str,
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-02T10:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, D.WARNING, warning_level=2,
                                at=local(test_year, "11-02T10:00")))
    [m] = await log_of(db, notice.product.product_id)
    change = ("UPDATE notifier.messages SET status = 'sending', attempts = 1, claimed_at = now() "
              if how == "claimed for sending" else "UPDATE notifier.messages SET fields = NULL ")
    async with db.begin() as conn:
        await conn.execute(text(change + "WHERE message_id = :m"), {"m": m["message_id"]})
    await receive(ctx, amount_changed(notice, 2_345, local(test_year, "11-02T10:01")))
    [after] = await log_of(db, notice.product.product_id)
    assert (after["text"], after["revised_at"]) == (m["text"], None)
    assert "123.45元" in after["text"]


async def _apply(ctx: Any, conn: AsyncConnection, *events: NotifierEvent) -> None:
    await apply_credit_events(ctx, conn, [(env, env.payload) for env in (
        envelope(e, ctx.clock.now()) for e in events)])


async def test_the_wording_of_the_version_it_was_made_with_is_kept(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Made with one version of the bill notice, revised after the text changed again: the
    new amount in the old words. In a transaction rolled back, so no other test (nor a
    running notifier) ever renders these versions."""
    ctx = make_ctx(db, FixedClock(local(test_year, "11-02T22:30")))
    notice = context_for(uid, test_year)
    at = local(test_year, "11-02T22:30")
    async with db.connect() as conn, conn.begin() as trans:
        await repo.add_template_versions(
            conn, {TemplateName.BILL_NOTICE: "您的集团产品CPNAME尚欠XX元,请于MM月DD日前缴费。"},
            "test")
        await _apply(ctx, conn, decision(notice, D.BILL_NOTICE, at=at))
        await repo.add_template_versions(
            conn, {TemplateName.BILL_NOTICE: "新的措辞:CPNAME欠XX元,MM月DD日前缴清。"}, "test")
        await _apply(ctx, conn, amount_changed(notice, 2_345, at + timedelta(minutes=40)))
        [m] = (await conn.execute(text(
            "SELECT text, segments, template_version FROM notifier.messages "
            "WHERE product_id = :p"), {"p": notice.product.product_id})).all()
        await trans.rollback()
    assert m.text == "您的集团产品企信通尚欠23.45元,请于11月25日前缴费。"
    assert m.segments == 1
