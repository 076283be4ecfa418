"""Ids on the hot paths: version-4 UUIDs and random hex, from one `os.urandom` read per
4,096 ids; and time-ordered version-7 UUIDs for event ids.

`uuid.uuid4()` reads the kernel's random source once per id and builds the UUID in pure
Python: ~1.7 µs here, and a chain command makes about ten ids (its EMOS order, its three
results' event ids), which was a fifth of the gateway's CPU per command. Drawing the bytes
in bulk and wrapping them in asyncpg's C `UUID` (a `uuid.UUID`: msgspec, pydantic and the
driver take it as one) costs ~0.2 µs. The ids are as random as uuid4's: the same source,
only read in larger pieces. A forked child drops the parent's unread bytes, so the two never
hand out the same id.
"""

import os
import time
from typing import Annotated
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as _CUUID
from pydantic import Field

# The ids staff and services give things (customers, accounts, products, exemptions…):
# letters, digits, `.`, `_`, `:` and `-`, at most 64. Checked where they come in, in a body
# (`EntityId`) or a path (`common.http.IdPath`): a `/` or a space in one would change the
# address of the call that asks its owner (a customer id ending in `/` got a redirect from
# billing, answered as 502).
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
ID_MAX_LENGTH = 64
EntityId = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

_BATCH = 4096
_pool: list[bytes] = []


def _refill() -> None:
    raw = bytearray(os.urandom(16 * _BATCH))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])  # RFC 4122 variant
    _pool.extend(bytes(raw[i:i + 16]) for i in range(0, len(raw), 16))


def new_uuid() -> UUID:
    """A random (version 4) UUID, as `uuid.uuid4()` makes it."""
    if not _pool:
        _refill()
    return _CUUID(_pool.pop())  # type: ignore[no-any-return]


def new_event_id() -> UUID:
    """A time-ordered UUID (RFC 9562 version 7) for an event: the Unix time in milliseconds
    (48 bits), the sub-millisecond fraction in the 12 bits after the version (the RFC's
    "increased clock precision", ~244 ns), then 62 random bits.

    Why not random: every consumer claims an event id in its inbox's primary key
    (consumer, event_id), and every outbox has a unique index on it. Random keys land on a
    random leaf of those B-trees (each an 8 KB page to dirty, and to write whole into the WAL
    the first time after a checkpoint); ids that grow with time append at the right edge,
    where PostgreSQL inserts without descending the tree. docs/benchmarks.md: the inbox's
    insert per row. The ids stay unique by their 62 random bits (the same source as
    `new_uuid`); their time is the producer's clock, which says no more than the envelope's
    `occurred_at` already does. A clock stepping back only costs locality, never
    uniqueness."""
    if not _pool:
        _refill()
    ns = time.time_ns()
    ms, sub = divmod(ns, 1_000_000)
    # 48 bits of milliseconds, version 7, 12 bits of the millisecond's fraction; the pool's
    # last 8 bytes already carry the RFC variant bits.
    high = (ms << 16) | 0x7000 | (sub * 4096 // 1_000_000)
    return _CUUID(high.to_bytes(8, "big") + _pool.pop()[8:])  # type: ignore[no-any-return]


# A statement's event ids: the head's 29 characters and the event's number in 7 hex digits.
EVENT_NUMBER_DIGITS = 7


def event_id_head() -> str:
    """The first 29 characters of version-7 event ids' text for this millisecond, for a
    set-based statement that writes many events (the month-end sweep's outbox rows): each
    event's id is `head || lpad(to_hex(number), 7, '0')`, its number in the statement
    (below 16**7, unique within it). The head carries the millisecond, the version and
    variant, and 46 random bits (12 of rand_a, 14 of rand_b's first 16, 20 more), so two
    statements' ids do not meet; within one statement the ids sort as their numbers do,
    after every earlier millisecond's, as `new_event_id`'s do. No random function is left
    to the SQL: a query that makes ids without one is not volatile, and PostgreSQL may
    fold it into the statement instead of storing its rows."""
    ms = f"{time.time_ns() // 1_000_000:012x}"
    r = int.from_bytes(os.urandom(6), "big")  # 48 bits, 46 used
    rand_a, rand_b, rest = r >> 34 & 0xFFF, 0x8000 | (r >> 20 & 0x3FFF), r & 0xFFFFF
    return f"{ms[:8]}-{ms[8:]}-7{rand_a:03x}-{rand_b:04x}-{rest:05x}"


def new_hex(chars: int = 32) -> str:
    """`chars` (at most 32) random hex digits: `uuid.uuid4().hex[:chars]` without the UUID."""
    if not _pool:
        _refill()
    return _pool.pop().hex()[:chars]


os.register_at_fork(after_in_child=_pool.clear)
