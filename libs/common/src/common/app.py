"""Wiring shared by every service: the FastAPI app around a ServiceRuntime, and the CLI
(`serve`, `migrate`) each service's `python -m <package>` exposes."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import Clock, SimulatedClock, configure_business_time
from common.db import make_engine
from common.envelope import EventDecoder
from common.http import create_app
from common.idempotency import IdempotencyKeys
from common.inbox import Inbox
from common.kafka import BatchHandler, ConsumerRunner, EventHandler, Publisher
from common.logging import configure_logging
from common.migrations import upgrade
from common.outbox import Outbox, OutboxRelay
from common.runtime import ServiceRuntime
from common.settings import ServiceSettings
from common.simulation import ClockFollower, SimulatedTimeHeaders, log_move


@dataclass
class Plumbing:
    """The pieces every service has: engine, publisher, outbox + relay, inbox, idempotency."""

    settings: ServiceSettings
    engine: AsyncEngine
    publisher: Publisher
    outbox: Outbox
    relay: OutboxRelay
    inbox: Inbox
    keys: IdempotencyKeys

    def consumer(
        self, name: str, topics: list[str], decoder: EventDecoder,
        handler: EventHandler, batch_handler: BatchHandler | None = None,
    ) -> ConsumerRunner:
        s = self.settings
        return ConsumerRunner(
            name=name, engine=self.engine, bootstrap=s.kafka_bootstrap, group_id=name,
            topics=topics, decoder=decoder, handler=handler, inbox=self.inbox,
            publisher=self.publisher, batch_size=s.consumer_batch_size, poll_ms=s.consumer_poll_ms,
            batch_handler=batch_handler, max_attempts=s.consumer_max_attempts,
            stall_after_s=s.consumer_stall_after_s, dlq_max_bytes=s.dlq_max_message_bytes,
            lanes=s.consumer_lanes, fetch_wait_ms=s.consumer_fetch_wait_ms,
        )

    def runtime(
        self, consumers: list[ConsumerRunner], topics: list[str],
        extra_tasks: list[Callable[[asyncio.Event], Awaitable[None]]] | None = None,
    ) -> ServiceRuntime:
        return ServiceRuntime(settings=self.settings, engine=self.engine, publisher=self.publisher,
                              relay=self.relay, consumers=consumers, topics=topics,
                              extra_tasks=extra_tasks, inbox=self.inbox)


def plumbing(settings: ServiceSettings, outbox: Table, inbox: Table, keys: Table) -> Plumbing:
    engine = make_engine(settings.database_url)
    publisher = Publisher(settings.kafka_bootstrap, settings.service_name)
    box = Outbox(outbox)
    relay = OutboxRelay(engine, box, publisher, batch_size=settings.outbox_batch_size,
                        idle_poll_s=settings.outbox_idle_poll_s,
                        pipeline=settings.outbox_pipeline)
    return Plumbing(settings, engine, publisher, box, relay, Inbox(inbox), IdempotencyKeys(keys))


def service_app(title: str, runtime: ServiceRuntime, clock: Clock | None = None) -> FastAPI:
    """`clock`: the service's; a SimulatedClock (common.simulation.service_clock) is followed
    and announced on every response."""
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # Every command model's BusinessTime field checks against these bounds (common.clock).
    configure_business_time(runtime.settings.business_time_bounds(clock))
    app = create_app(title=title, lifespan=lifespan, readiness=runtime.readiness)
    app.state.runtime = runtime
    if isinstance(clock, SimulatedClock):
        _simulated(app, runtime, clock)
    return app


def _simulated(app: FastAPI, runtime: ServiceRuntime, clock: SimulatedClock) -> None:
    """The simulation clock: followed from the clock topic (caught up before the service's
    loops start), and said loudly on every response and page and in the log."""
    s = runtime.settings
    follower = ClockFollower(s.kafka_bootstrap, clock, s.service_name)

    async def simulation_clock(stop: asyncio.Event) -> None:
        await follower.run(stop)

    runtime.before_loops.append(follower.catch_up)
    runtime.add_task(simulation_clock)
    app.add_middleware(SimulatedTimeHeaders, clock=clock)
    app.state.simulated_clock = clock
    log_move(clock, s.service_name, "the simulation clock is ON (<PREFIX>SIMULATION_CLOCK)")


def service_cli(
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[], FastAPI],
    migrations: Path,
) -> typer.Typer:
    cli = typer.Typer(add_completion=False, no_args_is_help=True)

    @cli.command()
    def serve() -> None:
        """Run the HTTP API, the Kafka consumers and the outbox relay in this process."""
        settings = settings_factory()
        configure_logging(settings.service_name, settings.log_level)
        uvicorn.run(app_factory(), host=settings.http_host, port=settings.http_port,
                    log_config=None, access_log=False)

    @cli.command()
    def migrate() -> None:
        """Bring this service's schema to the newest migration."""
        settings = settings_factory()
        configure_logging(settings.service_name, settings.log_level)
        upgrade(migrations, settings.database_url, settings.db_schema)

    return cli
