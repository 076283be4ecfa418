"""Read a whole topic (from the beginning to the end offsets at the start) with aiokafka."""

from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: str
    envelope: dict[str, object] | None  # None: not a JSON object (poison)


async def read_topic(bootstrap: str, topic: str, key_prefix: str = "") -> list[Message]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[Message] = []
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    key = (r.key or b"").decode(errors="replace")
                    if key.startswith(key_prefix):
                        found.append(Message(tp.partition, r.offset, key, _json(r.value)))
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        return found
    finally:
        await consumer.stop()


def _json(value: bytes | None) -> dict[str, object] | None:
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
