"""The one place credit-control is wired together."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock, SystemClock
from common.contracts import COMMANDS_TOPIC, DECISIONS_TOPIC
from common.simulation import service_clock

from .adapters import tables as t
from .adapters.peers import Peers
from .collections.domain.collections import WorklistKind
from .collections.service_layer.escalation import settler as collections_settler
from .config import Settings
from .credit.adapters.balance_feed import KafkaBalanceFeed
from .credit.entrypoints import consumer
from .credit.service_layer import sweeps
from .entrypoints import asyncapi
from .entrypoints.http import router
from .rating.entrypoints import scheduler as rating_scheduler
from .reports.entrypoints import (
    dashboard,
    freeze_pages,
    rating_pages,
    rating_reports,
    reports,
    timeline,
)
from .reports.entrypoints.promise_pages import router as promise_pages_router
from .reports.service_layer import business_metrics
from .reports.service_layer.reports import ReportContext
from .service_layer.context import CreditContext
from .whatif.entrypoints import http as whatif_http  # issue 19: what-if replay

log = logging.getLogger(__name__)


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    # Before a new sweep, the consumer group's progress on its topics (the same group and
    # topics as `events` below): credit/service_layer/feed_wait.py.
    feed = KafkaBalanceFeed(settings.kafka_bootstrap, settings.service_name, consumer.TOPICS)
    ctx = CreditContext(p.engine, p.outbox, p.keys, clock or _clock(settings),
                        settings.service_name, settings, feed=feed)
    events = p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                        consumer.dispatcher(ctx), batch_handler=consumer.batch_dispatcher(ctx))
    rc = _report_context(ctx, settings)
    tasks = [sweeps.loop_ticker(ctx), sweeps.resumer(ctx),
             business_metrics.loop(rc, settings.business_metrics_interval_s)]
    if settings.scheduler_enabled:
        tasks.append(sweeps.scheduler(ctx))
    tasks.append(collections_settler(ctx))  # paid cases: associations restored, closed
    if settings.scheduler_enabled and settings.rating_scheduler_enabled:  # issue 18
        tasks.append(rating_scheduler.scheduler(ctx))
    runtime = p.runtime([events], topics=[*consumer.TOPICS, DECISIONS_TOPIC, COMMANDS_TOPIC],
                        extra_tasks=tasks)
    app = service_app("credit-control", runtime, ctx.clock)
    app.include_router(router(ctx, settings))
    _reports(app, rc, settings)
    app.include_router(asyncapi.router())  # the topics' AsyncAPI document and its page
    _close_at_shutdown(app, rc.peers.aclose, feed.close)
    return app


class _OffsetClock:
    """The system clock shifted by a fixed offset (Settings.clock_offset_s)."""

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return SystemClock().now() + self._offset


def _clock(settings: Settings) -> Clock:
    """The system clock (shifted for a drill), simulated on top when the setting is on."""
    base: Clock = SystemClock()
    if settings.clock_offset_s:
        base = _OffsetClock(timedelta(seconds=settings.clock_offset_s))
    return service_clock(settings, base)


def _report_context(ctx: CreditContext, settings: Settings) -> ReportContext:
    peers = Peers(settings.billing_url, settings.notifier_url, settings.gateway_url,
                  settings.peer_token.get_secret_value(), settings.peer_timeout_s)
    return ReportContext(ctx, peers)


def _reports(app: FastAPI, rc: ReportContext, settings: Settings) -> None:
    """Reports (API) and the dashboard (pages), over the other services' figures."""
    app.include_router(reports.router(rc, settings))
    app.include_router(timeline.router(rc, settings))
    app.include_router(rating_reports.router(rc.credit, settings))  # issue 18: seed 004's effects
    app.include_router(rating_pages.router(rc, settings.token_table()))  # issue 18
    app.include_router(freeze_pages.router(rc.credit, settings.token_table()))  # issue 19
    app.include_router(promise_pages_router(rc, settings.token_table()))  # issue 19: promises
    whatif_http.mount(app, rc, settings)  # issue 19: what-if replay (API and page)
    dashboard.mount(app, rc, settings.token_table())
    dashboard.WORKLIST_PROVIDERS.update({
        f"{kind.label} ({kind.value})": dashboard.collections_worklist(kind.value)
        for kind in WorklistKind})


def _close_at_shutdown(app: FastAPI, *closers: Callable[[], Awaitable[None]]) -> None:
    """Clients that live as long as the app (the peers' pool, the feed's Kafka clients):
    closed after the runtime stops, each even if another fails to."""
    running = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with running(a):
            try:
                yield
            finally:
                for close in closers:
                    try:
                        await close()
                    except Exception:
                        log.exception("closing %s at shutdown failed", close)

    app.router.lifespan_context = lifespan
