"""Start-up against a broker that may be brand new: wait until the topics a service touches
have a leader on every partition and each consumer group has a coordinator before any
consumer subscribes, and log what is expected and retried while Kafka settles as WARNING,
not ERROR (issue 20: a first start logged ~24 ERROR lines that needed no one's action)."""

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from common.kafka import dead_letter_topic

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 60.0
_POLL_S = 0.25


class KafkaNotSettled(RuntimeError):
    """The topics or the group coordinator were not ready within the timeout."""


async def wait_until_settled(bootstrap: str, topics: Iterable[str], group_ids: Iterable[str],
                             timeout_s: float = READY_TIMEOUT_S) -> None:
    """Returns once every topic (and its dead-letter topic) has a leader for each partition
    and every group's coordinator answers. On a new broker the coordinator's own topic
    (__consumer_offsets) is made by the first FindCoordinator request and takes seconds: a
    consumer started before that logs aiokafka's "Group Coordinator Request failed" at ERROR."""
    names = sorted({n for t in topics for n in (t, dead_letter_topic(t))})
    groups = sorted(set(group_ids))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout_s
    try:
        await admin.start()
        waiting = await _not_settled(admin, names, groups)
        if waiting:
            log.info("Kafka is settling (normal on a new broker or just-made topics): "
                     "waiting for %s", waiting)
        while waiting:
            if time.monotonic() > deadline:
                raise KafkaNotSettled(f"after {timeout_s:.0f}s still waiting for {waiting}")
            await asyncio.sleep(_POLL_S)
            waiting = await _not_settled(admin, names, groups)
        log.info("Kafka settled: %d topics led, %d group coordinator(s) found",
                 len(names), len(groups))
    finally:
        await admin.close()


async def _not_settled(admin: AIOKafkaAdminClient, topics: list[str],
                       groups: list[str]) -> list[str]:
    """What is not ready yet, in words: `topic X (no leader)`, `coordinator of G`."""
    missing = []
    for t in await admin.describe_topics(topics):
        parts = t.get("partitions") or []
        if t["error_code"] or not parts or any(p["error_code"] or p["leader"] < 0 for p in parts):
            missing.append(f"topic {t['topic']} (no leader yet)")
    for group in groups:
        try:
            await admin.find_coordinator(group)
        except KafkaError:
            missing.append(f"coordinator of group {group}")
    return missing


# aiokafka's ERROR lines for conditions it retries by itself and that pass as the broker
# settles (a new broker, a topic just made, a leader moving): logged as WARNING, with why.
_TRANSIENT = (
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed"),
    ("aiokafka.cluster", "not found in cluster metadata"),
    ("aiokafka.consumer.fetcher", "Failed fetch offsets"),
)
_WHY = " (transient while Kafka starts or moves a leader; retried by the client)"


class TransientKafkaErrors(logging.Filter):
    """A handler filter: demotes aiokafka's ERROR records for the retried, transient
    conditions above to WARNING and says so. Anything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and any(
                record.name == name and text in str(record.msg) for name, text in _TRANSIENT):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg}{_WHY}"
        return True
