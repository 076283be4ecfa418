"""The one place gateway-adapter is wired together."""

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock, SystemClock
from common.contracts import RESULTS_TOPIC

from .adapters import tables as t
from .config import Settings
from .entrypoints import consumer
from .entrypoints.http import router
from .service_layer.handlers import GatewayContext


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = GatewayContext(p.engine, p.outbox, clock or SystemClock(), settings.service_name)
    commands = p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                          consumer.dispatcher(ctx))
    app = service_app("gateway-adapter", p.runtime([commands], [*consumer.TOPICS, RESULTS_TOPIC]))
    app.include_router(router(ctx, settings))
    return app
