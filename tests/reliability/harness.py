"""What the fault suite does between faults: wait until the system is quiescent (outboxes
empty, every consumer group caught up, SMS sent, chain commands finished), inject poison,
replay a slice of a topic, restart the broker or the database."""

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.contracts import (
    BALANCE_TOPIC,
    COMMANDS_TOPIC,
    DECISIONS_TOPIC,
    NOTICES_TOPIC,
    RESULTS_TOPIC,
)
from common.kafka import dead_letter_topic
from common.testing.groups import group_lag
from common.testing.notices import notices_heard

from .bounded_poison import bounded_poison
from .invariants.topics import read_topic

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ("billing", "credit", "notifier", "gateway")
# consumer group (= the service's name) → the topics it consumes
GROUPS = {"credit-control": (BALANCE_TOPIC, RESULTS_TOPIC, NOTICES_TOPIC),
          "notifier": (DECISIONS_TOPIC,),
          "gateway-adapter": (COMMANDS_TOPIC,), "billing-events": (DECISIONS_TOPIC,)}
CONSUMED = (BALANCE_TOPIC, DECISIONS_TOPIC, COMMANDS_TOPIC, RESULTS_TOPIC)


async def backlog(db: AsyncEngine, prefix: str) -> dict[str, int]:
    """What is still moving; all zero = quiescent."""
    found: dict[str, int] = {}
    async with db.connect() as conn:
        for s in SCHEMAS:
            found[f"{s} outbox"] = int(await conn.scalar(text(
                f"SELECT count(*) FROM {s}.outbox_pending")) or 0)  # not yet relayed
        found["sms to send"] = int(await conn.scalar(text(
            "SELECT count(*) FROM notifier.messages WHERE status IN ('pending', 'sending') "
            "AND account_id LIKE :p"), {"p": prefix + "%"}) or 0)
        found["chain in flight"] = int(await conn.scalar(text(
            "SELECT count(*) FROM credit.product_credit WHERE family IN ('MAS', 'SMS_DIRECT') "
            "AND state IN ('suspend_requested', 'restore_requested') AND product_id LIKE :p"),
            {"p": prefix + "%"}) or 0)
    return found


async def consumer_lag(bootstrap: str) -> int:
    """Every group's committed offsets against the log end, summed, from the broker's own
    view (a group with no live member keeps its committed offsets, so a SIGKILLed and
    restarting consumer counts as behind until it has committed what it applied).

    The partitions come from the admin client's describe_topics: a fresh AIOKafkaConsumer
    has no topic metadata, and its `partitions_for_topic` returns None, which once made
    this sum 0 every time and "quiescent" return while credit-control was still rejoining
    its group after a SIGKILL (docs/reliability.md, "Found")."""
    lag = 0
    for group, topics in GROUPS.items():
        lag += sum((await group_lag(bootstrap, group, list(topics))).values())
    return lag


async def quiescent(db: AsyncEngine, bootstrap: str, credit: httpx.AsyncClient, prefix: str,
                    timeout: float = 1200) -> float:
    """Wait until nothing moves (twice in a row); returns the seconds it took. Chain
    attempts that failed are retried as the credit-control loop would after its backoff."""
    started = time.monotonic()
    calm = 0
    last: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        try:
            last = await backlog(db, prefix)
            last["consumer lag"] = await consumer_lag(bootstrap)
            # A suspension warning's SMS still to be delivered: the next sweep would wait.
            last["notices in flight"] = await notices_heard(db, timeout=0, product_prefix=prefix)
        except Exception as exc:  # the broker or the database is still coming back
            last = {"error": 1}
            print(f"quiescent: {exc!r}")
        if last.get("chain in flight"):
            await _retry_chain(credit)
        calm = calm + 1 if not any(last.values()) else 0
        if calm >= 2:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"not quiescent after {timeout}s: {last}")


async def _retry_chain(credit: httpx.AsyncClient) -> None:
    # Ahead of the backoff (60 s, 120 s) but inside the attempt timeout (300 s): failed
    # attempts are resent now, attempts still running are left alone.
    as_of = datetime.now(UTC) + timedelta(seconds=130)
    with contextlib.suppress(httpx.TransportError):
        await credit.post("/v1/provisioning/retries", json={"as_of": as_of.isoformat()})


