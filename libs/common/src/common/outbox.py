"""Transactional outbox: events are rows written with the state change, published later.

A relay publishes unpublished rows in id order with an idempotent producer and marks them.
A crash between send and mark republishes a row; consumers' inboxes absorb that.
Only one relay per schema works at a time (an advisory lock), so per-key order is kept even
when several instances of a service run.
"""

import asyncio
import logging
import zlib
from typing import Any

from sqlalchemy import BigInteger, Table, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common import metrics
from common.db import delete_in_chunks
from common.envelope import Envelope, to_bytes
from common.kafka import Publisher
from common.wakeup import idle_until_woken

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.wake = asyncio.Event()

    async def add(self, conn: AsyncConnection, topic: str, envelope: Envelope[Any]) -> None:
        await self.add_many(conn, [(topic, envelope)])

    async def add_many(
        self, conn: AsyncConnection, events: list[tuple[str, Envelope[Any]]]
    ) -> None:
        if not events:
            return
        rows = [
            {
                "event_id": env.event_id,
                "topic": topic,
                "key": env.key,
                "event_type": env.type,
                "payload": to_bytes(env).decode(),
            }
            for topic, env in events
        ]
        await conn.execute(insert(self.table), rows)
        # Wake the relay of this process once the transaction had a chance to commit.
        asyncio.get_running_loop().call_later(0.001, self.wake.set)


class OutboxRelay:
    def __init__(
        self, engine: AsyncEngine, outbox: Outbox, publisher: Publisher, *,
        batch_size: int = 1000, idle_poll_s: float = 0.05,
    ) -> None:
        self._engine = engine
        self.outbox = outbox
        self._table = outbox.table
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._lock_id = zlib.crc32(f"outbox:{self._table.fullname}".encode())
        self.schema = self._table.schema or ""

    async def publish_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        t = self._table
        async with self._engine.begin() as conn:
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(self._lock_id))):
                return 0
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.topic, t.c.key, t.c.payload)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            await self._publisher.send_many(
                [(r.topic, r.key.encode(), r.payload.encode()) for r in rows]
            )
            # One array parameter, not an IN list: the same prepared statement whatever the
            # batch size (an IN list re-plans for every size).
            await conn.execute(
                update(t).where(t.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
                .values(published_at=func.now()),
                {"ids": [r.id for r in rows]},
            )
        metrics.OUTBOX_PUBLISHED.labels(self.schema).inc(len(rows))
        return len(rows)

    async def prune(self, older_than_days: int) -> int:
        """Delete published rows older than the retention, a chunk at a time."""
        t = self._table
        cutoff = func.now() - func.make_interval(0, 0, 0, older_than_days)
        return await delete_in_chunks(self._engine, lambda chunk: delete(t).where(
            t.c.id.in_(select(t.c.id).where(t.c.published_at < cutoff).limit(chunk)
                       .scalar_subquery())))

    async def backlog(self) -> int:
        t = self._table
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(t).where(t.c.published_at.is_(None))
            )
        return int(count or 0)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                published = await self.publish_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self._batch_size:
                await self._wait_for_work(stop)

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        await idle_until_woken(self.outbox.wake, self._idle_poll_s)
