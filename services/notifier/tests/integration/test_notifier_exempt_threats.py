"""No threat that will not be carried out, on real PostgreSQL (domain/revision.py
exempt_revisions, service_layer/receiving.py): a third warning (warning_3, "…逾期将停用…")
still waiting to leave when credit-control says its product became exempt from suspension
(credit.exemption_changed: a red list, an emergency no-suspension) is rendered again as
warning_3_exempt — same product, amount and date, same message id, its reason saying why —
and leaves without the threat. An exemption removed leaves a waiting warning_3_exempt as it
is (it says nothing untrue; only a decision threatens). A warning_3 that cannot be rendered
again (no stored fields) is cancelled, at receipt or by the sender's claim. A warning_3 whose
submit is out when the exemption arrives keeps its text while it is out: a failed submit is
retried as warning_3_exempt, an accepted one is what left."""

import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import (
    CreditState,
    DecisionType,
    ExemptionChanged,
    NoticeContext,
)
from notifier.adapters.smsc import SimulatedSmsc
from notifier.domain.recheck import EXEMPT_REASON
from notifier.domain.revision import exempt_note
from notifier.domain.templates import TemplateName
from notifier.service_layer.context import NotifierContext
from notifier.service_layer.sending import send_pending

from .notifier_fixtures import (
    amount_changed,
    context_for,
    decision,
    drain,
    local,
    log_of,
    make_ctx,
    receive,
    smsc_rows,
)
from .test_notifier_recheck import api_messages
from .test_notifier_revision import ChangeWhileOut

pytestmark = [pytest.mark.integration]
D, S, T = DecisionType, CreditState, TemplateName
NOTE = exempt_note(T.WARNING_3_EXEMPT)


def exemption(ctx: NoticeContext, exempt: bool, at: datetime) -> ExemptionChanged:
    """credit-control's word that the product's customer is (not) exempt now."""
    return ExemptionChanged(
        account_id=f"A{ctx.product.product_id}", product_id=ctx.product.product_id,
        customer_id=ctx.customer.customer_id, exemption_id=f"EX{uuid.uuid4().hex[:8]}",
        as_of=at, suspension_exempt=exempt)


def warning_3(uid: str, amount: str, exempt: bool) -> str:
    threat = "" if exempt else ",逾期将停用您的集团产品服务"
    return (f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})仍有{amount}元欠费"
            f"未缴清,此为第三次欠费提醒,请于11月25日前及时缴费{threat}。谢谢。")


def third(notice: NoticeContext, at: datetime) -> Any:
    return decision(notice, D.WARNING, warning_level=3, at=at, before=S.WARNED,
                    after=S.WARNED)