def stack_verb(verb: str) -> float:
    """kafka-restart / pg-restart on the stack the tests run against; returns its seconds."""
    started = time.monotonic()
    subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), verb], check=True,
                   capture_output=True, env=os.environ.copy())
    return time.monotonic() - started


# --- poison and replay ------------------------------------------------------------------

def poison_messages(topic: str, marker: str) -> list[tuple[str, bytes]]:
    """(what, bytes): bad JSON, unknown type, wrong schema version, oversized, then issue 14's
    valid-shaped poison (month 13, int64 overflows, 4 KB ids, a NUL: `what` is the field the
    dead letter's reason must name) and a message at the broker's size limit."""
    envelope = {"event_id": str(uuid.uuid4()), "source": "chaos", "correlation_id": marker,
                "occurred_at": "2030-01-01T00:00:00Z", "key": marker, "payload": {"m": marker}}
    return [
        ("bad json", f"{{{marker} not json".encode()),
        ("unknown type", orjson.dumps({**envelope, "type": "chaos.unknown", "schema_version": 1})),
        ("wrong schema version", orjson.dumps({**envelope, "event_id": str(uuid.uuid4()),
                                               "type": _type_of(topic), "schema_version": 99})),
        # Just under the broker's message.max.bytes (1 MB): bigger than any real event and
        # than the consumer's batch budget, and not an envelope.
        ("oversized", orjson.dumps({"marker": marker, "blob": "x" * 900_000})),
        *bounded_poison(topic, marker, uuid.uuid5(uuid.NAMESPACE_URL, marker).hex[:12]),
    ]


def _type_of(topic: str) -> str:
    return {BALANCE_TOPIC: "billing.balance_changed", DECISIONS_TOPIC: "credit.decision_made",
            COMMANDS_TOPIC: "provisioning.command", RESULTS_TOPIC: "provisioning.result"}[topic]


async def feed_poison(bootstrap: str, marker: str) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 * 1024 * 1024)
    await producer.start()
    sent = 0
    try:
        for topic in CONSUMED:
            for _, value in poison_messages(topic, marker):
                await producer.send_and_wait(topic, key=marker.encode(), value=value)
                sent += 1
    finally:
        await producer.stop()
    return sent


async def dead_lettered(bootstrap: str, marker: str) -> dict[str, list[str]]:
    """topic → the DLQ reasons of this marker's poison (one per source offset)."""
    found: dict[str, list[str]] = {}
    for topic in CONSUMED:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    max_partition_fetch_bytes=4 * 1024 * 1024)
        await consumer.start()
        try:
            dlq = dead_letter_topic(topic)
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or ()]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            by_offset: dict[str, str] = {}
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for m in records:
                        if (m.key or b"") == marker.encode():
                            h = {k: v.decode() for k, v in m.headers}
                            by_offset[h["dlq-source-offset"]] = h["dlq-reason"]
            found[topic] = sorted(by_offset.values())
        finally:
            await consumer.stop()
    return found


async def replay_slice(bootstrap: str, prefix: str, per_topic: int) -> int:
    """Produce again the first `per_topic` messages of this workload on every consumed topic:
    the same bytes, the same event ids, as a broker or a producer redelivering would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    sent = 0
    try:
        for topic in CONSUMED:
            for m in (await read_topic(bootstrap, topic, prefix))[:per_topic]:
                if m.envelope is not None:
                    await producer.send_and_wait(topic, key=m.key.encode(),
                                                 value=orjson.dumps(m.envelope))
                    sent += 1
    finally:
        await producer.stop()
    return sent


def figures(name: str, events_in: int, faults: int, recovery_s: float,
            report: Any) -> dict[str, Any]:
    totals = report.totals()
    return {"scenario": name, "events_in": events_in, "faults_injected": faults,
            "recovery_s": round(recovery_s, 1), "lost": totals["lost"],
            "doubled": totals["doubled"], "wrong": totals["wrong"],
            "checked": {c.name: c.expected for c in report.checks}}
