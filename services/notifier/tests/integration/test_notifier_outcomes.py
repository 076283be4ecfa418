"""Notice outcomes on real PostgreSQL (domain/outcomes.py, service_layer/outcomes.py): what
became of a suspension warning goes into the outbox for `notifier.notices.v1`, each
(decision, status) once, in business time; other templates publish nothing."""

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import BUSINESS_TZ, FixedClock
from common.contracts.credit_control import CreditState, DecisionType
from common.outbox import Outbox
from notifier.adapters import tables as t
from notifier.service_layer.receipts import deliver_smsc_receipts, time_out_receipts

from .notifier_fixtures import context_for, decision, drain, local, make_ctx, receive

pytestmark = [pytest.mark.integration]
D, S = DecisionType, CreditState


async def published(db: AsyncEngine, account_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT payload FROM notifier.outbox WHERE topic = 'notifier.notices.v1' "
            "AND key = :k ORDER BY id"), {"k": account_id})
        return [orjson.loads(r.payload)["payload"] for r in rows]


async def test_a_suspension_warning_is_published_sent_then_delivered_once(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-25T20:00"))
    ctx = make_ctx(db, clock, outbox=Outbox(t.outbox))
    notice = context_for(uid, test_year, contacts=("13800000001", "13800000002"))
    warning = decision(notice, D.SUSPENSION_WARNING, at=local(test_year, "11-25T20:00"),
                       after=S.SUSPENSION_WARNED)
    await receive(ctx, decision(notice, D.BILL_NOTICE))  # before it: a newer one supersedes
    await receive(ctx, warning)
    await drain(ctx)
    clock.advance(timedelta(seconds=1))
    await deliver_smsc_receipts(ctx)
    await receive(ctx, warning)  # redelivered: nothing new
    await drain(ctx)
    await deliver_smsc_receipts(ctx)
    got = await published(db, warning.account_id)
    assert [(p["decision_id"], p["status"], p["template"]) for p in got] == [
        (warning.decision_id, "sent", "suspension_warning"),
        (warning.decision_id, "delivered", "suspension_warning")]  # no bill_notice
    delivered = got[1]
    assert delivered["product_id"] == notice.product.product_id
    # the decision's business time plus the moment the receipt took
    at = datetime.fromisoformat(delivered["at"]).astimezone(BUSINESS_TZ)
    decided = local(test_year, "11-25T20:00")
    assert decided < at < decided + timedelta(seconds=2), delivered


async def test_undeliverable_everywhere_fails_for_good(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-25T20:00"))
    ctx = make_ctx(db, clock, outbox=Outbox(t.outbox))
    notice = context_for(uid, test_year, contacts=("12345",))
    warning = decision(notice, D.SUSPENSION_WARNING, at=local(test_year, "11-25T20:00"),
                       after=S.SUSPENSION_WARNED)
    await receive(ctx, warning)
    [failed] = await published(db, warning.account_id)
    assert (failed["status"], failed["permanent"]) == ("failed", True)
    assert "malformed phone number" in failed["reason"]


async def test_an_exempt_products_warning_is_cancelled(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    clock = FixedClock(local(test_year, "11-25T20:00"))
    ctx = make_ctx(db, clock, outbox=Outbox(t.outbox))
    notice = context_for(uid, test_year, exempt=True)
    warning = decision(notice, D.SUSPENSION_WARNING, at=local(test_year, "11-25T20:00"),
                       after=S.SUSPENSION_WARNED)
    await receive(ctx, warning)
    [cancelled] = await published(db, warning.account_id)
    assert (cancelled["status"], cancelled["permanent"]) == ("cancelled", False)
    assert cancelled["reason"] == "exempt: no suspension will follow"


async def test_no_receipt_within_the_timeout_is_published_failed_once_across_restarts(
    db: AsyncEngine, uid: str, test_year: int,
) -> None:
    """The SMSC accepts the warning but its receipt never comes: `receipt_timeout` after the
    submit (business time) the notice is published `failed`, not permanent, with its reason,
    once, whoever scans (a restarted notifier: a new context on the same database), and a
    receipt that comes after it adds `delivered`, not a second `failed`."""
    clock = FixedClock(local(test_year, "11-25T20:00"))
    ctx = make_ctx(db, clock, outbox=Outbox(t.outbox), receipt_timeout=timedelta(hours=1))
    assert ctx.smsc is not None
    ctx.smsc.faults = ctx.smsc.faults.model_copy(update={"receipt_delay_s": 7200})
    notice = context_for(uid, test_year, contacts=("13800000001", "13800000002"))
    warning = decision(notice, D.SUSPENSION_WARNING, at=local(test_year, "11-25T20:00"),
                       after=S.SUSPENSION_WARNED)
    await receive(ctx, warning)
    await drain(ctx)
    clock.advance(timedelta(minutes=59))
    await time_out_receipts(ctx)
    assert [p["status"] for p in await published(db, warning.account_id)] == ["sent"]

    clock.advance(timedelta(minutes=2))  # 61 minutes after the submit
    assert await time_out_receipts(ctx) >= 1
    restarted = make_ctx(db, clock, outbox=Outbox(t.outbox),
                         receipt_timeout=timedelta(hours=1))
    await time_out_receipts(restarted)
    await time_out_receipts(ctx)
    got = await published(db, warning.account_id)
    assert [p["status"] for p in got] == ["sent", "failed"]
    failed = got[1]
    assert not failed["permanent"] and failed["decision_id"] == warning.decision_id
    assert failed["reason"] == ("no delivery receipt within 3600 s of the SMSC accepting it "
                                "(receipt timeout)")
    at = datetime.fromisoformat(failed["at"]).astimezone(BUSINESS_TZ)
    decided = local(test_year, "11-25T20:00")
    assert decided + timedelta(hours=1) <= at < decided + timedelta(hours=1, seconds=5), failed

    clock.advance(timedelta(hours=2))  # the receipt comes after all
    await deliver_smsc_receipts(ctx)
    await time_out_receipts(ctx)
    assert [p["status"] for p in await published(db, warning.account_id)] == [
        "sent", "failed", "delivered"]
