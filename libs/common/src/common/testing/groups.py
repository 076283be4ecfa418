"""What Kafka says about a consumer group: its members and their partitions, and its lag
(committed offsets against the log end). Used by the scale-out test and the soak bench."""

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[TopicPartition, ...]


async def group_members(bootstrap: str, group: str) -> tuple[str, list[Member]]:
    """The group's state (Stable, PreparingRebalance, …) and each member's assignment."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    state, members = "Dead", []
    for response in responses:
        for g in response.groups:
            error_code, group_id, state = g[0], g[1], g[2]
            if error_code or group_id != group:
                continue
            for m in g[5]:
                member_id, client_id, host, raw = m[0], m[1], m[2], m[4]
                parts = (tuple(ConsumerProtocolMemberAssignment.decode(raw).partitions())
                         if raw else ())
                members.append(Member(member_id, client_id, host, parts))
    return state, members


async def group_lag(bootstrap: str, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Per partition: log end offset − the group's committed offset (all of it if none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(d["topic"], p["partition"])
                      for d in await admin.describe_topics(topics) if not d["error_code"]
                      for p in d["partitions"]]
        if len({tp.topic for tp in partitions}) < len(set(topics)):
            raise LookupError(f"not every topic of {topics} exists")
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    lag = {}
    for tp in partitions:
        done = committed.get(tp)
        lag[tp] = max(ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0), 0)
    return lag
