"""Client-supplied ids make every POST idempotent.

Same id, same body → the stored answer again; same id, other body → 409. The key is reserved
in the business transaction, so a request that fails leaves no key behind. Where the work runs
in several transactions after the reservation (a sweep), `released_on_refusal` frees the key
again when the request is refused: a rejected request changes nothing, its id included.
"""

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.db import is_input_refusal
from common.errors import ApiError, Conflict, Unavailable


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def request_hash(request: BaseModel) -> str:
    canonical = orjson.dumps(request.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyKeys:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def replay_or_reserve(
        self, conn: AsyncConnection, scope: str, key: str, request: BaseModel
    ) -> StoredResponse | None:
        """None: first use, go ahead (and call `store`); otherwise the earlier answer."""
        t = self.table
        digest = request_hash(request)
        reserved = await conn.execute(
            insert(t)
            .values(scope=scope, key=key, request_hash=digest, status_code=0, response={})
            .on_conflict_do_nothing()
            .returning(t.c.key)
        )
        if reserved.first() is not None:
            return None
        row = (
            await conn.execute(
                select(t.c.request_hash, t.c.status_code, t.c.response).where(
                    t.c.scope == scope, t.c.key == key
                )
            )
        ).one()
        if row.request_hash != digest:
            raise Conflict(
                f"{scope} id {key!r} was already used with a different request body",
                id=key,
            )
        return StoredResponse(row.status_code, row.response)

    async def store(
        self, conn: AsyncConnection, scope: str, key: str, status_code: int, body: dict[str, Any]
    ) -> None:
        t = self.table
        # Only a reservation is filled in: when two runs of the same request race (a client
        # retrying a slow one), the first to finish keeps its answer.
        await conn.execute(
            update(t)
            .where(t.c.scope == scope, t.c.key == key, t.c.status_code == 0)
            .values(status_code=status_code, response=body)
        )

    async def release(self, conn: AsyncConnection, scope: str, key: str) -> None:
        """Forget a reservation that was never answered: the id may be used again."""
        t = self.table
        await conn.execute(
            delete(t).where(t.c.scope == scope, t.c.key == key, t.c.status_code == 0))

    @asynccontextmanager
    async def released_on_refusal(
        self, engine: AsyncEngine, scope: str, key: str,
    ) -> AsyncIterator[None]:
        """Around work done after a committed reservation: if the work refuses the request
        (a 4xx, or a 503 `Unavailable`: not now, nothing written), the reservation goes, so
        the request (corrected, or the same one later) may use the same id. Any other failure
        keeps it: the same request sent again resumes under its id."""
        try:
            yield
        except Exception as exc:
            if is_refusal(exc):
                async with engine.begin() as conn:
                    await self.release(conn, scope, key)
            raise

    async def stored(self, conn: AsyncConnection, scope: str, key: str) -> StoredResponse:
        t = self.table
        row = (await conn.execute(
            select(t.c.status_code, t.c.response).where(t.c.scope == scope, t.c.key == key)
        )).one()
        return StoredResponse(row.status_code, row.response)


async def run_once(
    keys: IdempotencyKeys, conn: AsyncConnection, scope: str, key: str, request: BaseModel,
    work: Callable[[], Awaitable[dict[str, Any]]], status_code: int = 201,
) -> StoredResponse:
    """Do `work` once per (scope, key); replays get the stored answer."""
    earlier = await keys.replay_or_reserve(conn, scope, key, request)
    if earlier is not None:
        return earlier
    body = await work()
    await keys.store(conn, scope, key, status_code, body)
    return StoredResponse(status_code, body)


def is_refusal(exc: BaseException) -> bool:
    """The request's own fault, what common.http answers 4xx, or a refusal before anything
    was written (`Unavailable`, 503): never a server error."""
    if isinstance(exc, ApiError):
        return 400 <= exc.status_code < 500 or isinstance(exc, Unavailable)
    return isinstance(exc, OverflowError) or is_input_refusal(exc)
