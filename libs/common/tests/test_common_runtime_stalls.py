"""/readyz reports a stalled consumer (issue 14): the runtime asks each ConsumerRunner which
partitions are behind and not advancing (proved against real Kafka in
integration/test_common_consumer_stalls.py); here only that the answer reaches /readyz."""

from typing import Any

from aiokafka import TopicPartition
from sqlalchemy.ext.asyncio import create_async_engine

from common.runtime import ServiceRuntime
from common.settings import ServiceSettings


class Runner:
    """Stands in for a ConsumerRunner: a name and its stalled partitions."""

    def __init__(self, name: str, stalled: list[TopicPartition]) -> None:
        self.name = name
        self.stalled = stalled

    def stalled_partitions(self) -> list[TopicPartition]:
        return self.stalled


def runtime(*consumers: Runner) -> ServiceRuntime:
    engine = create_async_engine("postgresql+asyncpg://x:x@127.0.0.1:1/x")
    unused: Any = None
    return ServiceRuntime(settings=ServiceSettings(), engine=engine, publisher=unused,
                          relay=unused, consumers=list(consumers),  # type: ignore[arg-type]
                          topics=[])


async def test_a_stalled_partition_fails_readiness_and_is_named() -> None:
    rt = runtime(Runner("credit-control", [TopicPartition("billing.balance.v1", 3)]),
                 Runner("other", []))
    checks = await rt.readiness()
    assert checks["consumers"] == "stalled: ['credit-control billing.balance.v1[3]']"
    await rt.engine.dispose()


async def test_consumers_that_advance_are_ready() -> None:
    rt = runtime(Runner("credit-control", []))
    assert (await rt.readiness())["consumers"] == "ok"
    await rt.engine.dispose()


def test_the_stall_settings_have_safe_defaults() -> None:
    s = ServiceSettings()
    assert s.consumer_max_attempts == 5
    assert s.consumer_stall_after_s == 120
    assert s.dlq_max_message_bytes < 1_048_588  # the broker's default max.message.bytes
