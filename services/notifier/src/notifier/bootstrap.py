"""The one place notifier is wired together."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from common.app import plumbing, service_app
from common.clock import Clock, SystemClock
from common.contracts.notifier import NOTICES_TOPIC
from common.outbox import Outbox

from .adapters import tables as t
from .adapters.providers import HttpSmsProvider, SmsProvider
from .adapters.smsc import SimulatedSmsc, SmscFaults
from .config import Settings
from .domain.pacing import TokenBucket
from .domain.quiet_hours import SendingWindow
from .domain.templates import Role
from .entrypoints import consumer
from .entrypoints.http import router
from .service_layer.context import NotifierContext
from .service_layer.receipts import run_receipt_timeouts, run_receipts
from .service_layer.sending import run_sender


def context(
    settings: Settings, engine: AsyncEngine, clock: Clock, provider: SmsProvider | None = None,
    outbox: Outbox | None = None,
) -> NotifierContext:
    """The use cases' wiring; the provider is the simulated SMSC unless settings say http."""
    smsc = None
    if provider is None:
        if settings.provider == "http":
            provider = HttpSmsProvider(
                settings.http_provider_url, settings.http_provider_token.get_secret_value(),
                settings.http_provider_timeout_s, settings.http_provider_concurrency)
        else:
            smsc = SimulatedSmsc(engine, clock, SmscFaults(
                failure_rate=settings.smsc_failure_rate, latency_s=settings.smsc_latency_s,
                receipt_delay_s=settings.smsc_receipt_delay_s))
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


def bootstrap(
    settings: Settings | None = None, clock: Clock | None = None,
    provider: SmsProvider | None = None,
) -> FastAPI:
    settings = settings or Settings()
    p = plumbing(settings, t.outbox, t.inbox, t.idempotency_keys)
    ctx = context(settings, p.engine, clock or SystemClock(), provider, p.outbox)

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
    if ctx.smsc is not None:
        tasks.append(receipts)
    app = service_app("notifier", p.runtime([events], [*consumer.TOPICS, NOTICES_TOPIC],
                                            extra_tasks=tasks))
    app.include_router(router(ctx, settings))
    return app
