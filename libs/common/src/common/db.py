"""Async SQLAlchemy engine helpers, and which errors are worth retrying."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


# SQLSTATEs that say "try again", not "this event is bad": serialization failure, deadlock,
# lock timeout, admin shutdown / crash / cannot connect now, too many connections.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"}


def is_transient(exc: BaseException) -> bool:
    """Errors after which the same work may well succeed: the database or Kafka was away, or
    a concurrent transaction won. Anything else is a property of the input itself."""
    if isinstance(exc, KafkaError):
        return True
    if isinstance(exc, OSError | TimeoutError | InterfaceError | OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        codes = {getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None),
                 getattr(getattr(orig, "__cause__", None), "sqlstate", None)}
        return bool(codes & _TRANSIENT_SQLSTATES)
    return False


T = TypeVar("T")
log = logging.getLogger(__name__)


async def retrying(work: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run a unit of work again after a transient error (e.g. PostgreSQL broke a deadlock)."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning("transient %s, attempt %d: retrying", type(exc).__name__, attempt)
            await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
