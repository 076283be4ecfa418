"""Async SQLAlchemy engine helpers, and which errors are worth retrying."""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import ValidationError
from sqlalchemy import Delete, event, text
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    InvalidatePoolError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from common.envelope import UnprocessableMessage
from common.pg_arrays import TEXT_FORM_TYPES, array_text, narrow_array_checks

# Every process that talks to PostgreSQL through this module: array parameters are checked
# in C (common.pg_arrays says why and what changes).
narrow_array_checks()

# A pooled connection given back less than this long ago is handed out without a ping.
PING_AFTER_IDLE_S = 0.5


# Every connection's: DateStyle ISO whatever the server's default, as SQL that writes a
# date as text (the sweep's decision ids, reasons and events: `(d)::text`, cheaper than
# to_char) relies on "2026-11-30". No JIT: the server compiles a statement whose estimated
# cost passes `jit_above_cost`, and the estimates of set-wise statements over tables without
# statistics yet (a new database, a table autovacuum has not analysed) pass it while the
# statement runs in milliseconds; the gateway's batch load spent 70–170 ms compiling each
# time it did (half its batches of 1,000 in a bench run), ~1 s of every 20,000 commands.
# The hot statements run in milliseconds, so a compile is never won back there; the few
# that scan much (reports) run seldom and are not worth unpredictable compile pauses either.
SERVER_SETTINGS = {"DateStyle": "ISO, YMD", "jit": "off"}


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    # hide_parameters: a failed statement's error (logged, or put in a dead letter's reason)
    # names no bound values, which may be customers' phone numbers and names.
    engine = create_async_engine(
        database_url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True,
        connect_args={"server_settings": SERVER_SETTINGS},
    )
    _ping_when_idle(engine)
    return engine


