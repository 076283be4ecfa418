"""notifier's use cases against real PostgreSQL: decisions in, held or sent at the right hour,
submitted once, retried then dead-lettered, receipts into the log, reminder timeliness."""

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import DecisionType
from notifier.service_layer.context import NotifierContext
from notifier.service_layer.queries import reminder_timeliness
from notifier.service_layer.receipts import deliver_smsc_receipts

from .notifier_fixtures import (
    context_for,
    decision,
    drain,
    local,
    log_of,
    make_ctx,
    receive,
    smsc_rows,
    suspended,
)

pytestmark = [pytest.mark.integration]


async def all_receipts(ctx: NotifierContext) -> None:
    """Every due receipt, including other runs' (a benchmark may have left many)."""
    while await deliver_smsc_receipts(ctx, limit=20_000):
        pass


async def test_messages_for_each_contact_and_the_manager_sent_once(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    clock = FixedClock(local(test_year, "11-30T10:00"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year, contacts=("13800000001", "13800000002", "138-bad", ""))
    event = suspended(notice)
    assert await receive(ctx, event) == 5
    assert await receive(ctx, event) == 5  # redelivered: the same ids, nothing new is written
    await drain(ctx)
    await drain(ctx)
    log = await log_of(db, notice.product.product_id)
    assert sorted((m["role"], m["recipient"], m["status"]) for m in log) == [
        ("account_manager", "13900000001", "submitted"),
        ("group_contact", "", "undeliverable"),
        ("group_contact", "138-bad", "undeliverable"),
        ("group_contact", "13800000001", "submitted"),
        ("group_contact", "13800000002", "submitted"),
    ]
    reasons = {m["recipient"]: m["status_reason"] for m in log if m["status"] == "undeliverable"}
    assert reasons == {"": "missing phone number",
                       "138-bad": "malformed phone number '138-bad': expected 11 digits "
                                  "starting 13-19"}
    sent = [m for m in log if m["status"] == "submitted"]
    at_smsc = await smsc_rows(db, [m["message_id"] for m in log])
    assert sorted(r["client_ref"] for r in at_smsc) == sorted(m["message_id"] for m in sent)
    assert all(r["submits"] == 1 for r in at_smsc)
    assert {m["provider_message_id"] for m in sent} == {r["smsc_message_id"] for r in at_smsc}
    assert all(m["segments"] == 2 and m["template_version"] == 1 and m["attempts"] == 1
               for m in sent)


async def test_quiet_hours_hold_customer_reminders_until_the_next_opening(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    clock = FixedClock(local(test_year, "11-30T21:30"))
    ctx = make_ctx(db, clock)
    notice = context_for(uid, test_year)
    await receive(ctx, suspended(notice, at=local(test_year, "11-30T21:30")))
    log = {m["role"]: m for m in await log_of(db, notice.product.product_id)}
    assert log["group_contact"]["status"] == "held"
    assert log["group_contact"]["next_attempt_at"] == local(test_year, "12-01T08:00")
    await drain(ctx, local(test_year, "11-30T21:31"))
    await drain(ctx, local(test_year, "12-01T07:59"))
    log = {m["role"]: m for m in await log_of(db, notice.product.product_id)}
    # The account manager's window is always open; the customer's waits for 08:00.
    assert log["account_manager"]["status"] == "submitted"
    assert log["account_manager"]["submitted_at"] == local(test_year, "11-30T21:31")
    assert log["group_contact"]["status"] == "held"
    await drain(ctx, local(test_year, "12-01T08:00"))
    log = {m["role"]: m for m in await log_of(db, notice.product.product_id)}
    assert log["group_contact"]["status"] == "submitted"
    assert log["group_contact"]["submitted_at"] == local(test_year, "12-01T08:00")


async def test_quiet_hours_follow_the_business_time_of_the_decision(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    """Decided at business 20:59: inside the window, it goes even if the sender comes round
    after closing. Decided at business 22:00 of a day long past (a back-dated run): its
    opening (08:00 the next day) is past on the wall clock, so it goes now. Decided at 22:00
    of a day ahead of the wall clock: it waits no longer than the quiet hours had left."""
    ctx = make_ctx(db, FixedClock(local(test_year, "11-25T21:00")))
    inside = context_for(f"{uid}a", test_year)
    await receive(ctx, decision(inside, DecisionType.SUSPENSION_WARNING,
                                at=local(test_year, "11-25T20:59")))
    await drain(ctx, local(test_year, "11-25T21:00"))
    [m] = await log_of(db, inside.product.product_id)
    assert m["status"] == "submitted"

    back_dated = context_for(f"{uid}b", test_year)
    await receive(ctx, decision(back_dated, at=local(test_year, "11-02T22:00")))
    [m] = await log_of(db, back_dated.product.product_id)
    assert (m["status"], m["next_attempt_at"]) == ("pending", local(test_year, "11-25T21:00"))

    ahead = context_for(f"{uid}c", test_year)
    await receive(ctx, decision(ahead, at=local(test_year, "12-10T22:00")))
    [m] = await log_of(db, ahead.product.product_id)
    # 10 hours of quiet hours left at the decision: held 10 hours from its receipt.
    assert (m["status"], m["next_attempt_at"]) == ("held", local(test_year, "11-26T07:00"))


async def test_failed_submits_back_off_then_are_dead_lettered(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    start = local(test_year, "11-25T10:00")
    ctx = make_ctx(db, FixedClock(start), send_max_attempts=3)
    assert ctx.smsc is not None
    bad, good = f"1370{uid[:7].translate(str.maketrans('abcdef', '123456'))}", "13800000001"
    ctx.smsc.faults = ctx.smsc.faults.model_copy(update={"fail_recipients": [bad]})
    notice = context_for(uid, test_year, contacts=(bad, good))
    await receive(ctx, decision(notice))
    await drain(ctx, start)
    log = {m["recipient"]: m for m in await log_of(db, notice.product.product_id)}
    assert log[good]["status"] == "submitted"
    assert log[bad]["status"] == "pending"
    assert log[bad]["attempts"] == 1
    assert log[bad]["next_attempt_at"] == start + timedelta(seconds=10)  # base 10 s
    assert log[bad]["last_error"] == "simulated SMSC refused the message"
    await drain(ctx, start + timedelta(seconds=9))  # still backing off
    assert (await log_of(db, notice.product.product_id))[0]["attempts"] == 1
    await drain(ctx, start + timedelta(seconds=10))
    log = {m["recipient"]: m for m in await log_of(db, notice.product.product_id)}
    assert (log[bad]["attempts"], log[bad]["next_attempt_at"]) == (
        2, start + timedelta(seconds=30))  # then 20 s
    await drain(ctx, start + timedelta(seconds=30))
    log = {m["recipient"]: m for m in await log_of(db, notice.product.product_id)}
    assert log[bad]["status"] == "dead_lettered"
    assert log[bad]["status_reason"] == (
        "gave up after 3 attempts: simulated SMSC refused the message")
    assert await smsc_rows(db, [log[bad]["message_id"]]) == []


async def test_an_smsc_that_is_down_fails_the_whole_batch_for_a_retry(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    start = local(test_year, "11-25T11:00")
    ctx = make_ctx(db, FixedClock(start))
    assert ctx.smsc is not None
    ctx.smsc.faults = ctx.smsc.faults.model_copy(update={"down": True})
    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice))
    await drain(ctx, start)
    [m] = await log_of(db, notice.product.product_id)
    assert (m["status"], m["last_error"]) == (
        "pending", "SmscUnavailable: simulated SMSC is down")
    ctx.smsc.faults = ctx.smsc.faults.model_copy(update={"down": False})
    await drain(ctx, start + timedelta(seconds=10))
    [m] = await log_of(db, notice.product.product_id)
    assert m["status"] == "submitted"


async def test_receipts_update_the_log(db: AsyncEngine, uid: str, test_year: int) -> None:
    start = local(test_year, "11-25T12:00")
    clock = FixedClock(start)
    ctx = make_ctx(db, clock)
    assert ctx.smsc is not None
    lost = "13700000002"
    ctx.smsc.faults = ctx.smsc.faults.model_copy(update={
        "receipt_delay_s": 5.0, "undeliverable_recipients": [lost]})
    notice = context_for(uid, test_year, contacts=("13800000001", lost))
    await receive(ctx, decision(notice))
    await drain(ctx, start)
    clock.set(start + timedelta(seconds=4))
    await deliver_smsc_receipts(ctx)
    assert {m["status"] for m in await log_of(db, notice.product.product_id)} == {"submitted"}
    clock.set(start + timedelta(seconds=5))
    await all_receipts(ctx)
    log = {m["recipient"]: m for m in await log_of(db, notice.product.product_id)}
    assert (log["13800000001"]["status"], log["13800000001"]["delivered_at"]) == (
        "delivered", start + timedelta(seconds=5))
    assert (log[lost]["status"], log[lost]["delivered_at"], log[lost]["status_reason"]) == (
        "rejected", None, "UNDELIV")


async def test_reminder_timeliness_per_bill_month(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    """Three bill notices for bill month 10: one delivered in time, one late (held overnight,
    10½ hours, past an 8-hour deadline), one to a malformed number only."""
    decided = local(test_year, "11-02T20:00")
    clock = FixedClock(decided)
    ctx = make_ctx(db, clock, reminder_deadline=timedelta(hours=8))
    assert ctx.smsc is not None
    ctx.smsc.faults = ctx.smsc.faults.model_copy(update={"receipt_delay_s": 60.0})
    month = f"{test_year}-10"
    before = await reminder_timeliness(ctx, month)
    # Other tests in the same run may decide for other months of the year: compare, not 0.
    other_month_before = await reminder_timeliness(ctx, f"{test_year}-09")
    on_time = context_for(f"{uid}a", test_year)
    await receive(ctx, decision(on_time), decided_at=decided)
    await drain(ctx, decided)
    clock.set(local(test_year, "11-02T21:30"))  # after hours: held till 08:00
    late = context_for(f"{uid}b", test_year)
    at = local(test_year, "11-02T21:30")
    await receive(ctx, decision(late, at=at), decided_at=at)
    nobody = context_for(f"{uid}c", test_year, contacts=("12345",))
    await receive(ctx, decision(nobody, at=at), decided_at=at)
    clock.set(local(test_year, "11-03T08:00"))
    await drain(ctx)
    clock.set(local(test_year, "11-03T09:00"))
    await all_receipts(ctx)
    after = await reminder_timeliness(ctx, month)
    assert (after["decisions"] - before["decisions"], after["timely"] - before["timely"]) == (3, 1)
    assert after["standard"] == 0.95
    assert after["deadline_hours"] == 8.0
    other_month = await reminder_timeliness(ctx, f"{test_year}-09")
    assert other_month["decisions"] == other_month_before["decisions"]


async def test_send_pending_claims_nothing_decided_in_quiet_hours(
    db: AsyncEngine, uid: str, test_year: int
) -> None:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-25T23:00")))
    ctx.windows = {role: ctx.windows[next(iter(ctx.windows))] for role in ctx.windows}
    notice = context_for(uid, test_year)
    await receive(ctx, suspended(notice, at=local(test_year, "11-25T23:00")))
    await drain(ctx)  # other tests' due messages may go; these wait for 08:00
    assert {m["status"] for m in await log_of(db, notice.product.product_id)} == {"held"}
