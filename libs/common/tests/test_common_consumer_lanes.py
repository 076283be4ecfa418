"""How a poll's partitions are shared among the consumer's free lanes (common.kafka._Lanes)."""

from typing import Any

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
