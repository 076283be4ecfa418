"""Publish rate with one broker (replication factor 1) against three (replication factor 3,
min.insync.replicas=2), through the services' own producer (`common.kafka.Publisher`:
idempotent, acks=all, `enqueue_many` as the outbox relay sends). Rounds alternate between the
two clusters so both see the same background load; the medians are printed side by side.

    uv run python tests/chaos_ha/throughput.py --single 127.0.0.1:31092 \\
        --ha 127.0.0.1:35092,127.0.0.1:35192,127.0.0.1:35292 [--records 50000] [--rounds 3]

A script, not a test (docs/scaling.md quotes it). On this shared 2-core machine the absolute
rates say little; the ratio measured in the same minutes is the figure.
"""

import argparse
import asyncio
import json
import statistics
import time
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from common.kafka import Publisher

VALUE = b"x" * 300  # about a balance event's envelope


async def make_topic(bootstrap: str, copies: int) -> str:
    name = f"bench.ha.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=name, num_partitions=6,
                                            replication_factor=copies)])
    finally:
        await admin.close()
    return name


async def rate(bootstrap: str, copies: int, records: int) -> float:
    topic = await make_topic(bootstrap, copies)
    publisher = Publisher(bootstrap, "ha-throughput")
    await publisher.start()
    try:
        await publisher.send_many([(topic, b"warm", VALUE)])  # metadata, producer id
        messages = [(topic, f"acct-{n % 5000}".encode(), VALUE) for n in range(records)]
        started = time.perf_counter()
        for n in range(0, records, 5000):  # the relay's batch size
            await asyncio.gather(*await publisher.enqueue_many(messages[n:n + 5000]))
        return records / (time.perf_counter() - started)
    finally:
        await publisher.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", required=True, help="bootstrap of the one-broker stack")
    parser.add_argument("--ha", required=True, help="bootstrap of the three-broker stack")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    one: list[float] = []
    three: list[float] = []
    for _ in range(args.rounds):
        one.append(await rate(args.single, 1, args.records))
        three.append(await rate(args.ha, 3, args.records))
    out = {"records": args.records, "rounds": args.rounds,
           "one_broker_rf1_per_s": round(statistics.median(one)),
           "three_brokers_rf3_isr2_per_s": round(statistics.median(three)),
           "ratio": round(statistics.median(three) / statistics.median(one), 2),
           "all_one": [round(r) for r in one], "all_three": [round(r) for r in three]}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
