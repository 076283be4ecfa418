"""The one place notifier is wired together."""

import asyncio

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock, SystemClock

from .adapters import tables as t
from .adapters.smsc import SimulatedSmsc, SmsProvider
from .config import Settings
from .entrypoints import consumer
from .entrypoints.http import router
from .service_layer.handlers import NotifierContext, run_sender


def bootstrap(
    settings: Settings | None = None, clock: Clock | None = None,
    provider: SmsProvider | None = None,
) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = NotifierContext(p.engine, provider or SimulatedSmsc(p.engine), clock or SystemClock(),
                          settings.send_batch_size, wake=asyncio.Event(),
                          send_max_attempts=settings.send_max_attempts,
                          send_claim_timeout_s=settings.send_claim_timeout_s,
                          send_backoff_base_s=settings.send_backoff_base_s)

    async def sender(stop: asyncio.Event) -> None:
        await run_sender(ctx, stop, settings.send_idle_poll_s)

    events = p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                        consumer.dispatcher(ctx))
    app = service_app("notifier", p.runtime([events], consumer.TOPICS, extra_tasks=[sender]))
    app.include_router(router(ctx, settings))
    return app
