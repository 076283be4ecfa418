"""Read side: a customer's rating with its history and overrides; the scorecard in force and
its changes (versioned, audited)."""

from typing import Any

from common.errors import Conflict, NotFound

from ...admin.adapters import admin_repository as admin_repo
from ...service_layer.context import CreditContext
from ..adapters import rating_sql as sql
from ..domain.commands import PutScorecard


async def customer_rating(ctx: CreditContext, customer_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        rating = await sql.rating_of(conn, customer_id)
        history = await sql.history_of(conn, customer_id)
        overrides = await sql.overrides_of(conn, customer_id)
    if rating is None and not history and not overrides:
        raise NotFound(f"customer {customer_id} has no rating yet", customer_id=customer_id)
    now = ctx.clock.now()
    active = [o for o in overrides
              if o["removed_at"] is None and not o["ended_applied"] and o["expires_at"] > now]
    return {"customer_id": customer_id, "rating": rating,
            "override": active[0] if active else None, "overrides": overrides,
            "history": history}


async def get_scorecard(ctx: CreditContext) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        card, row = await sql.scorecard(conn)
    return {"scorecard": card.model_dump(mode="json"), "stored": row is not None,
            "changed_by": row.changed_by if row else None,
            "changed_at": row.changed_at.isoformat() if row else None,
            "reason": row.reason if row else "defaults (docs/rating.md)"}


async def put_scorecard(ctx: CreditContext, cmd: PutScorecard) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        current, _ = await sql.scorecard(conn)
        if cmd.card.version != current.version + 1:
            raise Conflict(f"the new scorecard's version must be {current.version + 1}",
                           current_version=current.version)
        if not await sql.store_scorecard(conn, cmd.card, cmd.changed_by, cmd.reason, now):
            raise Conflict("another change took this version first",
                           version=cmd.card.version)
        await admin_repo.audit(conn, now, cmd.changed_by, "rating_scorecard",
                               str(cmd.card.version), "put",
                               current.model_dump(mode="json"),
                               {**cmd.card.model_dump(mode="json"), "reason": cmd.reason})
    return await get_scorecard(ctx)
