"""The pipelined outbox relay against a real Kafka and PostgreSQL: each key's events arrive in
order while batches are in flight and writers commit concurrently; a relay killed mid-run
loses nothing (what it had in flight is sent again); a row of several messages (of one key,
or of mixed keys as the month-end sweep writes them) goes out as its messages, each with its
key, and the view `outbox_messages` reads them back; retention prunes only what was
published and is old enough."""

import asyncio
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.envelope import Contract, wrap
from common.kafka import Publisher, ensure_topics
from common.outbox import Outbox, OutboxRelay, OutboxRow, envelope_row, packed
from common.testing.polling import eventually
from common.testing.stack import Stack

pytestmark = [pytest.mark.integration]


class Counted(Contract):
    event_type: ClassVar[str] = "test.counted"
    topic: ClassVar[str] = "test.counted.v1"
    n: int
    note: str = ""  # text to escape (the view's bytes)


@pytest.fixture
async def topic(stack: Stack) -> str:
    name = f"test.relay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [name], partitions=3)
    return name


async def write(db: AsyncEngine, outbox: Outbox, topic: str, key: str, ns: range) -> None:
    async with db.begin() as conn:
        await outbox.add_rows(conn, [envelope_row(topic, wrap(
            Counted(n=n), key=key, source="test", occurred_at=datetime.now(UTC))) for n in ns])


