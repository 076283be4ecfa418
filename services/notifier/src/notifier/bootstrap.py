"""The one place notifier is wired together."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from common.app import plumbing, service_app
from common.clock import Clock
from common.contracts.notifier import NOTICES_TOPIC
from common.outbox import Outbox
from common.simulation import service_clock, wake_on_move

from .adapters import tables as t
from .adapters.providers import HttpSmsProvider, Receipt, SmsProvider
from .adapters.smpp.provider import SmppConfig, SmppProvider
from .adapters.smpp.smsc_server import SmscServer, SmscServerConfig
from .adapters.smsc import SimulatedSmsc, SmscFaults
from .config import Settings
from .domain.pacing import TokenBucket
from .domain.quiet_hours import SendingWindow
from .domain.templates import Role
from .entrypoints import consumer
from .entrypoints.http import router
from .service_layer.context import NotifierContext
from .service_layer.receipts import apply_receipts, run_receipt_timeouts, run_receipts
from .service_layer.sending import run_sender


def context(
    settings: Settings, engine: AsyncEngine, clock: Clock, provider: SmsProvider | None = None,
    outbox: Outbox | None = None,
) -> NotifierContext:
    """The use cases' wiring; the provider is the simulated SMSC unless settings say http."""
    smsc = None
    if provider is None and settings.smsc_smpp_port is not None:
        smsc = simulated_smsc(settings, engine, clock)  # served over SMPP, not called
    if provider is None:
        if settings.provider == "smpp":
            provider = smpp_provider(settings)
        elif settings.provider == "http":
            provider = HttpSmsProvider(
                settings.http_provider_url, settings.http_provider_token.get_secret_value(),
                settings.http_provider_timeout_s, settings.http_provider_concurrency)
        else:
            smsc = smsc or simulated_smsc(settings, engine, clock)
            provider = smsc
    elif isinstance(provider, SimulatedSmsc):
        smsc = provider
    return NotifierContext(
        engine, provider, clock, settings.send_batch_size, wake=asyncio.Event(),
        send_max_attempts=settings.send_max_attempts,
        send_claim_timeout_s=settings.send_claim_timeout_s,
        send_backoff_base_s=settings.send_backoff_base_s,
        windows={Role.GROUP_CONTACT: SendingWindow.parse(settings.customer_sending_hours),
                 Role.ACCOUNT_MANAGER: SendingWindow.parse(settings.manager_sending_hours)},
        smsc=smsc, reminder_deadline=timedelta(hours=settings.reminder_deadline_hours),
        release_pacer=TokenBucket(settings.release_rate_per_s, settings.release_burst),
        recipient_gap_s=settings.recipient_min_gap_s,
        outbox=outbox, outcome_templates=settings.outcome_templates,
        receipt_timeout=timedelta(seconds=settings.receipt_timeout_s),
        source=settings.service_name,
    )


def simulated_smsc(settings: Settings, engine: AsyncEngine, clock: Clock) -> SimulatedSmsc:
    return SimulatedSmsc(engine, clock, SmscFaults(
        failure_rate=settings.smsc_failure_rate, latency_s=settings.smsc_latency_s,
        receipt_delay_s=settings.smsc_receipt_delay_s))


def smpp_provider(settings: Settings) -> SmppProvider:
    return SmppProvider(SmppConfig(
        settings.smpp_host, settings.smpp_port, settings.smpp_system_id,
        settings.smpp_password.get_secret_value(), settings.smpp_system_type,
        settings.smpp_bind, settings.smpp_source_addr, settings.smpp_enquire_link_s,
        settings.smpp_response_timeout_s, throttle_backoff_s=settings.smpp_throttle_backoff_s,
        throttle_retries=settings.smpp_throttle_retries, window=settings.smpp_window))


def smpp_tasks(settings: Settings, ctx: NotifierContext
               ) -> list[Callable[[asyncio.Event], Awaitable[None]]]:
    """The SMPP link (receipts applied as they come) and the simulated SMSC's SMPP server."""
    tasks: list[Callable[[asyncio.Event], Awaitable[None]]] = []
    provider = ctx.provider
    if isinstance(provider, SmppProvider):
        async def on_receipts(receipts: list[Receipt]) -> None:
            await apply_receipts(ctx, receipts)

        provider.on_receipts = on_receipts
        tasks.append(provider.run)
    smsc = ctx.smsc
    port = settings.smsc_smpp_port
    if smsc is not None and port is not None and smsc is not provider:
        server = SmscServer(smsc, SmscServerConfig(
            settings.smpp_system_id, settings.smpp_password.get_secret_value(),
            settings.smsc_smpp_max_rate_per_s, receipt_poll_s=settings.receipt_poll_s))

        async def serve(stop: asyncio.Event) -> None:
            await server.serve(stop, settings.http_host, port)

        tasks.append(serve)
    return tasks


def bootstrap(
    settings: Settings | None = None, clock: Clock | None = None,
    provider: SmsProvider | None = None,
) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    clock = clock or service_clock(settings)
    ctx = context(settings, p.engine, clock, provider, p.outbox)
    # Held messages are released when the simulated clock jumps past the quiet hours.
    wake_on_move(clock, ctx.wake)

    async def sender(stop: asyncio.Event) -> None:
        await run_sender(ctx, stop, settings.send_idle_poll_s)

    async def receipts(stop: asyncio.Event) -> None:
        await run_receipts(ctx, stop, settings.receipt_poll_s)

    async def receipt_timeouts(stop: asyncio.Event) -> None:
        await run_receipt_timeouts(ctx, stop, settings.receipt_timeout_poll_s)

    events = p.consumer(settings.service_name, consumer.TOPICS, consumer.CONTRACTS,
                        consumer.dispatcher(ctx), batch_handler=consumer.batch_dispatcher(ctx))
    # Receipts may come from the SMSC loop or the HTTP webhook: the timeout watches both.
    tasks: list[Callable[[asyncio.Event], Awaitable[None]]] = [sender, receipt_timeouts]
    if ctx.smsc is not None and ctx.smsc is ctx.provider:  # over SMPP receipts come by wire
        tasks.append(receipts)
    tasks += smpp_tasks(settings, ctx)
    app = service_app("notifier", p.runtime([events], [*consumer.TOPICS, NOTICES_TOPIC],
                                            extra_tasks=tasks), clock)
    app.include_router(router(ctx, settings))
    return app
