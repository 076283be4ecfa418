"""Once and only once, with a real crash: the notifier runs as a process on real Kafka and
PostgreSQL, is SIGKILLed while batches are in flight at a slow SMSC, and restarted; then every
decision is delivered again (same events, and re-published decisions with new event ids).
Every message reaches the SMSC exactly once, and the log agrees with the SMSC."""

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts.credit_control import DECISIONS_TOPIC, DecisionType
from common.envelope import to_bytes, wrap
from common.kafka import Publisher, ensure_topics
from common.testing.polling import eventually
from common.testing.processes import ServiceProcesses, ServiceSpec
from common.testing.stack import Stack

from .notifier_fixtures import context_for, decision

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
DECISIONS = 120
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "uv.lock").exists())


async def _publish(stack: Stack, events: list[tuple[str, bytes, bytes]]) -> None:
    await ensure_topics(stack.kafka_bootstrap, [DECISIONS_TOPIC], partitions=6)
    publisher = Publisher(stack.kafka_bootstrap, "notifier-crash-test")
    await publisher.start()
    try:
        await publisher.send_many(events)
    finally:
        await publisher.stop()


async def _counts(db: AsyncEngine, uid: str) -> dict[str, int]:
    async with db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT count(*) AS messages, "
            "count(*) FILTER (WHERE m.status IN ('submitted', 'delivered')) AS sent, "
            "count(s.client_ref) AS at_smsc, coalesce(sum(s.submits), 0) AS submits, "
            "count(*) FILTER (WHERE s.smsc_message_id = m.provider_message_id) AS agree "
            "FROM notifier.messages m LEFT JOIN notifier.smsc_received s "
            "ON s.client_ref = m.message_id WHERE m.product_id LIKE :p"),
            {"p": f"P{uid}-%"})).one()
    return dict(row._mapping)


@pytest.mark.usefixtures("shared_notifier_paused")  # conftest.py
async def test_sigkill_mid_send_and_redelivery_never_send_twice(
    stack: Stack, db: AsyncEngine, uid: str, test_year: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = int(os.environ.get("CREDITCTL_TEST_BASE_PORT", "18100"))
    for name, value in {
        "NOTIFIER_SERVICE_NAME": f"notifier-crash-{uid}",  # its own consumer group and inbox
        "NOTIFIER_CUSTOMER_SENDING_HOURS": "00:00-24:00",  # the wall clock decides here
        "NOTIFIER_SMSC_LATENCY_S": "0.3",  # a slow acknowledgement: the crash window
        "NOTIFIER_SEND_BATCH_SIZE": "10",
        "NOTIFIER_SEND_CLAIM_TIMEOUT_S": "2",
    }.items():
        monkeypatch.setenv(name, value)
    procs = ServiceProcesses([ServiceSpec("notifier", "notifier", "NOTIFIER_", base + 13)],
                             stack, ROOT / "test-artifacts" / "logs-notifier-crash", "t")
    account = f"A{uid}"  # one key: one partition, so the sentinel comes after the duplicates
    made = [decision(context_for(f"{uid}-{i}", test_year), DecisionType.BILL_NOTICE)
            for i in range(DECISIONS)]
    now = datetime.now(UTC)
    envelopes = [wrap(msgspec.structs.replace(d, account_id=account), key=account,
                      source="credit-control", occurred_at=now) for d in made]
    first = [(DECISIONS_TOPIC, account.encode(), to_bytes(e)) for e in envelopes]
    await _publish(stack, first)

    procs.start("notifier")
    try:
        procs.wait_ready("notifier")
        at_kill = await eventually(lambda: _counts(db, uid), lambda c: c["at_smsc"] >= 30,
                                   timeout=60, interval=0.05, what="a few batches submitted")
        procs.kill("notifier")
        assert at_kill["at_smsc"] < DECISIONS, "the kill came too late to prove anything"

        procs.start("notifier")
        procs.wait_ready("notifier")
        await eventually(lambda: _counts(db, uid), lambda c: c["sent"] == DECISIONS,
                         timeout=90, what="every message sent after the restart")
        # Redelivery: the same events, and the same decisions re-published as new events;
        # then a sentinel behind them in the same partition.
        again = [(DECISIONS_TOPIC, account.encode(), to_bytes(wrap(
            msgspec.structs.replace(d, account_id=account), key=account,
            source="credit-control", occurred_at=now, event_id=uuid.uuid4()))) for d in made]
        sentinel = msgspec.structs.replace(decision(context_for(f"{uid}-s", test_year)),
                                           account_id=account)
        await _publish(stack, [*first, *again, (DECISIONS_TOPIC, account.encode(),
                                                to_bytes(wrap(sentinel, key=account,
                                                              source="credit-control",
                                                              occurred_at=now)))])
        final = await eventually(lambda: _counts(db, uid),
                                 lambda c: c["sent"] == DECISIONS + 1, timeout=90,
                                 what="the sentinel sent behind the duplicates")
    finally:
        procs.stop_all()
    assert final["messages"] == DECISIONS + 1  # one message per decision and contact
    assert final["at_smsc"] == DECISIONS + 1  # each reached the SMSC once
    assert final["agree"] == DECISIONS + 1  # the log names the SMSC's message id
    print(f"submits at the SMSC incl. resubmissions after the crash: {final['submits']}")
