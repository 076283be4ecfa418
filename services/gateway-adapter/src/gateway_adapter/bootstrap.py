"""The one place gateway-adapter is wired together."""

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from common.app import plumbing, service_app
from common.clock import Clock
from common.contracts import RESULTS_TOPIC
from common.simulation import service_clock, wake_on_move

from .adapters import tables as t
from .adapters.credit_control import DesiredChainSource
from .config import Settings
from .entrypoints import consumer
from .entrypoints.cmpp_server import CmppConfig, CmppGateway
from .entrypoints.http import router
from .service_layer import reconcile, worker
from .service_layer.context import GatewayContext


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    desired = DesiredChainSource(settings.credit_control_url,
                                 settings.credit_control_token.get_secret_value())
    clock = clock or service_clock(settings)
    ctx = GatewayContext(
        p.engine, p.outbox, clock, settings.service_name,
        default_faults=settings.faults, desired=desired,
        stuck_after=timedelta(seconds=settings.stuck_emos_order_after_s),
        repair=settings.reconciliation_repair,
        worker_batch=settings.worker_batch)
    wake_on_move(clock, ctx.worker_wake)  # stages due by a simulated time run when it jumps
    commands = p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                          consumer.dispatcher(ctx), batch_handler=consumer.batch_dispatcher(ctx))

    async def stage_worker(stop: asyncio.Event) -> None:
        await worker.run(ctx, stop, settings.worker_idle_poll_s)

    async def scheduled_reconciliation(stop: asyncio.Event) -> None:
        if settings.reconciliation_interval_s > 0:
            await reconcile.run_scheduled(ctx, stop, settings.reconciliation_interval_s)
        else:
            await stop.wait()  # off; a worker that returned would read as "not running"

    cmpp = CmppGateway(ctx, CmppConfig(
        settings.cmpp_window, settings.cmpp_login_timeout_s, settings.cmpp_idle_timeout_s,
        settings.cmpp_pdu_timeout_s, settings.cmpp_gateway_code))

    async def cmpp_server(stop: asyncio.Event) -> None:
        if settings.cmpp_port is None:
            await stop.wait()  # off, as the scheduled reconciliation when it is off
        else:
            await cmpp.serve(stop, settings.cmpp_host or settings.http_host, settings.cmpp_port)

    runtime = p.runtime([commands], [*consumer.TOPICS, RESULTS_TOPIC],
                        extra_tasks=[stage_worker, scheduled_reconciliation, cmpp_server])
    app = service_app("gateway-adapter", runtime, clock)
    app.include_router(router(ctx, settings))
    return app
