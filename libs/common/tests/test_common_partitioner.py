"""The publisher's murmur2 puts every key on the partition aiokafka's default partitioner
(and so the Java client) would: other producers of the same topics and the relay agree."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from hypothesis import given
from hypothesis import strategies as st

from common.kafka import murmur2


@given(st.binary(max_size=400))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == reference(key)


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_the_partition_of_a_key_is_the_default_partitioners(key: str, n: int) -> None:
    raw = key.encode()
    partitions = list(range(n))
    assert partitions[(murmur2(raw) & 0x7FFFFFFF) % n] == DefaultPartitioner()(
        raw, partitions, partitions)
