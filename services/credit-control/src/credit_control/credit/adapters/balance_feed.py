"""The balance feed's progress (service_layer/feed_wait.py `BalanceFeed`): from the broker, the
end offsets of the consumer's topics and its group's committed offsets; in memory, scripted by
use-case tests."""

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ..service_layer.feed_wait import Partition

REQUEST_TIMEOUT_MS = 10_000  # one question to the broker; the sweep's wait bounds them all


class KafkaBalanceFeed:
    """An admin client (the group's offsets, the topics' partitions) and a consumer outside
    any group (end and start offsets), made on first use inside the running loop (aiokafka
    binds to it) and kept: `close` at shutdown (bootstrap.py). A client that failed to start
    is dropped, so the next question tries again."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self.bootstrap, self.group, self.topics = bootstrap, group, topics
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None
        self._lock = asyncio.Lock()

    async def ends(self) -> dict[Partition, int]:
        admin, consumer = await self._started()
        found = [TopicPartition(d["topic"], p["partition"])
                 for d in await admin.describe_topics(self.topics) if not d["error_code"]
                 for p in d["partitions"]]
        missing = set(self.topics) - {tp.topic for tp in found}
        if missing:  # the runtime creates them at start-up: not knowable yet
            raise LookupError(f"topics not found: {sorted(missing)}")
        return {(tp.topic, tp.partition): end
                for tp, end in (await consumer.end_offsets(found)).items()}

    async def applied(self, partitions: list[Partition]) -> dict[Partition, int]:
        admin, consumer = await self._started()
        tps = [TopicPartition(t, p) for t, p in partitions]
        committed = await admin.list_consumer_group_offsets(self.group, partitions=tps)
        done = {tp: c.offset for tp, c in committed.items() if c is not None and c.offset >= 0}
        never = [tp for tp in tps if tp not in done]
        if never:  # never committed: only what is still in the log is left to apply
            done.update(await consumer.beginning_offsets(never))
        return {(tp.topic, tp.partition): offset for tp, offset in done.items()}

    async def _started(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        async with self._lock:
            if self._clients is None:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                            client_id=f"{self.group}-feed",
                                            request_timeout_ms=REQUEST_TIMEOUT_MS)
                consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                            client_id=f"{self.group}-feed",
                                            enable_auto_commit=False,
                                            request_timeout_ms=REQUEST_TIMEOUT_MS)
                try:
                    await admin.start()
                    await consumer.start()
                except BaseException:
                    await _close(admin, consumer)
                    raise
                self._clients = (admin, consumer)
            return self._clients

    async def close(self) -> None:
        async with self._lock:
            if self._clients is not None:
                await _close(*self._clients)
                self._clients = None


async def _close(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    finally:
        await admin.close()


@dataclass
class InMemoryBalanceFeed:
    """A feed for use-case tests: `publish` moves a partition's end, `apply` the group's
    offset; `apply_all` catches up. Caught up when made without arguments."""

    end: dict[Partition, int] = field(default_factory=dict)
    done: dict[Partition, int] = field(default_factory=dict)
    asked: int = 0  # how many times the group's progress was asked

    def publish(self, partition: Partition, n: int = 1) -> None:
        self.end[partition] = self.end.get(partition, 0) + n

    def apply(self, partition: Partition, upto: int) -> None:
        self.done[partition] = upto

    def apply_all(self) -> None:
        self.done.update(self.end)

    async def ends(self) -> dict[Partition, int]:
        return dict(self.end)

    async def applied(self, partitions: list[Partition]) -> dict[Partition, int]:
        self.asked += 1
        return {p: self.done.get(p, 0) for p in partitions}