_LAST_USED = "creditctl_last_used"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pings a pooled connection at checkout only if it sat idle for `PING_AFTER_IDLE_S`
    (HikariCP's alive-bypass window). SQLAlchemy's `pool_pre_ping` pings at every checkout,
    and its asyncpg ping is three round trips (BEGIN, `;`, ROLLBACK): for a consumer that
    checks a connection out per batch, that was more than the batch's own statements when
    batches are small. A connection that worked a moment ago is as good as a ping's answer;
    one that died since fails its statement, which is an infrastructure error (retried by
    the consumers, 503 for a request) and invalidates it. A failed ping invalidates the whole
    pool, as `pool_pre_ping` does: after a database restart every pooled connection is dead."""
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    @event.listens_for(pool, "checkout")
    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used = record.info.get(_LAST_USED)
        if used is not None and time.monotonic() - used < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError(str(error)) from error
            raise

    @event.listens_for(pool, "checkin")
    def stamp(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, inside the caller's transaction: for the hot or
    large statements, whose rows would each cost a SQLAlchemy Row (asyncpg's records are
    made in C). SQLAlchemy's asyncpg adapter begins its transaction lazily, on the first
    statement; if none was sent yet, one is sent first, else a statement sent to the driver
    would run, and commit, on its own, outside the caller's transaction and its locks."""
    fairy = await conn.get_raw_connection()
    raw = fairy.driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        await _begin(conn, fairy.dbapi_connection, raw)
    return raw


async def _begin(conn: AsyncConnection, adapted: Any, raw: Any) -> None:
    """Begin the adapter's transaction as its first statement would, without one: a `SELECT
    1` through SQLAlchemy was a round trip and ~0.3 ms of CPU per consumer batch. Uses the
    adapter's own `_start_transaction` (SQLAlchemy 2.x's asyncpg dialect: the BEGIN with the
    connection's isolation level, tracked so COMMIT and ROLLBACK go where they should); if
    an upgrade removes it, or it began nothing, the statement does it."""
    start = getattr(adapted, "_start_transaction", None)
    if start is not None and getattr(adapted, "_transaction", False) is None:
        await start()
        if raw.is_in_transaction():
            return
    await conn.execute(text("SELECT 1"))


_ARRAY_CAST = re.compile(r"CAST\(:(\w+) AS (" + "|".join(sorted(TEXT_FORM_TYPES)) + r")\[\]\)")


class DriverStatement:
    """A statement with `:name` parameters that runs on the transaction's asyncpg connection
    (`driver`): for the statements a consumer's batch sends every time, where SQLAlchemy's
    own work (~0.3 ms of CPU a statement here, and a Row per returned row) would be most of
    the statement's cost. Array parameters (`CAST(:ids AS text[])`) keep it one prepared
    statement whatever the batch's size; those of the scalar types of
    `pg_arrays.TEXT_FORM_TYPES` are sent as the array's text form (`pg_arrays.array_text`:
    made in C, where asyncpg's encoder costs a Python-level call per element)."""

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def number(m: re.Match[str]) -> str:
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        if "--" in sql:  # the statement is joined into one line: a comment would eat it
            raise ValueError("a DriverStatement takes no -- comments")
        sql = " ".join(sql.split())
        texts: dict[str, str] = {}

        def as_text(m: re.Match[str]) -> str:
            if texts.setdefault(m.group(1), m.group(2)) != m.group(2):
                raise ValueError(f":{m.group(1)} is cast to two array types")
            return f"CAST(CAST(:{m.group(1)} AS text) AS {m.group(2)}[])"

        sql = _ARRAY_CAST.sub(as_text, sql)
        self.sql = re.sub(r"(?<![:\w]):(\w+)", number, sql)
        self.names = tuple(names)
        # Arrays of scalars go as their text form (common.pg_arrays.array_text): by index.
        self._texts = tuple((names.index(n), t) for n, t in texts.items())
        for name in texts:
            if len(re.findall(rf"(?<![:\w]):{name}\b", sql)) != sql.count(
                    f"CAST(:{name} AS text)"):
                raise ValueError(f":{name} is an array parameter: use it only as CAST(:{name} "
                                 f"AS {texts[name]}[])")

    def _args(self, values: Mapping[str, Any]) -> list[Any]:
        args = [values[n] for n in self.names]
        for i, element in self._texts:
            if args[i] is not None:
                args[i] = array_text(args[i], element)
        return args

    async def execute(self, conn: AsyncConnection, values: Mapping[str, Any]) -> str:
        """The command's status, e.g. "INSERT 0 5"."""
        status: str = await (await driver(conn)).execute(self.sql, *self._args(values))
        return status

    async def fetch(self, conn: AsyncConnection, values: Mapping[str, Any]) -> list[Any]:
        return list(await (await driver(conn)).fetch(self.sql, *self._args(values)))


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


# SQLSTATEs only the input can cause: a value PostgreSQL cannot store. Not the whole classes 22
# and 23: a division by zero (22012), a cast of stored data (22P02), a NOT NULL (23502) or a
# foreign key (23503) violated by our own statement are bugs, and must stay loud 500s.
INPUT_VALUE_STATES = frozenset({
    "22001",  # string too long for its column
    "22003",  # numeric value out of range
    "22008",  # datetime field overflow
    "22021",  # invalid byte sequence (a NUL in a text)
    "22P05",  # untranslatable character (\u0000 in a jsonb)
})
INPUT_CONFLICT_STATES = frozenset({"23505"})  # unique violation: the thing exists already


def is_input_refusal(exc: BaseException) -> bool:
    """True when PostgreSQL refused a value of the input (see the two sets above)."""
    return sqlstate(exc) in INPUT_VALUE_STATES | INPUT_CONFLICT_STATES


def is_event_error(exc: BaseException) -> bool:
    """True when the failure belongs to the input itself, so retrying can never help: it was
    declared unprocessable, failed validation, or the database refused one of its values
    (`is_input_refusal`). Everything else (the database or Kafka away, a full disk, a
    failover, a deadlock, a bug in a new release, including a constraint our own code broke)
    is worth retrying, and blocking a partition is safer than dead-lettering events we could
    have applied."""
    return (isinstance(exc, UnprocessableMessage | ValidationError | msgspec.ValidationError)
            or is_input_refusal(exc))


# SQLSTATE classes that say the database is away or busy, never that the event is bad:
# connection exceptions (08), transaction rollback: serialization failures and deadlocks (40),
# insufficient resources: a full disk, too many connections (53), lock not available (55P03),
# a read-only transaction on a standby just after a failover (25006),
# operator intervention: shutdown, restart, cancelled (57), system and internal errors (58, XX).
INFRASTRUCTURE_CLASSES = ("08", "40", "53", "57", "58", "XX")
INFRASTRUCTURE_STATES = frozenset({"55P03", "25006"})  # lock wait; read-only (failover)


def is_infrastructure_error(exc: BaseException) -> bool:
    """True when the failure is the infrastructure's (PostgreSQL or Kafka unreachable or
    restarting, a lost connection, a serialization failure or deadlock, a broker error): the
    same event will go through once it is back, so it is retried without limit. Anything that
    is neither this nor `is_event_error` (a bug meeting an odd event) is retried a few times,
    then dead-lettered (`ConsumerRunner`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the `raise ... from` chain
        seen.add(id(current))
        if _infrastructure_itself(current):
            return True
        current = current.__cause__
    return False


# What a client sees while PostgreSQL fails over (pg_auto_failover, Patroni, CloudNativePG):
# the old primary demoted under an open connection answers writes with "cannot execute
# INSERT in a read-only transaction" (25006); its backends are terminated (57P01) or the
# server is starting/shutting down (57P02, 57P03); or the connection is simply gone (08).
FAILOVER_STATES = frozenset({"25006", "57P01", "57P02", "57P03"})
# The same, when only the message survived (an error re-raised as text by a driver layer).
_FAILOVER_MESSAGE = re.compile(
    r"read-only transaction|recovery is in progress|the database system is "
    r"(?:in recovery mode|starting up|shutting down|not accepting connections)|"
    r"terminating connection due to administrator command", re.IGNORECASE)


def is_failover_error(exc: BaseException) -> bool:
    """True when the error is what a database failover looks like to a client: the same
    statement will succeed on the new primary (a multi-host URL with
    target_session_attrs=read-write finds it on the next connection). Always an
    infrastructure error: retried, never dead-lettered; a request gets a 503."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = sqlstate(current)
        if state in FAILOVER_STATES or state.startswith("08"):
            return True
        # The backend went away under an open transaction: asyncpg then says "cannot switch
        # to state 11; another operation is in progress" or "connection is closed", with no
        # SQLSTATE; SQLAlchemy has seen the connection die and invalidated it.
        if getattr(current, "connection_invalidated", False):
            return True
        if not state and _FAILOVER_MESSAGE.search(str(current)):
            return True
        current = current.__cause__
    return False


def _infrastructure_itself(exc: BaseException) -> bool:
    if is_failover_error(exc):
        return True
    state = sqlstate(exc) or str(getattr(exc, "sqlstate", None) or "")
    if state:
        return state[:2] in INFRASTRUCTURE_CLASSES or state in INFRASTRUCTURE_STATES
    if isinstance(exc, KafkaError):
        # A record too large for the broker is the record's fault, not the broker's.
        return not isinstance(exc, MessageSizeTooLargeError)
    if getattr(exc, "connection_invalidated", False):
        return True  # SQLAlchemy saw the connection die under the statement
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError
                      | SATimeoutError | OSError | TimeoutError)


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE behind a database error ("" for anything else). asyncpg's class-22 errors
    (a NUL in a text, a number out of range) reach us as a plain DBAPIError, not as
    DataError, so the code is read from the driver's error."""
    # SQLAlchemy's wrapper carries it on `orig`; a statement run on the driver itself
    # (`DriverStatement`) raises asyncpg's error, which carries it directly.
    return str(getattr(getattr(exc, "orig", None), "sqlstate", None)
               or getattr(exc, "sqlstate", None) or "")


T = TypeVar("T")
log = logging.getLogger(__name__)


async def delete_in_chunks(engine: AsyncEngine, statement: Callable[[int], Delete],
                           chunk: int = 10_000) -> int:
    """Run a bounded DELETE (`statement(chunk)`) until it removes fewer than `chunk` rows,
    each in its own short transaction, so pruning never holds long locks."""
    removed = 0
    while True:
        async with engine.begin() as conn:
            n = (await conn.execute(statement(chunk))).rowcount
        removed += n
        if n < chunk:
            return removed


async def retrying(work: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run a unit of work again after an error that is not the input's own (e.g. PostgreSQL
    broke a deadlock)."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as exc:
            if attempt == attempts or is_event_error(exc):
                raise
            log.warning("transient %s, attempt %d: retrying", type(exc).__name__, attempt)
            await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
