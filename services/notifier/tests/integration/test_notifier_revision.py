"""Amounts still true when they leave, on real PostgreSQL (domain/revision.py,
service_layer/receiving.py): a notice held by the quiet hours is given the product's new own
amount when credit-control says it changed (credit.product_amount_changed), and leaves saying
it; nothing owed of its own cancels it (its outcome published); a deduction notice, one made
after the change and one from before migration 0008 are left as they are; the wording of the
template version a message was made with is kept. A message whose submit is out when the
change arrives (claimed, 'sending') keeps its text while it is out: if the submit fails, its
retry leaves with the new amount (or it is cancelled: nothing owed); if the SMSC accepted it,
the revision is dropped; a claim retaken after its sender died goes with the new amount."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
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
from notifier.adapters.providers import Submission, SubmitOutcome
from notifier.adapters.smsc import SimulatedSmsc
from notifier.domain.revision import NOTHING_OWED_REASON
from notifier.domain.templates import TemplateName
from notifier.service_layer.context import NotifierContext
from notifier.service_layer.receiving import NotifierEvent, apply_credit_events
from notifier.service_layer.sending import send_pending

from .notifier_fixtures import (
    amount_changed,
    collected,
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
    await receive(ctx, collected(notice, 5_000, local(test_year, "11-02T22:30")))
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


async def test_a_message_made_before_migration_0008_is_left_as_it_is(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-02T10:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, D.WARNING, warning_level=2,
                                at=local(test_year, "11-02T10:00")))
    [m] = await log_of(db, notice.product.product_id)
    async with db.begin() as conn:
        await conn.execute(text("UPDATE notifier.messages SET fields = NULL "
                                "WHERE message_id = :m"), {"m": m["message_id"]})
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


# --- a change while the submit is out ------------------------------------------------------

@dataclass
class ChangeWhileOut:
    """The simulated SMSC, with something happening while the submit of `ours` is out (the
    sender holds no transaction then): credit-control's amount change arrives, then the SMSC
    answers — refusing `ours` when `refuse`. Other tests' messages due in the same claim go
    to the SMSC as usual."""

    smsc: SimulatedSmsc
    ours: set[str]
    meanwhile: Callable[[], Awaitable[None]]
    refuse: bool
    submitted: list[str] = field(default_factory=list)  # the texts of ours, as submitted

    async def submit_many(self, batch: Sequence[Submission]) -> list[SubmitOutcome]:
        mine = [s for s in batch if s.client_ref in self.ours]
        if mine:
            self.submitted += [s.text for s in mine]
            await self.meanwhile()
        if not self.refuse:
            return await self.smsc.submit_many(batch)
        others = {o.client_ref: o for o in await self.smsc.submit_many(
            [s for s in batch if s not in mine])}
        return [SubmitOutcome(s.client_ref, None, "SMSC timed out") if s in mine
                else others[s.client_ref] for s in batch]


async def _out_while_changed(
    db: AsyncEngine, uid: str, test_year: int, changes: Sequence[int], refuse: bool,
    kind: DecisionType = D.BILL_NOTICE, outbox: Outbox | None = None,
) -> tuple[NotifierContext, ChangeWhileOut, Any, dict[str, Any]]:
    """A notice decided at 10:00 and claimed at once; while its submit is out, the product's
    own amount changes to each of `changes` (one consumer batch each)."""
    clock = FixedClock(local(test_year, "11-02T10:00"))
    smsc = SimulatedSmsc(db, clock)
    notice = context_for(uid, test_year)
    made = decision(notice, kind, at=local(test_year, "11-02T10:00"),
                    **({"before": S.WARNED, "after": S.SUSPENSION_WARNED}
                       if kind is D.SUSPENSION_WARNING else {}))
    ctx = NotifierContext(db, smsc, clock, smsc=smsc, send_backoff_base_s=10.0, outbox=outbox)
    await receive(ctx, made)
    [m] = await log_of(db, notice.product.product_id)

    async def arrive() -> None:
        for n, fen in enumerate(changes):
            await receive(ctx, amount_changed(notice, fen, local(test_year, "11-02T10:00"),
                                              sequence=2 + n, state=made.state_after))

    provider = ChangeWhileOut(smsc, {m["message_id"]}, arrive, refuse)
    ctx.provider = provider
    await send_pending(ctx)
    return ctx, provider, made, m


def _pending(m: dict[str, Any]) -> tuple[Any, ...]:
    return (m["pending_text"], m["pending_segments"], m["pending_fields"], m["pending_reason"])


async def test_a_failed_submit_retries_with_the_amount_that_changed_while_it_was_out(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """Claimed with 123.45; 23.45, then 10.00 heard while the SMSC does not answer (the newer
    replaces the older): the retry leaves saying 10.00."""
    ctx, provider, made, m = await _out_while_changed(db, uid, test_year, [2_345, 1_000],
                                                      refuse=True)
    assert provider.submitted == [bill_notice_text(uid, "123.45")]
    [after] = await log_of(db, made.product_id)
    assert (after["status"], after["attempts"], after["last_error"]) == (
        "pending", 1, "SMSC timed out")
    assert after["text"] == bill_notice_text(uid, "10.00")
    assert after["fields"]["amount_fen"] == 1_000 and after["revised_at"] is not None
    assert _pending(after) == (None, None, None, None)
    provider.refuse = False
    await drain(ctx, local(test_year, "11-02T10:01"))  # after the backoff
    [sent] = await smsc_rows(db, [m["message_id"]])
    assert sent["text"] == bill_notice_text(uid, "10.00")
    [done] = await log_of(db, made.product_id)
    assert (done["status"], done["attempts"]) == ("submitted", 2)


async def test_a_failed_submit_of_a_product_owing_nothing_of_its_own_is_cancelled(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    ctx, _, made, m = await _out_while_changed(
        db, uid, test_year, [0], refuse=True, kind=D.SUSPENSION_WARNING,
        outbox=Outbox(t.outbox))
    [after] = await log_of(db, made.product_id)
    assert (after["status"], after["status_reason"]) == ("cancelled", NOTHING_OWED_REASON)
    assert after["cancelled_at"] == local(test_year, "11-02T10:00")
    assert after["next_attempt_at"] is None and _pending(after) == (None, None, None, None)
    assert after["text"] == m["text"] and "0.00元" not in after["text"]
    [outcome] = await published(db, made.account_id)
    assert (outcome["decision_id"], outcome["status"]) == (made.decision_id, "cancelled")
    await drain(ctx, local(test_year, "11-02T10:05"))
    assert await smsc_rows(db, [m["message_id"]]) == []


@pytest.mark.parametrize("fen", [2_345, 0])
async def test_an_accepted_submit_drops_the_revision_it_was_given_while_out(
    db: AsyncEngine, uid: str, test_year: int, fen: int,
) -> None:
    """The SMSC took the text the message was claimed with: the log says what left."""
    _, _, made, m = await _out_while_changed(db, uid, test_year, [fen], refuse=False)
    [after] = await log_of(db, made.product_id)
    assert (after["status"], after["text"], after["revised_at"]) == (
        "submitted", m["text"], None)
    assert after["fields"] == m["fields"] and _pending(after) == (None, None, None, None)
    [sent] = await smsc_rows(db, [m["message_id"]])
    assert sent["text"] == bill_notice_text(uid, "123.45")


@pytest.mark.parametrize("fen", [2_345, 0])
async def test_a_claim_retaken_after_its_sender_died_goes_with_the_new_amount(
    db: AsyncEngine, uid: str, test_year: int, fen: int,
) -> None:
    """Claimed, the sender dies before the SMSC answered; the change arrives meanwhile; the
    claim is retaken after the claim timeout: with the new amount, or cancelled."""
    clock = FixedClock(local(test_year, "11-02T10:00"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, D.BILL_NOTICE, at=local(test_year, "11-02T10:00")))
    [m] = await log_of(db, notice.product.product_id)
    async with db.begin() as conn:  # what the dead sender's claim left
        await conn.execute(text(
            "UPDATE notifier.messages SET status = 'sending', attempts = 1, claimed_at = :at "
            "WHERE message_id = :m"), {"m": m["message_id"], "at": clock.now()})
    await receive(ctx, amount_changed(notice, fen, local(test_year, "11-02T10:00")))
    [out] = await log_of(db, notice.product.product_id)
    assert (out["status"], out["text"], out["revised_at"]) == ("sending", m["text"], None)
    assert out["pending_reason"] == (None if fen else NOTHING_OWED_REASON)
    await drain(ctx, local(test_year, "11-02T10:02"))  # past the 60 s claim timeout
    [after] = await log_of(db, notice.product.product_id)
    assert _pending(after) == (None, None, None, None)
    if fen:
        assert (after["status"], after["attempts"]) == ("submitted", 2)
        [sent] = await smsc_rows(db, [m["message_id"]])
        assert sent["text"] == after["text"] == bill_notice_text(uid, "23.45")
    else:
        assert (after["status"], after["status_reason"]) == ("cancelled", NOTHING_OWED_REASON)
        assert await smsc_rows(db, [m["message_id"]]) == []