async def read_topic(stack: Stack, topic: str, expected: int) -> list[Any]:
    """Every message on the topic (at least `expected`), in partition and offset order."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap,
                                group_id=f"r-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[Any] = []
        idle = 0
        while idle < 3 or len(found) < expected:
            batch = await consumer.getmany(timeout_ms=1000)
            idle = 0 if batch else idle + 1
            found += [m for ms in batch.values() for m in ms]
            if idle > 30:
                break
        return sorted(found, key=lambda m: (m.partition, m.offset))
    finally:
        await consumer.stop()


def first_copies_per_key(messages: list[Any]) -> dict[str, list[int]]:
    """Each key's n in the order its events first arrived (a consumer's inbox drops copies)."""
    seen: set[str] = set()
    per_key: dict[str, list[int]] = {}
    for m in messages:
        envelope = orjson.loads(m.value)
        if envelope["event_id"] in seen:
            continue
        seen.add(envelope["event_id"])
        per_key.setdefault(m.key.decode(), []).append(envelope["payload"]["n"])
    return per_key


async def test_each_keys_order_holds_with_batches_in_flight_and_writers_committing(
    stack: Stack, db: AsyncEngine, outbox: Outbox, publisher: Publisher, topic: str
) -> None:
    keys, per_key, per_tx = [f"acct-{k}" for k in range(8)], 300, 7
    await write(db, outbox, topic, keys[0], range(0, 50))  # a backlog before it starts
    relay = OutboxRelay(db, outbox, publisher, batch_size=40, pipeline=4, idle_poll_s=0.02)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))

    async def writer(key: str, start: int) -> None:  # one key's transactions, one after another
        for n in range(start, per_key, per_tx):
            await write(db, outbox, topic, key, range(n, min(n + per_tx, per_key)))

    await asyncio.gather(*(writer(k, 50 if k == keys[0] else 0) for k in keys))
    await eventually(relay.backlog, lambda left: left == 0, timeout=120,
                     what="the relay drained the outbox")
    stop.set()
    await asyncio.wait_for(running, timeout=30)
    got = first_copies_per_key(await read_topic(stack, topic, len(keys) * per_key))
    assert got == {k: list(range(per_key)) for k in keys}


async def test_a_relay_killed_mid_run_loses_nothing_and_keeps_each_keys_order(
    stack: Stack, db: AsyncEngine, outbox: Outbox, publisher: Publisher, topic: str
) -> None:
    keys, per_key = [f"acct-{k}" for k in range(5)], 400
    for k in keys:
        await write(db, outbox, topic, k, range(per_key))
    total = len(keys) * per_key
    relay = OutboxRelay(db, outbox, publisher, batch_size=50, pipeline=4)
    script = Path(__file__).with_name("relay_process.py")
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stack.database_url, stack.kafka_bootstrap, outbox.schema,
        stdout=asyncio.subprocess.DEVNULL)
    try:
        # Killed once it has published some, before it is done (batches in flight then).
        await eventually(relay.backlog, lambda left: left < total - 200, timeout=120,
                         what="the child relay published a few batches")
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), timeout=30)
    finally:
        if child.returncode is None:
            child.kill()
    left = await relay.backlog()
    assert 0 < left < total, "killed mid-run: some published, some not"
    # The rest, and what the dead relay had in flight (once the server dropped its session
    # and with it the leader lock and its open transactions).
    assert await eventually(relay.drain, lambda n: n > 0, timeout=30,
                            what="the lock of the dead relay released") == left
    messages = await read_topic(stack, topic, total)
    assert first_copies_per_key(messages) == {k: list(range(per_key)) for k in keys}
    assert len(messages) >= total  # at least once: copies of what was in flight are allowed


async def test_a_row_of_several_messages_is_published_as_its_messages_in_order(
    stack: Stack, db: AsyncEngine, outbox: Outbox, publisher: Publisher, topic: str
) -> None:
    keys = [f"prod-{k}" for k in range(4)]
    for tx in range(5):  # each transaction: three messages a key, interleaved, three a row
        rows = [envelope_row(topic, wrap(Counted(n=tx * 3 + i), key=k, source="test",
                                         occurred_at=datetime.now(UTC)))
                for i in range(3) for k in keys]
        async with db.begin() as conn:
            await outbox.add_rows(conn, packed(rows, size=3))
    async with db.connect() as conn:
        assert await conn.scalar(text(f'SELECT count(*) FROM "{outbox.schema}".outbox')) == 20
    relay = OutboxRelay(db, outbox, publisher, batch_size=3, pipeline=2)
    assert await relay.drain() == 60  # messages, not rows
    got = await read_topic(stack, topic, 60)
    assert len(got) == 60  # each message once, as a message of its own
    assert first_copies_per_key(got) == {k: list(range(15)) for k in keys}


async def test_a_group_of_mixed_keys_goes_out_each_message_with_its_own_key_in_order(
    stack: Stack, db: AsyncEngine, outbox: Outbox, publisher: Publisher, topic: str
) -> None:
    keys = [f"acct-{k}" for k in range(5)]
    rows = [envelope_row(topic, wrap(Counted(n=n), key=k, source="test",
                                     occurred_at=datetime.now(UTC)))
            for n in range(12) for k in keys]  # 60 messages, the keys interleaved
    async with db.begin() as conn:
        await outbox.add_rows(conn, packed(rows, size=3))  # 20 rows of mixed keys
    # A claim asks for `batch_size` messages' worth of rows once it has seen the rows' size:
    # the first claim 6 rows (18 messages), the next ones 2 rows (6 messages).
    relay = OutboxRelay(db, outbox, publisher, batch_size=6, pipeline=2)
    assert await relay.publish_once() == 18
    assert await relay.publish_once() == 6
    assert await relay.drain() == 36
    got = await read_topic(stack, topic, 60)
    assert len(got) == 60
    assert first_copies_per_key(got) == {k: list(range(12)) for k in keys}


async def test_the_view_reads_every_rows_messages_with_their_own_ids_keys_and_bytes(
    db: AsyncEngine, outbox: Outbox, topic: str
) -> None:
    def made(n: int, key: str, note: str = "") -> OutboxRow:
        return envelope_row(topic, wrap(Counted(n=n, note=note), key=key, source="test",
                                        occurred_at=datetime.now(UTC)))
    alone = made(1, "k1", note='停机 "A" \\ 通知')
    same_key = [made(2, "k2"), made(3, "k2")]
    mixed = [made(4, "k3"), made(5, "k4", note="开机"), made(6, "k3")]
    async with db.begin() as conn:
        await outbox.add_rows(conn, [alone, *packed(same_key), *packed(mixed)])
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            f'SELECT event_id, key, event_type, payload, position '
            f'FROM "{outbox.schema}".outbox_messages ORDER BY id, position'))).all()
        row_keys = (await conn.execute(text(
            f'SELECT key FROM "{outbox.schema}".outbox ORDER BY id'))).scalars().all()
    assert row_keys == ["k1", "k2", ""]  # one message; a group of one key; of mixed keys
    assert [(r.event_id, r.key, r.event_type, r.payload.encode(), r.position) for r in rows] == [
        (m.event_id, m.key, m.event_type, m.payload, i) for group in ([alone], same_key, mixed)
        for i, m in enumerate(group, start=1)]


async def test_a_malformed_group_goes_out_as_one_message_and_the_relay_goes_on(
    stack: Stack, db: AsyncEngine, outbox: Outbox, publisher: Publisher, topic: str
) -> None:
    await write(db, outbox, topic, "k", range(2))
    async with db.begin() as conn:  # no writer makes this: SQL by hand
        await conn.execute(text(
            f'INSERT INTO "{outbox.schema}".outbox (event_id, topic, key, event_type, payload) '
            "VALUES (gen_random_uuid(), :t, 'k', 'test.counted', '[{\"broken\"')"),
            {"t": topic})
    await write(db, outbox, topic, "k", range(2, 4))
    relay = OutboxRelay(db, outbox, publisher, batch_size=2)
    assert await relay.drain() == 5
    got = await read_topic(stack, topic, 5)
    assert [m.value for m in got][2] == b'[{"broken"'  # as it was: its consumers refuse it
    assert first_copies_per_key([m for m in got if m.value[:1] == b"{"]) == {"k": [0, 1, 2, 3]}


async def test_retention_prunes_published_rows_older_than_the_setting_in_chunks(
    db: AsyncEngine, outbox: Outbox, publisher: Publisher, topic: str
) -> None:
    await write(db, outbox, topic, "old", range(10))
    relay = OutboxRelay(db, outbox, publisher, batch_size=100)
    assert await relay.drain() == 10
    await write(db, outbox, topic, "old-but-unpublished", range(4))
    await write(db, outbox, topic, "new", range(3))
    s = outbox.schema
    async with db.begin() as conn:
        await conn.execute(text(
            f'UPDATE "{s}".outbox SET created_at = now() - interval \'8 days\' '
            "WHERE key IN ('old', 'old-but-unpublished')"))
    assert await relay.prune(older_than_days=7, chunk=3) == 10  # 4 chunks of ≤ 3
    async with db.connect() as conn:
        left = (await conn.execute(text(
            f'SELECT key, count(*) FROM "{s}".outbox GROUP BY key ORDER BY key'))).all()
    assert [tuple(r) for r in left] == [("new", 3), ("old-but-unpublished", 4)]
    assert await relay.backlog() == 7  # neither pruned nor published yet
