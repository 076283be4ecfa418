"""Send-time re-check on real PostgreSQL: a message leaves only if its reason still holds.
Held reminders cancelled by a later payment or restore (the reason through GET /v1/messages),
superseded notices, the claim's own re-check, decision order per recipient, the paced release
of a backlog, no threat to an exempt product, the new texts exactly."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import CreditState, DecisionType
from common.http import create_app
from common.settings import DEV_TOKEN
from notifier.adapters import repository as repo
from notifier.config import Settings
from notifier.domain.pacing import TokenBucket
from notifier.domain.recheck import KIND_OF, ProductFacts, Queued, Recheck, cancel_reason
from notifier.domain.templates import TemplateName
from notifier.entrypoints.http import router
from notifier.service_layer.context import NotifierContext

from .notifier_fixtures import (
    collected,
    context_for,
    decision,
    drain,
    local,
    log_of,
    make_ctx,
    receive,
    restored,
    smsc_rows,
    suspended,
)

pytestmark = [pytest.mark.integration]
S, D = CreditState, DecisionType
CLEARED = "arrears cleared since the decision: the product is back to normal"


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _ready() -> dict[str, Any]:
    return {}


async def api_messages(ctx: NotifierContext, **params: str) -> list[dict[str, Any]]:
    """GET /v1/messages through the real router."""
    app: FastAPI = create_app(title="notifier", lifespan=_no_lifespan, readiness=_ready)
    app.include_router(router(ctx, Settings()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {DEV_TOKEN}"}) as client:
        got = await client.get("/v1/messages", params=params)
        assert got.status_code == 200, got.text
        return list(got.json())


def outcome(m: dict[str, Any]) -> tuple[str, str, str | None]:
    """template, status and, for a cancelled message, why (a sent one keeps its held note)."""
    return m["template"], m["status"], m["status_reason"] if m["status"] == "cancelled" else None


def night(year: int) -> FixedClock:
    return FixedClock(local(year, "11-25T22:00"))


async def test_a_payment_during_quiet_hours_cancels_the_held_reminders(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    clock = night(test_year)
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year)
    warned = decision(notice, D.SUSPENSION_WARNING, at=local(test_year, "11-25T22:00"))
    await receive(ctx, warned)
    [held] = await log_of(db, notice.product.product_id)
    assert held["status"] == "held"
    clock.set(local(test_year, "11-25T23:10"))
    await receive(ctx, decision(notice, D.ARREARS_CLEARED, at=local(test_year, "11-25T23:10"),
                                before=S.SUSPENSION_WARNED, after=S.NORMAL))
    # At once, in the consumer's transaction: visible before the window opens.
    got = await api_messages(ctx, product_id=notice.product.product_id, status="cancelled")
    assert [(m["template"], m["status"], m["status_reason"]) for m in got] == [
        ("suspension_warning", "cancelled", CLEARED)]
    assert got[0]["cancelled_at"] is not None
    await drain(ctx, local(test_year, "11-26T08:00"))
    assert await smsc_rows(db, [held["message_id"]]) == []


async def test_the_claim_re_checks_what_the_consumer_did_not_see(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    """The facts change without the consumer's own re-check (as if the event committed between
    the consumer's and the sender's statements): the claim cancels, never submits."""
    ctx = make_ctx(db, FixedClock(local(test_year, "11-25T10:00")))
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, D.WARNING, warning_level=2,
                                at=local(test_year, "11-25T10:00")))
    [m] = await log_of(db, notice.product.product_id)
    assert m["status"] == "pending"
    async with db.begin() as conn:
        [seq] = await repo.next_event_seqs(conn, 1)
        await repo.upsert_product_states(conn, {notice.product.product_id: (
            f"A{notice.product.product_id}",
            ProductFacts(S.NORMAL, seq, local(test_year, "11-25T10:01"), "d-paid",
                         normal_seq=seq))})
    await drain(ctx)
    [m] = await log_of(db, notice.product.product_id)
    assert (m["status"], m["status_reason"], m["attempts"]) == ("cancelled", CLEARED, 0)
    assert await smsc_rows(db, [m["message_id"]]) == []


async def test_held_suspension_notice_cancelled_by_a_restore_and_restore_by_a_new_suspension(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    clock = night(test_year)
    ctx = make_ctx(db, clock)
    a = context_for(f"{uid}a", test_year)
    await receive(ctx, suspended(a, at=local(test_year, "11-25T22:00")))
    await drain(ctx, local(test_year, "11-25T22:00"))
    await receive(ctx, restored(a, at=local(test_year, "11-25T22:30")))
    b = context_for(f"{uid}b", test_year)
    await receive(ctx, restored(b, at=local(test_year, "11-25T22:00")))
    await receive(ctx, suspended(b, at=local(test_year, "11-25T22:40")))
    await drain(ctx, local(test_year, "11-26T08:00"))
    log_a = {outcome(m)
             for m in await log_of(db, a.product.product_id)}
    assert log_a == {
        # The manager's window is always open: B left at once, before the restore.
        ("suspension_notice_manager", "submitted", None),
        ("suspension_notice_contact", "cancelled", "restored since the decision"),
        ("restore_notice", "submitted", None),
    }
    log_b = {outcome(m)
             for m in await log_of(db, b.product.product_id)}
    assert log_b == {
        ("restore_notice", "cancelled", "suspended again since the restore"),
        ("suspension_notice_contact", "submitted", None),
        ("suspension_notice_manager", "submitted", None),
    }


async def test_a_newer_notice_supersedes_a_held_one_and_a_suspension_a_held_warning(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    ctx = make_ctx(db, night(test_year))
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, D.BILL_NOTICE, at=local(test_year, "11-25T22:00")))
    await receive(ctx, decision(notice, D.WARNING, warning_level=1,
                                at=local(test_year, "11-25T22:05"), before=S.WARNED))
    other = context_for(f"{uid}s", test_year)
    await receive(ctx, decision(other, D.SUSPENSION_WARNING, at=local(test_year, "11-25T22:00")))
    await receive(ctx, suspended(other, at=local(test_year, "11-25T23:00")))
    await drain(ctx, local(test_year, "11-26T08:00"))
    log = [outcome(m)
           for m in await log_of(db, notice.product.product_id)]
    assert log == [("bill_notice", "cancelled", "superseded by a newer notice: warning_1"),
                   ("warning_1", "submitted", None)]
    log = {outcome(m)
           for m in await log_of(db, other.product.product_id)}
    assert ("suspension_warning", "cancelled",
            "superseded: the product was suspended since the decision") in log
    assert ("suspension_notice_contact", "submitted", None) in log


async def test_a_recipient_gets_its_messages_in_decision_order_one_at_a_time(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    """Four held messages to one contact about one account (two products), received out of
    business-time order: at the opening they leave in decision order (as_of, then event
    order), one per minimum gap."""
    ctx = make_ctx(db, FixedClock(local(test_year, "11-25T23:59")), recipient_gap_s=30.0)
    phone = "1381" + uid[:7].translate(str.maketrans("abcdef", "123456"))
    account = f"A{uid}"
    p1 = context_for(f"{uid}1", test_year, contacts=(phone,))
    p2 = context_for(f"{uid}2", test_year, contacts=(phone,))
    events = [
        decision(p1, D.PAYMENT_REVERSED, at=local(test_year, "11-25T23:30")),
        decision(p2, D.BILL_NOTICE, at=local(test_year, "11-25T22:10")),
        collected(p2, 500, local(test_year, "11-25T22:10")),
        decision(p1, D.WARNING, warning_level=2, at=local(test_year, "11-25T22:20"),
                 before=S.WARNED),
    ]
    for event in events:
        await receive(ctx, msgspec.structs.replace(event, account_id=account))
    opening = local(test_year, "11-26T08:00")
    sent: list[str] = []
    for step in range(8):
        at = opening + timedelta(seconds=15 * step)
        await drain(ctx, at)
        rows = await _by_recipient(db, phone)
        sent = [r["template"] for r in rows if r["status"] == "submitted"]
        assert len(sent) == step // 2 + 1, (step, sent)  # one per 30 s
    assert sent == ["bill_notice", "deduction_notice", "warning_2", "payment_reversed_notice"]
    rows = await _by_recipient(db, phone)
    assert [r["submitted_at"] for r in rows] == [opening + timedelta(seconds=30 * i)
                                                 for i in range(4)]


async def _by_recipient(db: AsyncEngine, phone: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT template, status, submitted_at FROM notifier.messages WHERE recipient = :r "
            "ORDER BY submitted_at NULLS LAST, decision_as_of, event_seq"), {"r": phone})
        return [dict(r._mapping) for r in rows]


async def test_the_release_of_a_backlog_is_paced(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    """Held messages leave at most `rate` per second after a first burst."""
    # A night no other test uses: every held message due at its opening is this test's.
    ctx = make_ctx(db, FixedClock(local(test_year, "10-14T22:00")),
                   release_pacer=TokenBucket(2.0, 2))
    phones = [f"1382{uid[:5].translate(str.maketrans('abcdef', '123456'))}{i:02d}"
              for i in range(6)]
    for i, phone in enumerate(phones):
        notice = context_for(f"{uid}{i}", test_year, contacts=(phone,))
        await receive(ctx, decision(notice, at=local(test_year, "10-14T22:00")))
    opening = local(test_year, "10-15T08:00")

    async def submitted() -> int:
        async with db.connect() as conn:
            return int(await conn.scalar(text(
                "SELECT count(*) FROM notifier.messages WHERE recipient = ANY(:r) "
                "AND status = 'submitted'"), {"r": phones}) or 0)

    await drain(ctx, opening)
    assert await submitted() == 2
    await drain(ctx, opening + timedelta(seconds=0.4))
    assert await submitted() == 2
    await drain(ctx, opening + timedelta(seconds=1))
    assert await submitted() == 4
    await drain(ctx, opening + timedelta(seconds=2))
    assert await submitted() == 6


async def test_exempt_products_are_not_threatened(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-25T10:00")))
    notice = context_for(uid, test_year, exempt=True)
    at = local(test_year, "11-25T10:00")
    await receive(ctx, decision(notice, D.WARNING, warning_level=3, at=at))
    threat = decision(notice, D.SUSPENSION_WARNING, at=at, before=S.WARNED,
                      after=S.SUSPENSION_WARNED)
    await receive(ctx, threat)
    await drain(ctx, at)
    log = await log_of(db, notice.product.product_id)
    by_template = {m["template"]: m for m in log}
    assert by_template["warning_3_exempt"]["status"] == "submitted"
    assert by_template["warning_3_exempt"]["text"] == (
        f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})仍有123.45元欠费未缴清,"
        "此为第三次欠费提醒,请于11月25日前及时缴费。谢谢。")
    warning = by_template["suspension_warning"]
    assert (warning["status"], warning["status_reason"]) == (
        "cancelled", "exempt: no suspension will follow")
    assert await smsc_rows(db, [warning["message_id"]]) == []
    cancelled = await api_messages(ctx, product_id=notice.product.product_id,
                                   status="cancelled")
    assert [m["template"] for m in cancelled] == ["suspension_warning"]
    # What a decision made, by its id (credit-control's notice-before-suspension question).
    made = await api_messages(ctx, decision_id=threat.decision_id)
    assert [(m["template"], m["status"]) for m in made] == [("suspension_warning", "cancelled")]


async def test_payment_reversed_and_deduction_texts(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    at = local(test_year, "11-25T10:00")
    ctx = make_ctx(db, FixedClock(at))
    notice = context_for(uid, test_year)
    await receive(ctx, collected(notice, 5_000, at))
    await receive(ctx, decision(notice, D.PAYMENT_REVERSED, at=at, before=S.NORMAL))
    await drain(ctx, at)
    texts = {m["template"]: (m["status"], m["text"])
             for m in await log_of(db, notice.product.product_id)}
    head = f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})"
    assert texts == {
        "deduction_notice": ("submitted", head + f"的欠费已根据约定于{test_year}年11月25日"
                             "从您的预存款中划扣50.00元缴纳。如有疑问可咨询您的客户经理或10086,谢谢!"),
        "payment_reversed_notice": ("submitted", head + "此前的缴费已被冲正(退票),目前尚有123.45元"
                                    "话费未缴清,请于11月25日前及时缴费以免影响您的集团产品服务。"
                                    "如有疑问可咨询您的客户经理或10086,谢谢!"),
    }


PARITY_FACTS = [
    None,
    ProductFacts(S.WARNED, 10, local(2026, "11-25T10:00"), "d"),
    ProductFacts(S.NORMAL, 10, local(2026, "11-25T10:00"), "d", normal_seq=4),
    ProductFacts(S.SUSPENDED, 10, local(2026, "11-25T10:00"), "d", normal_seq=2,
                 suspended_seq=4),
    ProductFacts(S.WARNED, 10, local(2026, "11-25T10:00"), "d", suspension_exempt=True),
]


@pytest.mark.parametrize("known", PARITY_FACTS, ids=range(len(PARITY_FACTS)))
async def test_the_claim_sql_and_the_pure_rules_agree(
    db: AsyncEngine, uid: str, known: ProductFacts | None
) -> None:
    """Every template at event numbers around the facts' moments, with newer messages of
    each kind (one cancelled): Postgres's reason is cancel_reason's, message by message."""
    product, phone = f"P{uid}", "13800000001"
    rows = [(f"{uid}-{t.value}-{seq}", t, seq, "pending")
            for seq in (1, 3, 5) for t in TemplateName]
    rows[-1] = (rows[-1][0], rows[-1][1], rows[-1][2], "cancelled")
    async with db.connect() as conn, conn.begin() as trans:  # rolled back: no stray messages
        await conn.execute(text(
            "INSERT INTO notifier.messages (message_id, source_id, product_id, account_id, "
            "template, role, recipient_name, recipient, text, segments, status, event_seq, "
            "recheck) SELECT id, 's', :p, :a, t, 'group_contact', 'n', :r, 'x', 1, st, seq, k "
            "FROM unnest(CAST(:ids AS text[]), CAST(:ts AS text[]), CAST(:seqs AS bigint[]), "
            "  CAST(:sts AS text[]), CAST(:ks AS text[])) AS v(id, t, seq, st, k)"),
            {"p": product, "a": f"A{uid}", "r": phone, "ids": [r[0] for r in rows],
             "ts": [r[1].value for r in rows], "seqs": [r[2] for r in rows],
             "sts": [r[3] for r in rows], "ks": [KIND_OF[r[1]].value for r in rows]})
        if known is not None:
            await repo.upsert_product_states(conn, {product: (f"A{uid}", known)})
        got = dict((await conn.execute(text(
            f"SELECT m.message_id, {repo.CANCEL_REASON_SQL} FROM notifier.messages m "
            "LEFT JOIN notifier.product_states p ON p.product_id = m.product_id "
            "WHERE m.product_id = :p"), {"p": product})).all())
        await trans.rollback()
    for message_id, template, seq, _ in rows:
        expected = cancel_reason(Queued(template, seq, _newest_first(rows, seq)), known)
        assert got[message_id] == expected, (template, seq)


def _newest_first(rows: list[tuple[str, TemplateName, int, str]],
                  seq: int) -> tuple[tuple[Recheck, TemplateName], ...]:
    """The newer, not cancelled messages, newest first (the SQL names the newest)."""
    newer = sorted(((s, t.value, t) for _, t, s, st in rows if s > seq and st != "cancelled"),
                   key=lambda x: (-x[0], x[1]))
    return tuple((KIND_OF[t], t) for _, _, t in newer)
