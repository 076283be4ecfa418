"""Nothing lost, nothing doubled: SIGKILL credit-control in the middle of a stream of balance
events, restart it, and check every event was applied exactly once in effect. And a poison
message on the balance topic goes to the dead-letter topic while later events still flow."""

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts import BALANCE_TOPIC
from common.kafka import dead_letter_topic
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses
from common.testing.stack import Stack

from .accounts import Group, applied_count, open_accounts, post, published_count

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ACCOUNTS = 40
PARTIAL_PAYMENTS = 5
CHARGE_FEN = 10_000
PARTIAL_FEN = 1_000
STRESS = Group("", "压力测试集团", "mid", manager_phone="13900000001",
               contact_phone="13800000001", manager_name="赵经理")


async def pay_everything(
    billing: httpx.AsyncClient, uid: str, accounts: list[str], year: int
) -> None:
    """5 partial payments per account, then the rest: every account ends with nothing due."""
    final_fen = CHARGE_FEN - PARTIAL_PAYMENTS * PARTIAL_FEN
    for n in range(PARTIAL_PAYMENTS + 1):
        amount = PARTIAL_FEN if n < PARTIAL_PAYMENTS else final_fen
        for account in accounts:
            await post(billing, "/v1/payments", {
                "payment_id": f"PAY{account}-{n}", "account_id": account, "amount_fen": amount,
                "paid_at": f"{year}-04-10T10:00:00+08:00"})


async def test_sigkill_mid_stream_loses_and_doubles_nothing(
    clients: dict[str, httpx.AsyncClient], services: ServiceProcesses, db: AsyncEngine, uid: str,
    test_year: int,
) -> None:
    billing = clients["billing-events"]
    year = test_year
    accounts = await open_accounts(billing, STRESS, uid, f"{year}-03", ACCOUNTS, CHARGE_FEN)
    await post(billing, "/v1/bill-runs", {"bill_run_id": f"BR{uid}", "bill_month": f"{year}-03",
                                          "as_of": f"{year}-04-02T09:00:00+08:00"})
    payer = asyncio.create_task(pay_everything(billing, uid, accounts, year))

    # Kill while credit-control has applied some of the stream but not all of it.
    # product added (master_data), charge, bill run, payments
    total = ACCOUNTS * (1 + 1 + 1 + PARTIAL_PAYMENTS + 1)
    at_kill = await eventually(lambda: applied_count(db, accounts), lambda n: n >= total // 3,
                               timeout=60, interval=0.05, what="a third of the stream applied")
    services.kill("credit-control")
    assert at_kill < total, "the kill came too late to prove anything"
    services.start("credit-control")
    services.wait_ready("credit-control")
    await payer

    assert await published_count(db, accounts) == total
    await eventually(lambda: applied_count(db, accounts), lambda n: n == total, timeout=90,
                     what="every balance event applied after the restart")
    async with db.connect() as conn:
        positions = dict((await conn.execute(text(
            "SELECT account_id, sequence FROM credit.account_positions WHERE account_id = ANY(:a)"),
            {"a": accounts})).all())
        sequences = dict((await conn.execute(text(
            "SELECT account_id, sequence FROM billing.accounts WHERE account_id = ANY(:a)"),
            {"a": accounts})).all())
        decisions = (await conn.execute(text(
            "SELECT decision, count(*) FROM credit.decisions WHERE account_id = ANY(:a) "
            "GROUP BY decision ORDER BY decision"), {"a": accounts})).all()
        published = (await conn.execute(text(
            "SELECT payload::jsonb #>> '{payload,decision}' AS d, count(*) "
            "FROM credit.outbox_messages "
            "WHERE event_type = 'credit.decision_made' AND key = ANY(:a) GROUP BY d ORDER BY d"),
            {"a": accounts})).all()
        states = (await conn.execute(text(
            "SELECT state, count(*) FROM credit.product_credit WHERE account_id = ANY(:a) "
            "GROUP BY state"), {"a": accounts})).all()
        sms = await conn.scalar(text(
            "SELECT count(*) FROM notifier.messages WHERE account_id = ANY(:a)"), {"a": accounts})
    assert positions == sequences  # the newest event of every account was applied
    expected = [("arrears_cleared", ACCOUNTS), ("bill_notice", ACCOUNTS)]
    assert [tuple(r) for r in decisions] == expected
    assert [tuple(r) for r in published] == expected  # and published once each
    assert [tuple(r) for r in states] == [("normal", ACCOUNTS)]
    await eventually(lambda: _count_sms(db, accounts), lambda n: n == ACCOUNTS,
                     what="one bill notice SMS per account")
    assert sms is not None and sms <= ACCOUNTS


async def _count_sms(db: AsyncEngine, accounts: list[str]) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text(
            "SELECT count(*) FROM notifier.messages WHERE account_id = ANY(:a)"),
            {"a": accounts}) or 0)


async def test_poison_message_goes_to_dead_letter_and_stream_goes_on(
    clients: dict[str, httpx.AsyncClient], stack: Stack, db: AsyncEngine, uid: str
) -> None:
    marker = f"poison-{uuid.uuid4()}"
    # Keyed like the account that follows, so the poison sits in the same partition before it.
    key = f"A{uid}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(BALANCE_TOPIC, key=key, value=f"{{{marker}".encode())
        await producer.send_and_wait(BALANCE_TOPIC, key=key, value=(
            b'{"event_id": "8e0c1f7e-0000-4000-8000-000000000000", "type": '
            b'"billing.balance_changed", "source": "x", "occurred_at": "2026-01-01T00:00:00Z", '
            b'"schema_version": 99, "key": "k", "payload": {"m": "' + marker.encode() + b'"}}'))
    finally:
        await producer.stop()

    # Later events still flow: a new account's charge reaches credit-control.
    billing = clients["billing-events"]
    await post(billing, "/v1/customers", {
        "customer_id": f"G{uid}", "name": "后续集团", "tier": "high",
        "account_manager": {"name": "钱经理", "phone": "13900000002"},
        "contacts": [{"name": "联系人", "phone": "13800000002"}]})
    await post(billing, "/v1/accounts", {"account_id": f"A{uid}", "customer_id": f"G{uid}"})
    await post(billing, "/v1/products", {"product_id": f"P{uid}", "account_id": f"A{uid}",
                                         "cpno": f"CP{uid}", "name": "移动办公", "family": "ADC"})
    await post(billing, "/v1/charges", {"charge_id": f"C{uid}", "account_id": f"A{uid}",
                                        "product_id": f"P{uid}", "bill_month": "2026-11",
                                        "amount_fen": 100})
    # the product's master_data event and the charge's
    await eventually(lambda: applied_count(db, [f"A{uid}"]), lambda n: n == 2,
                     what="the events after the poison applied")

    dead = await _dead_letters_with(stack, marker)
    # Dead-lettering is at least once (a retried batch sends again): count source offsets.
    by_offset = {dict(m.headers)["dlq-source-offset"]: m for m in dead}
    reasons = sorted(dict(m.headers)["dlq-reason"].decode() for m in by_offset.values())
    assert len(by_offset) == 2, reasons
    assert any("not an envelope" in r for r in reasons)
    assert any("schema_version 99" in r for r in reasons)


async def _dead_letters_with(stack: Stack, marker: str) -> list:  # type: ignore[type-arg]
    dlq = dead_letter_topic(BALANCE_TOPIC)
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found = []
        while await _behind(consumer, ends):
            batch = await consumer.getmany(timeout_ms=1000)
            found += [m for ms in batch.values() for m in ms if marker.encode() in (m.value or b"")]
        return found
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
