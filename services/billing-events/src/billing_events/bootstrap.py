"""The one place billing-events is wired together."""

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock, SystemClock
from common.contracts import BALANCE_TOPIC

from .adapters import tables as t
from .config import Settings
from .entrypoints.http import router
from .service_layer.handlers import BillingContext


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = BillingContext(p.engine, p.outbox, p.keys, clock or SystemClock(), settings.service_name)
    app = service_app("billing-events", p.runtime(consumers=[], topics=[BALANCE_TOPIC]))
    app.include_router(router(ctx, settings))
    return app
