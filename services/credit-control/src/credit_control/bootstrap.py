"""The one place credit-control is wired together."""

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock, SystemClock
from common.contracts import COMMANDS_TOPIC, DECISIONS_TOPIC

from .adapters import tables as t
from .config import Settings
from .entrypoints import consumer
from .entrypoints.http import router
from .service_layer import sweeps
from .service_layer.handlers import CreditContext


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = CreditContext(p.engine, p.outbox, p.keys, clock or SystemClock(), settings.service_name,
                        settings)
    events = p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                        consumer.dispatcher(ctx), batch_handler=consumer.batch_dispatcher(ctx))
    tasks = [sweeps.loop_ticker(ctx)]
    if settings.scheduler_enabled:
        tasks.append(sweeps.scheduler(ctx))
    runtime = p.runtime([events], topics=[*consumer.TOPICS, DECISIONS_TOPIC, COMMANDS_TOPIC],
                        extra_tasks=tasks)
    app = service_app("credit-control", runtime)
    app.include_router(router(ctx, settings))
    return app
