"""credit-control's context: what every use case gets (engine, outbox, clock, settings, the
rule table in force, the balance feed's progress), and publishing one event through the
outbox."""

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import Clock
from common.envelope import Contract, wrap
from common.idempotency import IdempotencyKeys
from common.logging import correlation_id
from common.outbox import Outbox

from ..admin.adapters import admin_repository as admin_repo
from ..config import Settings
from ..credit.domain.rule_table import RuleTable
from ..credit.service_layer.feed_wait import BalanceFeed


class RuleCache:
    """The rule table in force; reloaded when a newer version was stored (by any process)."""

    def __init__(self) -> None:
        self.table: RuleTable | None = None

    async def current(self, conn: AsyncConnection, version: int | None = None) -> RuleTable:
        """`version`: the newest version, when the caller already asked in its transaction
        (the balance path's batch hints): no round trip while it is the cached one."""
        if version is None:
            version = await admin_repo.rule_version(conn)
        if self.table is None or self.table.version != version:
            self.table, _ = await admin_repo.rule_table(conn)
        return self.table


@dataclass
class CreditContext:
    engine: AsyncEngine
    outbox: Outbox
    keys: IdempotencyKeys
    clock: Clock
    source: str = "credit-control"
    settings: Settings = field(default_factory=Settings)
    rules: RuleCache = field(default_factory=RuleCache)
    # Has the consumer applied what was published before a new sweep (credit/service_layer/
    # feed_wait.py)? bootstrap.py asks Kafka; None (tests and benches built without Kafka):
    # no check.
    feed: BalanceFeed | None = None


async def publish(ctx: CreditContext, conn: AsyncConnection, key: str, event: Contract) -> None:
    await ctx.outbox.add(conn, event.topic, wrap(
        event, key=key, source=ctx.source, occurred_at=ctx.clock.now(),
        correlation_id=correlation_id.get()))
