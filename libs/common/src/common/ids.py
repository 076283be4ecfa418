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
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as _CUUID

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


def event_id_prefix() -> str:
    """The first 15 characters of a version-7 event id's text for this millisecond
    ("01a24320-09a1-7"): a set-based statement that writes many events (the month-end
    sweep's outbox rows) gives each `prefix || substr(gen_random_uuid()::text, 16)`, the
    rest of a random UUID's text after its version digit (12 random bits, the variant, 62
    random bits). The statement's events share the millisecond and sort to the right of
    every earlier one, as `new_event_id`'s do."""
    ms = f"{time.time_ns() // 1_000_000:012x}"
    return f"{ms[:8]}-{ms[8:]}-7"


def new_hex(chars: int = 32) -> str:
    """`chars` (at most 32) random hex digits: `uuid.uuid4().hex[:chars]` without the UUID."""
    if not _pool:
        _refill()
    return _pool.pop().hex()[:chars]


os.register_at_fork(after_in_child=_pool.clear)
