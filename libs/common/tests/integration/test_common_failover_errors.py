"""What a PostgreSQL failover looks like to the services, made real on the ordinary stack: a
write refused because the transaction became read-only (SQLSTATE 25006, what a demoted
primary answers) and a backend terminated by an administrator (57P01, what the old primary's
connections get). Both must be infrastructure errors (retried without limit, never
dead-lettered) and a 503 for a request; a consumer whose writes keep failing read-only more
often than its attempts budget still applies every event once and dead-letters none.
The ha stack's own fault suite (tests/chaos_ha) does the same with a real failover."""

import uuid

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import metrics
from common.db import DriverStatement, is_event_error, is_failover_error, is_infrastructure_error
from common.envelope import Contract, RawEnvelope
from common.http import database_unavailable
from common.kafka import Publisher, dead_letter_topic, ensure_topics
from common.testing.stack import Stack

from .test_common_plumbing import Pinged, Tables, consume_until, ping, read_all

pytestmark = [pytest.mark.integration]


async def _read_only_error(db: AsyncEngine, tables: Tables, *, driver: bool) -> BaseException:
    async with db.connect() as conn:
        await conn.execute(text("SET transaction_read_only = on"))
        try:
            if driver:
                await DriverStatement(
                    f'INSERT INTO "{tables.effects.schema}".effects (event_id, n) '
                    "VALUES (:e, :n)").execute(conn, {"e": "x", "n": "1"})
            else:
                await conn.execute(insert(tables.effects).values(event_id="x", n="1"))
        except Exception as exc:
            return exc
    raise AssertionError("a read-only transaction accepted a write")


@pytest.mark.parametrize("driver", [False, True], ids=["sqlalchemy", "asyncpg"])
async def test_a_read_only_refusal_is_an_infrastructure_error(
    db: AsyncEngine, tables: Tables, driver: bool,
) -> None:
    exc = await _read_only_error(db, tables, driver=driver)
    assert "read-only transaction" in str(exc)
    assert is_failover_error(exc)
    assert is_infrastructure_error(exc)
    assert not is_event_error(exc)
    assert database_unavailable(exc)  # a request gets 503 + Retry-After, not a 500


async def test_a_terminated_backend_is_an_infrastructure_error(db: AsyncEngine) -> None:
    async with db.connect() as victim:
        pid = await victim.scalar(text("SELECT pg_backend_pid()"))
        async with db.connect() as admin:
            assert await admin.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(Exception) as caught:
            await victim.execute(text("SELECT 1"))
    assert is_failover_error(caught.value), repr(caught.value)
    assert is_infrastructure_error(caught.value)
    assert not is_event_error(caught.value)
    assert database_unavailable(caught.value)


async def test_a_terminated_backend_under_a_counted_transaction_keeps_its_own_error(
        db: AsyncEngine) -> None:
    """A transaction with a count waiting for its commit (`metrics.on_commit`, as every
    consumer's batch has) whose backend is terminated: the transaction ends with the
    termination's own error, an infrastructure error, and the count is dropped. The rollback
    listener once asked the invalidated connection for its `info`, and the PendingRollbackError
    that raised took the place of the termination's error: not an infrastructure error, so a
    consumer counted it towards a dead letter (seen when this file ran after a suite that had
    hooked the listeners on the shared engine)."""
    counted: list[str] = []
    with pytest.raises(Exception) as caught:
        async with db.begin() as victim:
            metrics.on_commit(victim, lambda: counted.append("committed"))
            pid = await victim.scalar(text("SELECT pg_backend_pid()"))
            async with db.connect() as admin:
                assert await admin.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await victim.execute(text("SELECT 1"))
    assert is_infrastructure_error(caught.value), repr(caught.value)
    assert not isinstance(caught.value, PendingRollbackError)
    assert counted == []


def test_a_bug_that_mentions_a_failover_is_not_one() -> None:
    assert not is_failover_error(RuntimeError("the database is read-only after a failover"))
    assert not is_failover_error(ValueError("month 13"))


async def test_writes_refused_read_only_longer_than_the_attempts_budget_are_never_dead_lettered(
    stack: Stack, db: AsyncEngine, tables: Tables, publisher: Publisher,
) -> None:
    """7 refusals > consumer_max_attempts (5): a bug would be dead-lettered by then; a
    failover must only make the partition wait."""
    topic = f"test.failover.{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack.kafka_bootstrap, [topic], partitions=1)
    await publisher.send_many([(topic, b"k", ping(n, "k")) for n in range(6)])
    refusals = {"left": 7}

    async def demoted(conn: AsyncConnection, env: RawEnvelope, payload: Contract) -> None:
        assert isinstance(payload, Pinged)
        if payload.n == 3 and refusals["left"] > 0:
            refusals["left"] -= 1
            await conn.execute(text("SET LOCAL transaction_read_only = on"))
        await conn.execute(insert(tables.effects).values(event_id=str(env.event_id),
                                                         n=str(payload.n)))

    applied = await consume_until(stack, db, tables, publisher, topic, demoted, effects=6)
    assert sorted(applied, key=int) == [str(n) for n in range(6)]
    assert refusals["left"] == 0
    assert await read_all(stack, dead_letter_topic(topic)) == []
