"""How a poll's partitions are shared among the consumer's free lanes (common.kafka._Lanes)."""

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from common.kafka import _Lanes


def _polled(sizes: dict[int, int]) -> dict[TopicPartition, list[Any]]:
    return {TopicPartition("t", p): [object()] * n for p, n in sizes.items()}


def _shape(groups: list[dict[TopicPartition, list[Any]]]) -> list[dict[int, int]]:
    return [{tp.partition: len(r) for tp, r in g.items()} for g in groups]


def test_one_lane_takes_the_whole_poll() -> None:
    polled = _polled({0: 5, 1: 3})
    assert _Lanes(1).split(polled) == [polled]


def test_two_lanes_share_the_records_evenly_busiest_first() -> None:
    groups = _Lanes(2).split(_polled({0: 10, 1: 5, 2: 5}))
    assert _shape(groups) == [{0: 10}, {1: 5, 2: 5}]


def test_never_more_groups_than_partitions_nor_lanes() -> None:
    assert _shape(_Lanes(4).split(_polled({3: 7}))) == [{3: 7}]
    assert len(_Lanes(2).split(_polled({0: 1, 1: 1, 2: 1, 3: 1}))) == 2


def test_every_record_goes_to_exactly_one_lane() -> None:
    polled = _polled({p: p + 1 for p in range(6)})
    groups = _Lanes(3).split(polled)
    seen = [tp for g in groups for tp in g]
    assert sorted(seen) == sorted(polled) and len(seen) == len(set(seen))
    assert all(g[tp] is polled[tp] for g in groups for tp in g)


def test_an_empty_poll_starts_nothing() -> None:
    assert _Lanes(2).split({}) == []


class _FakeConsumer:
    """What _Lanes asks of aiokafka's consumer: the assignment, and polls (recorded)."""

    def __init__(self, partitions: int, ready: dict[int, int]) -> None:
        self.assigned = {TopicPartition("t", p) for p in range(partitions)}
        self.ready = ready  # partition -> records waiting
        self.polls: list[tuple[frozenset[int], int]] = []
        self.running = 0

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int,
                      max_records: int) -> dict[TopicPartition, list[Any]]:
        self.running += 1
        try:
            asked = {tp.partition for tp in partitions} or {tp.partition for tp in self.assigned}
            self.polls.append((frozenset(asked), timeout_ms))
            got = {p: n for p, n in self.ready.items() if p in asked and n}
            if not got:
                await asyncio.sleep(timeout_ms / 1000)
                return {}
            for p in got:
                self.ready[p] = 0
            return {TopicPartition("t", p): [object()] * n for p, n in got.items()}
        finally:
            self.running -= 1


async def test_a_poll_asks_only_for_partitions_not_in_flight_and_is_short_meanwhile() -> None:
    consumer = _FakeConsumer(3, {0: 5})
    lanes = _Lanes(2)
    first = await lanes.next(consumer, 200, 100)  # type: ignore[arg-type]
    assert {tp.partition for tp in first} == {0}
    release = asyncio.Event()
    for group in lanes.split(first):
        lanes.start(group, release.wait())
    consumer.ready[1] = 3
    second = await lanes.next(consumer, 200, 100)  # type: ignore[arg-type]
    assert {tp.partition for tp in second} == {1}
    assert consumer.polls[-1] == (frozenset({1, 2}), 20)  # not partition 0, and short
    release.set()
    await lanes.close()
    assert consumer.running == 0  # every poll ran to its end: none cancelled


async def test_a_batch_that_raises_is_raised_by_next() -> None:
    consumer = _FakeConsumer(1, {0: 1})
    lanes = _Lanes(2)
    polled = await lanes.next(consumer, 50, 10)  # type: ignore[arg-type]

    async def broken() -> None:
        raise RuntimeError("a bug in the handler")

    lanes.start(polled, broken())
    with pytest.raises(RuntimeError, match="a bug"):
        for _ in range(10):
            await lanes.next(consumer, 50, 10)  # type: ignore[arg-type]
    await lanes.close()
