"""A database of a bench's own, created, migrated and dropped by the bench: what a bench
writes (a million products, a million and a half chain products) must not end up in the
test suite's database, nor the suite's rows in the bench's figures."""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from common.migrations import upgrade


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_database(url: str, name: str) -> str:
    """A new empty database next to `url`'s; its URL. BENCH_COLLATE=C.UTF-8 (say) gives it
    that collation instead of the cluster's, to measure what a collation costs in one run."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    collate = os.environ.get("BENCH_COLLATE")
    locale = (f" TEMPLATE template0 LC_COLLATE '{collate}' LC_CTYPE '{collate}'"
              if collate else "")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{locale}')
    finally:
        await conn.close()
    return with_database(url, name)


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead (a query such as `?host=/run/dir`, a Unix-domain
    socket's directory, kept as it is)."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, name: str) -> None:
    """Plain DROP (it stops an autovacuum worker busy there itself; FORCE would need the
    right to signal that superuser process), retried while the worker winds down."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for attempt in range(10):
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == 9:
                    raise
                await asyncio.sleep(1)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(url: str, prefix: str, migrations: Path | None,
                           schema: str) -> AsyncIterator[str]:
    """A database named `<prefix>_<random>`, migrated with `migrations` (None: left empty),
    dropped afterwards; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    scratch = await create_database(url, name)
    try:
        if migrations is not None:
            await asyncio.to_thread(upgrade, migrations, scratch, schema)
        yield scratch
    finally:
        await drop_database(url, name)
