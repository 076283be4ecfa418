"""The inbox's batch claim against PostgreSQL: which positions of a batch are new.

The consumer runner applies exactly the positions `claim_many` returns (None: all of them),
so a wrong answer here applies a redelivery twice or drops a new event."""

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.inbox import AlreadyClaimed, Inbox

from .test_common_plumbing import Tables

pytestmark = [pytest.mark.integration]


async def _claim(db: AsyncEngine, inbox: Inbox, events: list[tuple[uuid.UUID, str]],
                 consumer: str = "c") -> list[int] | None:
    async with db.begin() as conn:
        return await inbox.claim_many(conn, consumer, events)


async def test_a_batch_of_new_events_is_all_fresh(db: AsyncEngine, tables: Tables) -> None:
    inbox = Inbox(tables.inbox)
    events = [(uuid.uuid4(), "t.a") for _ in range(5)]
    assert await _claim(db, inbox, events) is None
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(tables.inbox)) == 5


async def test_redeliveries_are_left_out_by_position(db: AsyncEngine, tables: Tables) -> None:
    inbox = Inbox(tables.inbox)
    seen = [(uuid.uuid4(), "t.a") for _ in range(3)]
    assert await _claim(db, inbox, seen) is None
    new = [(uuid.uuid4(), "t.a") for _ in range(3)]
    batch = [new[0], seen[1], new[1], seen[0], new[2], seen[2]]
    assert await _claim(db, inbox, batch) == [0, 2, 4]
    assert await _claim(db, inbox, batch) == []  # the whole batch again: nothing new
    # Another consumer has its own inbox keys: all new to it.
    assert await _claim(db, inbox, batch, consumer="other") is None


async def test_an_event_twice_in_one_batch_counts_at_its_first_position(
    db: AsyncEngine, tables: Tables
) -> None:
    inbox = Inbox(tables.inbox)
    a, b = uuid.uuid4(), uuid.uuid4()
    assert await _claim(db, inbox, [(a, "t.a"), (b, "t.a"), (a, "t.a")]) == [0, 1]


async def test_a_batch_of_several_topics(db: AsyncEngine, tables: Tables) -> None:
    inbox = Inbox(tables.inbox)
    seen = (uuid.uuid4(), "t.b")
    assert await _claim(db, inbox, [seen]) is None
    fresh = [(uuid.uuid4(), "t.a"), (uuid.uuid4(), "t.b")]
    assert await _claim(db, inbox, fresh) is None
    assert await _claim(db, inbox, [(uuid.uuid4(), "t.a"), seen, (uuid.uuid4(), "t.c")]) == [0, 2]
    async with db.connect() as conn:
        topics = (await conn.execute(select(tables.inbox.c.topic))).scalars().all()
    assert sorted(topics) == ["t.a", "t.a", "t.b", "t.b", "t.c"]


async def test_an_empty_batch_claims_nothing(db: AsyncEngine, tables: Tables) -> None:
    assert await _claim(db, Inbox(tables.inbox), []) is None


async def test_claim_new_claims_a_batch_of_new_events(db: AsyncEngine, tables: Tables) -> None:
    inbox = Inbox(tables.inbox)
    events = [(uuid.uuid4(), "t.a"), (uuid.uuid4(), "t.b"), (uuid.uuid4(), "t.a")]
    async with db.begin() as conn:
        await inbox.claim_new(conn, "c", events[:1])
        await inbox.claim_new(conn, "c", events[1:])
    assert await _claim(db, inbox, events) == []  # all claimed, each under its topic
    async with db.connect() as conn:
        topics = (await conn.execute(select(tables.inbox.c.topic).order_by(
            tables.inbox.c.topic))).scalars().all()
    assert topics == ["t.a", "t.a", "t.b"]


@pytest.mark.parametrize("twice", ["redelivered", "twice in the batch"])
async def test_claim_new_refuses_a_claimed_event_and_claims_nothing(
    db: AsyncEngine, tables: Tables, twice: str
) -> None:
    inbox = Inbox(tables.inbox)
    seen = (uuid.uuid4(), "t.a")
    if twice == "redelivered":
        assert await _claim(db, inbox, [seen]) is None
        batch = [(uuid.uuid4(), "t.a"), seen]
    else:
        batch = [(uuid.uuid4(), "t.a"), seen, seen]
    with pytest.raises(AlreadyClaimed):
        async with db.begin() as conn:
            await inbox.claim_new(conn, "c", batch)
    # The transaction was void: the new event is still unclaimed, and claim_many says so.
    expected = [0] if twice == "redelivered" else None
    assert await _claim(db, inbox, batch[:2]) == expected
