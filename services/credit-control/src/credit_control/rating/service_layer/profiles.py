"""The rating's word becomes the credit profile credit-control decides with, and the
products of every customer whose profile it changed are reconsidered at once
(credit/service_layer/reconsider.py): an upgrade voids a suspension warning that no longer
announces the suspension, a limit now over the debt clears the product, as the same change
through billing's master data does."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ...credit.service_layer.reconsider import reconsider_customers
from ...service_layer.context import CreditContext
from ..adapters import rating_sql as sql


async def feed(ctx: CreditContext, conn: AsyncConnection, profiles: list[dict[str, Any]],
               at: datetime, *, trigger: str) -> list[str]:
    """`profiles` written (`rating_sql.feed_profiles`) and the products of the customers
    whose profile changed reconsidered as of `at`; returns those customers. `trigger`: the
    decisions' cause ("rating override", "rating run" …)."""
    changed = await sql.feed_profiles(conn, profiles)
    await reconsider_customers(ctx, conn, changed, at, trigger=trigger,
                               correlation=f"{trigger}:{at.isoformat()}")
    return changed