async def test_a_held_third_warning_leaves_without_the_threat_once_the_product_is_exempt(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-10T22:00"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year)
    made = third(notice, local(test_year, "11-10T22:00"))
    await receive(ctx, made)
    [held] = await log_of(db, notice.product.product_id)
    assert (held["template"], held["status"], held["text"]) == (
        "warning_3", "held", warning_3(uid, "123.45", exempt=False))
    clock.set(local(test_year, "11-10T23:00"))  # a red list added while the quiet hours hold it
    await receive(ctx, exemption(notice, True, local(test_year, "11-10T23:00")))
    [m] = await api_messages(ctx, product_id=notice.product.product_id)
    assert (m["message_id"], m["template"], m["status"]) == (
        held["message_id"], "warning_3_exempt", "held")
    assert m["text"] == warning_3(uid, "123.45", exempt=True)
    assert m["template_version"] == 1 and m["revised_at"] is not None
    # Still held by the quiet hours, and why it is no longer the warning it was made as.
    assert m["status_reason"] == f"{held['status_reason']}; {NOTE}"
    [stored] = await log_of(db, notice.product.product_id)
    assert stored["fields"] == held["fields"] and stored["segments"] == 2
    await drain(ctx, local(test_year, "11-11T08:00"))
    [sent] = await smsc_rows(db, [held["message_id"]])
    assert sent["text"] == warning_3(uid, "123.45", exempt=True)
    # The decision re-delivered makes nothing new: the message id is the one it had.
    await receive(ctx, made)
    assert len(await log_of(db, notice.product.product_id)) == 1


async def test_an_exemption_removed_leaves_a_waiting_exempt_warning_as_it_is(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """It says nothing untrue; only a decision threatens a suspension (the next one, made
    for a product no longer exempt, says so)."""
    clock = FixedClock(local(test_year, "11-10T22:00"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year, exempt=True)
    await receive(ctx, third(notice, local(test_year, "11-10T22:00")))
    [before] = await log_of(db, notice.product.product_id)
    assert before["template"] == "warning_3_exempt"
    await receive(ctx, exemption(notice, False, local(test_year, "11-10T23:00")))
    [after] = await log_of(db, notice.product.product_id)
    assert {k: after[k] for k in ("template", "status", "text", "status_reason",
                                  "revised_at")} == {
        k: before[k] for k in ("template", "status", "text", "status_reason", "revised_at")}
    await drain(ctx, local(test_year, "11-11T08:00"))
    [sent] = await smsc_rows(db, [before["message_id"]])
    assert sent["text"] == warning_3(uid, "123.45", exempt=True)


async def test_added_and_removed_in_one_batch_changes_nothing(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-10T22:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, third(notice, local(test_year, "11-10T22:00")))
    at = local(test_year, "11-10T23:00")
    await receive(ctx, exemption(notice, True, at), exemption(notice, False, at))
    [m] = await log_of(db, notice.product.product_id)
    assert (m["template"], m["text"], m["revised_at"]) == (
        "warning_3", warning_3(uid, "123.45", exempt=False), None)


@pytest.mark.parametrize("order", ["exempt, then paid in part", "paid in part, then exempt"])
async def test_the_amount_and_the_exemption_both_hold_when_it_leaves(
    db: AsyncEngine, uid: str, test_year: int, order: str,
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-10T22:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, third(notice, local(test_year, "11-10T22:00")))
    at = local(test_year, "11-10T23:00")
    exempt, paid = exemption(notice, True, at), amount_changed(notice, 2_345, at)
    await receive(ctx, *((exempt, paid) if order.startswith("exempt") else (paid, exempt)))
    [m] = await log_of(db, notice.product.product_id)
    assert (m["template"], m["text"]) == ("warning_3_exempt", warning_3(uid, "23.45", True))
    assert m["fields"]["amount_fen"] == 2_345


async def test_a_third_warning_that_cannot_be_rendered_again_is_cancelled(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Made before migration 0008 (no stored fields): it cannot be rendered again, and a
    threat must not leave: the re-check at receipt cancels it."""
    ctx = make_ctx(db, FixedClock(local(test_year, "11-10T22:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, third(notice, local(test_year, "11-10T22:00")))
    async with db.begin() as conn:
        await conn.execute(text("UPDATE notifier.messages SET fields = NULL "
                                "WHERE product_id = :p"), {"p": notice.product.product_id})
    await receive(ctx, exemption(notice, True, local(test_year, "11-10T23:00")))
    [m] = await log_of(db, notice.product.product_id)
    assert (m["template"], m["status"], m["status_reason"]) == (
        "warning_3", "cancelled", EXEMPT_REASON)


async def test_the_senders_claim_never_lets_a_threat_to_an_exempt_product_leave(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """The last check, as it leaves: whatever left a warning_3 waiting for a product the
    notifier knows as exempt (here its facts set by hand), the claim cancels it."""
    clock = FixedClock(local(test_year, "11-10T10:00"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year)
    await receive(ctx, third(notice, local(test_year, "11-10T10:00")))
    async with db.begin() as conn:
        await conn.execute(text(
            "UPDATE notifier.product_states SET suspension_exempt = true WHERE product_id = :p"),
            {"p": notice.product.product_id})
    await drain(ctx, local(test_year, "11-10T10:00"))
    [m] = await log_of(db, notice.product.product_id)
    assert (m["status"], m["status_reason"]) == ("cancelled", EXEMPT_REASON)
    assert await smsc_rows(db, [m["message_id"]]) == []


# --- the exemption arrives while the submit is out ---------------------------------------

async def _out_while_exempt(
    db: AsyncEngine, uid: str, test_year: int, refuse: bool, paid_fen: int | None = None,
) -> tuple[NotifierContext, ChangeWhileOut, NoticeContext, dict[str, Any]]:
    """A third warning decided at 10:00 and claimed at once; while its submit is out, the
    product becomes exempt (after a partial payment to `paid_fen`, when given)."""
    clock = FixedClock(local(test_year, "11-10T10:00"))
    smsc = SimulatedSmsc(db, clock)
    notice = context_for(uid, test_year)
    ctx = NotifierContext(db, smsc, clock, smsc=smsc, send_backoff_base_s=10.0)
    await receive(ctx, third(notice, local(test_year, "11-10T10:00")))
    [m] = await log_of(db, notice.product.product_id)

    async def arrive() -> None:
        if provider.submitted[1:]:
            return  # the retry: it has arrived already
        at = local(test_year, "11-10T10:00")
        if paid_fen is not None:
            await receive(ctx, amount_changed(notice, paid_fen, at))
        await receive(ctx, exemption(notice, True, at))
        [out] = await log_of(db, notice.product.product_id)
        # Its text is not touched while the submit is out.
        assert (out["status"], out["template"], out["text"]) == ("sending", "warning_3",
                                                                 m["text"])
        assert out["pending_template"] == "warning_3_exempt"

    provider = ChangeWhileOut(smsc, {m["message_id"]}, arrive, refuse)
    ctx.provider = provider
    await send_pending(ctx)
    return ctx, provider, notice, m


@pytest.mark.parametrize("paid_fen", [None, 2_345])
async def test_a_failed_submit_is_retried_without_the_threat(
    db: AsyncEngine, uid: str, test_year: int, paid_fen: int | None,
) -> None:
    ctx, provider, notice, m = await _out_while_exempt(db, uid, test_year, True, paid_fen)
    amount = "23.45" if paid_fen else "123.45"
    [after] = await log_of(db, notice.product.product_id)
    assert (after["status"], after["template"], after["text"]) == (
        "pending", "warning_3_exempt", warning_3(uid, amount, exempt=True))
    assert after["status_reason"] == NOTE and after["revised_at"] is not None
    assert (after["pending_template"], after["pending_template_version"],
            after["pending_text"]) == (None, None, None)
    provider.refuse = False
    await drain(ctx, local(test_year, "11-10T10:01"))  # after the backoff
    [sent] = await smsc_rows(db, [m["message_id"]])
    assert sent["text"] == warning_3(uid, amount, exempt=True)
    assert provider.submitted == [warning_3(uid, "123.45", exempt=False),
                                  warning_3(uid, amount, exempt=True)]


async def test_an_accepted_submit_is_what_left(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """The SMSC took the text it was claimed with (the window: the SMSC's answer time); the
    log says what left."""
    _, _, notice, m = await _out_while_exempt(db, uid, test_year, False)
    [after] = await log_of(db, notice.product.product_id)
    assert (after["status"], after["template"], after["text"], after["pending_template"]) == (
        "submitted", "warning_3", m["text"], None)


async def test_a_claim_retaken_after_its_sender_died_goes_without_the_threat(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-10T10:00"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year)
    await receive(ctx, third(notice, local(test_year, "11-10T10:00")))
    [m] = await log_of(db, notice.product.product_id)
    async with db.begin() as conn:  # what the dead sender's claim left
        await conn.execute(text(
            "UPDATE notifier.messages SET status = 'sending', attempts = 1, claimed_at = :at "
            "WHERE message_id = :m"), {"m": m["message_id"], "at": clock.now()})
    await receive(ctx, exemption(notice, True, local(test_year, "11-10T10:00")))
    await drain(ctx, local(test_year, "11-10T10:02"))  # past the 60 s claim timeout
    [after] = await log_of(db, notice.product.product_id)
    assert (after["status"], after["attempts"], after["template"]) == (
        "submitted", 2, "warning_3_exempt")
    assert after["status_reason"] == NOTE
    [sent] = await smsc_rows(db, [m["message_id"]])
    assert sent["text"] == after["text"] == warning_3(uid, "123.45", exempt=True)
