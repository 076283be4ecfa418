"""The simulation clock inside a service process (docs/simulation-clock.md): which clock the
service runs on, following credit-control's moves of it, and saying loudly that simulated
time is on (every HTTP response's headers, a banner on every HTML page, the logs).

Only with `<PREFIX>SIMULATION_CLOCK=true`; without it none of this is wired and a service
runs on the system clock exactly as before."""

import asyncio
import contextlib
import html
import logging
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.clock import BUSINESS_TZ, Clock, ClockMovesBackward, SimulatedClock, SystemClock
from common.contracts import registry
from common.contracts.clock import CLOCK_TOPIC, SimulatedClockMoved
from common.envelope import UnprocessableMessage
from common.kafka import create_missing_topics, topic_replication_factor
from common.settings import ServiceSettings

log = logging.getLogger(__name__)

SIMULATED_TIME_HEADER = "X-Simulated-Time"  # business time now, ISO-8601 in +08:00
SIMULATED_CLOCK_HEADER = "X-Simulated-Clock"  # "on; offset=<seconds>s"


def service_clock(settings: ServiceSettings, base: Clock | None = None) -> Clock:
    """The clock a service runs on: simulated (starting at its base, moved by credit-control)
    when the setting is on, else its base clock (the system clock)."""
    base = base or SystemClock()
    return SimulatedClock(base) if settings.simulation_clock else base


def wake_on_move(clock: Clock, wake: asyncio.Event | None = None) -> asyncio.Event | None:
    """An event set on every move of a simulated clock, for a loop that idles until a time
    on that clock (PollLoop.wake): a scheduler asleep until 20:00 wakes when the clock jumps
    past it. `wake` itself (None or a loop's own event, now also set on moves) otherwise."""
    if not isinstance(clock, SimulatedClock):
        return wake
    event = wake or asyncio.Event()
    clock.on_move(lambda _offset: event.set())
    return event


def simulated_now_text(clock: SimulatedClock) -> str:
    return clock.now().astimezone(BUSINESS_TZ).isoformat(timespec="seconds")


def offset_text(offset: timedelta) -> str:
    """`+3d 04:00:00`: how far business time is ahead of the wall clock."""
    days, rest = divmod(int(offset.total_seconds()), 86_400)
    hours, rest = divmod(rest, 3600)
    return f"+{days}d {hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def log_move(clock: SimulatedClock, service: str, why: str) -> None:
    log.warning("SIMULATED TIME (%s): business time is now %s, %s ahead of the wall clock (%s)",
                service, simulated_now_text(clock), offset_text(clock.offset), why)


class ClockFollower:
    """Reads the clock topic (compacted, one partition) without a consumer group: at start-up
    from its beginning to its end, before the service's loops start (`catch_up`), then every
    later move (`run`). Each record sets the clock's offset; a smaller one is ignored."""

    def __init__(self, bootstrap: str, clock: SimulatedClock, service: str) -> None:
        self.bootstrap = bootstrap
        self.clock = clock
        self.service = service
        self.seq = 0
        self._decoder = registry(SimulatedClockMoved)
        self._consumer: AIOKafkaConsumer | None = None
        self._tp = TopicPartition(CLOCK_TOPIC, 0)

    async def catch_up(self) -> None:
        await ensure_clock_topic(self.bootstrap)
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="earliest")
            await consumer.start()
            consumer.assign([self._tp])
            await consumer.seek_to_beginning(self._tp)
            self._consumer = consumer
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        while await self._consumer.position(self._tp) < end:
            await self._poll(500)
        log_move(self.clock, self.service, f"followed {self.seq} move(s) at start-up")

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if self._consumer is None:
                await self.catch_up()
            while not stop.is_set():
                await self._poll(500)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _poll(self, timeout_ms: int) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(self._tp, timeout_ms=timeout_ms)
        for record in batches.get(self._tp, []):
            self.apply(record.value)

    def apply(self, raw: bytes | None) -> bool:
        """One record of the topic: True when it moved the clock."""
        try:
            envelope = self._decoder.decode(raw)
        except UnprocessableMessage as exc:
            log.error("clock topic: a record that is not a clock move is ignored: %s", exc)
            return False
        move: SimulatedClockMoved = envelope.payload
        # Offsets only grow, so the largest wins whatever the order: no reliance on `seq`
        # (a database restored without the topic numbers its moves from 1 again).
        self.seq = max(self.seq, move.seq)
        try:
            moved = self.clock.move_to_offset(timedelta(seconds=move.offset_s))
        except ClockMovesBackward:
            return False  # this process is ahead already (it made the move itself)
        if moved:
            log_move(self.clock, self.service, f"move {move.seq} by {move.moved_by}: "
                                               f"{move.reason or 'no reason given'}")
        return moved


async def ensure_clock_topic(bootstrap: str) -> None:
    """The clock topic, if missing: one partition (one order of moves), compacted (the
    latest record is the state, kept as long as the topic lives)."""
    await create_missing_topics(bootstrap, [NewTopic(
        name=CLOCK_TOPIC, num_partitions=1, replication_factor=topic_replication_factor(),
        topic_configs={"cleanup.policy": "compact"})])


# --- Loud: headers on every response, a banner on every page ---------------------------------

BANNER_STYLE = ("background:#b00020;color:#fff;font:bold 15px/1.6 sans-serif;padding:6px 12px;"
                "text-align:center;position:sticky;top:0;z-index:9999")


def banner(clock: SimulatedClock) -> bytes:
    text = (f"模拟时钟 SIMULATED TIME {simulated_now_text(clock)} "
            f"({offset_text(clock.offset)} ahead of the wall clock): not the real time")
    return (f'<div class="simulated-time" role="alert" style="{BANNER_STYLE}">'
            f"{html.escape(text)}</div>").encode()


def with_banner(body: bytes, clock: SimulatedClock) -> bytes:
    """The page with the banner first in its <body> (the page as it is when it has none)."""
    start = body.find(b"<body")
    end = body.find(b">", start) if start >= 0 else -1
    if end < 0:
        return body
    return body[:end + 1] + banner(clock) + body[end + 1:]


class SimulatedTimeHeaders:
    """ASGI middleware: `X-Simulated-Time` and `X-Simulated-Clock` on every HTTP response,
    and the banner on every HTML page (its body buffered to insert it)."""

    def __init__(self, app: ASGIApp, clock: SimulatedClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[SIMULATED_TIME_HEADER] = simulated_now_text(self.clock)
                headers[SIMULATED_CLOCK_HEADER] = (
                    f"on; offset={int(self.clock.offset.total_seconds())}s")
                if headers.get("content-type", "").startswith("text/html"):
                    held = message  # sent with the page once its body is whole
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = with_banner(b"".join(chunks), self.clock)
            headers = MutableHeaders(scope=held)
            if "content-length" in headers:
                headers["content-length"] = str(len(body))
            await send(held)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, sending)
