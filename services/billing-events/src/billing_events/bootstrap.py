"""The one place billing-events is wired together."""

import asyncio

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock
from common.contracts import BALANCE_TOPIC
from common.simulation import service_clock

from .adapters import tables as t
from .config import Settings
from .domain.late_fees import LateFeePolicy
from .entrypoints import consumer
from .entrypoints.http import router
from .service_layer.context import BillingContext


class _IdleRelay:
    """Stands in for the outbox relay when it is switched off: waits, publishes nothing."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def prune(self, older_than_days: int) -> int:
        return 0

    async def backlog(self) -> int:
        return 0


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    clock = clock or service_clock(settings)
    ctx = BillingContext(p.engine, p.outbox, p.keys, clock, settings.service_name)
    ctx.late_fees = LateFeePolicy(  # docs/billing.md "Late fees": off by default
        settings.late_fees_enabled, settings.late_fee_rate_bp_per_day,
        settings.late_fee_grace_days, settings.late_fee_cap_bp)
    if not settings.relay_enabled:
        p.relay = _IdleRelay(t.SCHEMA)  # type: ignore[assignment]
    consumers = ([p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                             consumer.dispatcher(ctx))]
                 if settings.consume_decisions else [])
    app = service_app("billing-events",
                      p.runtime(consumers, topics=[BALANCE_TOPIC, *consumer.TOPICS]), clock)
    app.include_router(router(ctx, settings))
    return app
