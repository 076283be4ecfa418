"""The fifth invariant: 0 stalled partitions. Once the system is quiet, every consumer group of
the services has committed the log end of every partition it consumes; a partition left
behind is a consumer stuck on one message (issue 14), whatever the databases say.

Groups with no member (a service that is not running, a test's own group long gone) are
reported as a note, not counted: nothing consumes for them, so they cannot be stalled.
"""

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from common.contracts import (
    BALANCE_TOPIC,
    COMMANDS_TOPIC,
    DECISIONS_TOPIC,
    NOTICES_TOPIC,
    RESULTS_TOPIC,
)

from .counts import Check

# Each service's consumer group (its service name) and the topics it consumes.
GROUPS: dict[str, tuple[str, ...]] = {
    "credit-control": (BALANCE_TOPIC, RESULTS_TOPIC, NOTICES_TOPIC),
    "billing-events": (DECISIONS_TOPIC,),
    "notifier": (DECISIONS_TOPIC,),
    "gateway-adapter": (COMMANDS_TOPIC,),
}


@dataclass
class _Look:
    partitions: int = 0  # (group, partition) pairs looked at
    idle: int = 0  # groups without a member
    behind: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)  # → lag


async def check_stalls(bootstrap: str, settle_s: float = 30.0,
                       groups: dict[str, tuple[str, ...]] | None = None) -> Check:
    """Waits up to `settle_s` for every running group to reach the log end ("once quiet"),
    then counts each partition still behind as lost (its events are not applied)."""
    c = Check("consumer groups")
    deadline = time.monotonic() + settle_s
    while True:
        look = await _look(bootstrap, groups or GROUPS)
        if not look.behind or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.5)
    c.expected, c.found = look.partitions, look.partitions - len(look.behind)
    c.flag("lost", len(look.behind), [
        f"{group} {tp.topic}[{tp.partition}]: {lag} behind"
        for (group, tp), lag in sorted(look.behind.items(), key=str)])
    c.notes["stalled partitions"] = len(look.behind)
    c.notes["groups not running"] = look.idle
    return c


async def _look(bootstrap: str, groups: dict[str, tuple[str, ...]]) -> _Look:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        states = await _states(admin, list(groups))
        topics = sorted({t for ts in groups.values() for t in ts})
        partitions = [TopicPartition(d["topic"], p["partition"])
                      for d in await admin.describe_topics(topics) if not d["error_code"]
                      for p in d["partitions"]]
        ends = await consumer.end_offsets(partitions)
        look = _Look()
        for group, consumed in groups.items():
            if states.get(group, "Dead") in ("Empty", "Dead"):
                look.idle += 1
                continue
            committed = await admin.list_consumer_group_offsets(group)
            for tp in (tp for tp in partitions if tp.topic in consumed):
                done = committed.get(tp)
                lag = ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
                look.partitions += 1
                if lag > 0:
                    look.behind[(group, tp)] = lag
        return look
    finally:
        await consumer.stop()
        await admin.close()


async def _states(admin: AIOKafkaAdminClient, groups: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for group in groups:  # one at a time: aiokafka misreads a response for several groups
        for response in await admin.describe_consumer_groups([group]):
            for g in response.groups:
                error_code, group_id, state = g[0], g[1], g[2]
                if not error_code:
                    found[group_id] = state
    return found
