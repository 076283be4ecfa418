"""A credit-admin's override of a rating: star and limit, with a reason and an expiry,
audited. While in force the runs leave the customer alone; when it ends (expiry or removal)
the profile goes back to the model's rating."""

from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import Conflict, NotFound, Unprocessable
from common.idempotency import StoredResponse, run_once

from ...admin.adapters import admin_repository as admin_repo
from ...admin.service_layer.customers import require_known_customer
from ...credit.domain.profiles import initial_limit_fen, limit_in_range
from ...service_layer.context import CreditContext
from ..adapters import rating_sql as sql
from ..adapters import rating_tables as r
from ..domain.commands import AddOverride, OverrideRequest
from ..domain.model import Rating
from . import profiles


async def add_override(ctx: CreditContext, customer_id: str, cmd: AddOverride
                       ) -> StoredResponse:
    """201 with the override; the same id and body again (a client retrying after a lost
    answer) answer it again and change nothing, another body 409 (common.idempotency).
    Refused (4xx, nothing written, the id released with the transaction) when the limit is
    outside the star's range, the expiry is not ahead, the customer is unknown or already
    has an override in force."""
    limit = cmd.limit_fen if cmd.limit_fen is not None else initial_limit_fen(cmd.star_level)
    if not limit_in_range(cmd.star_level, limit):
        raise Unprocessable(f"limit {limit} fen is outside the range of star "
                            f"{cmd.star_level} (seed 004)", field="limit_fen")
    await require_known_customer(ctx, customer_id)
    async with ctx.engine.begin() as conn:
        async def work() -> dict[str, Any]:
            return await _add(ctx, conn, customer_id, cmd, limit)

        return await run_once(ctx.keys, conn, "rating_override", cmd.override_id,
                              OverrideRequest(customer_id=customer_id, override=cmd), work)


async def _add(ctx: CreditContext, conn: AsyncConnection, customer_id: str, cmd: AddOverride,
               limit: int) -> dict[str, Any]:
    now = ctx.clock.now()
    if cmd.expires_at <= now:
        raise Unprocessable("an override expires in the future", field="expires_at")
    await sql.lock_customer(conn, customer_id)
    if await _active(conn, customer_id, now):
        raise Conflict(f"customer {customer_id} already has an override in force",
                       customer_id=customer_id)
    done = await conn.execute(
        pg_insert(r.rating_overrides).values(
            override_id=cmd.override_id, customer_id=customer_id,
            star_level=cmd.star_level, limit_fen=limit, reason=cmd.reason,
            expires_at=cmd.expires_at, created_by=cmd.created_by, created_at=now)
        .on_conflict_do_nothing().returning(r.rating_overrides.c.override_id))
    if done.first() is None:
        raise Conflict(f"override {cmd.override_id} exists", override_id=cmd.override_id)
    card, _ = await sql.scorecard(conn)
    model = await sql.rating_of(conn, customer_id)
    before = Rating(model["star_level"], model["limit_fen"]) if model else Rating(None, 0)
    new = Rating(cmd.star_level, limit)
    await _record(conn, customer_id, "override", cmd.override_id, before, new,
                  f"override by {cmd.created_by}: {cmd.reason} (until "
                  f"{cmd.expires_at.isoformat()})", card.version, cmd.created_by, now)
    await profiles.feed(ctx, conn, [sql.profile_values(
        card, customer_id, new, f"override:{cmd.override_id}", now)], now,
        trigger="rating override")
    await admin_repo.audit(conn, now, cmd.created_by, "rating_override", customer_id, "add",
                           None, {"override_id": cmd.override_id,
                                  "star_level": cmd.star_level, "limit_fen": limit,
                                  "reason": cmd.reason,
                                  "expires_at": cmd.expires_at.isoformat()})
    return {"override_id": cmd.override_id, "customer_id": customer_id,
            "star_level": cmd.star_level, "limit_fen": limit,
            "expires_at": cmd.expires_at.isoformat()}


async def remove_override(ctx: CreditContext, override_id: str, reason: str, by: str
                          ) -> dict[str, Any]:
    now = ctx.clock.now()
    o = r.rating_overrides
    async with ctx.engine.begin() as conn:
        row = (await conn.execute(o.select().where(o.c.override_id == override_id)
                                  .with_for_update())).first()
        if row is None:
            raise NotFound(f"no override {override_id}", override_id=override_id)
        if row.removed_at is not None or row.ended_applied:
            raise Conflict(f"override {override_id} has already ended",
                           override_id=override_id)
        await conn.execute(update(o).where(o.c.override_id == override_id)
                           .values(removed_by=by, removed_at=now))
        await admin_repo.audit(conn, now, by, "rating_override", row.customer_id, "remove",
                               {"override_id": override_id}, {"reason": reason})
        await apply_ended_overrides(ctx, conn, now, by)
    return {"override_id": override_id, "removed_at": now.isoformat()}


async def apply_ended_overrides(ctx: CreditContext, conn: AsyncConnection, at: datetime,
                                actor: str) -> int:
    """Overrides that ended: the profile returns to the model's rating (or to none)."""
    ended = await sql.ended_overrides(conn, at)
    if not ended:
        return 0
    card, _ = await sql.scorecard(conn)
    o = r.rating_overrides
    for row in ended:
        model = await sql.rating_of(conn, row.customer_id)
        back = Rating(model["star_level"], model["limit_fen"]) if model else Rating(None, 0)
        why = "override ended (removed)" if row.removed_at else "override expired"
        by = f"override_ended:{row.override_id}"
        if model:
            profile = sql.profile_values(card, row.customer_id, back, by, at)
        else:
            # Never rated by the model: back to billing's star, limit and tier (the profile
            # says nothing), not to "unrated, low" (QA pass 36: a high-tier 4★ customer was
            # left with tier low and no limit when its override was removed).
            profile = sql.billing_profile_values(row.customer_id, by, at)
            why += "; never rated by the model: billing's star and tier apply"
        await _record(conn, row.customer_id, "override_ended", row.override_id,
                      Rating(row.star_level, row.limit_fen), back, why, card.version, actor,
                      at)
        await profiles.feed(ctx, conn, [profile], at, trigger="rating override ended")
        await conn.execute(update(o).where(o.c.override_id == row.override_id)
                           .values(ended_applied=True))
    return len(ended)


async def _active(conn: AsyncConnection, customer_id: str, at: datetime) -> bool:
    return any(x["removed_at"] is None and not x["ended_applied"] and x["expires_at"] > at
               for x in await sql.overrides_of(conn, customer_id))


async def _record(conn: AsyncConnection, customer_id: str, model: str, period: str,
                  before: Rating, after: Rating, reason: str, version: int, actor: str,
                  at: datetime) -> None:
    await conn.execute(insert(r.rating_changes).values(
        customer_id=customer_id, model=model, period=period, star_before=before.star,
        star_after=after.star, limit_before_fen=before.limit_fen,
        limit_after_fen=after.limit_fen, score=None, inputs={}, reason=reason,
        scorecard_version=version, actor=actor, at=at))
