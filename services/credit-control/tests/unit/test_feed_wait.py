"""The wait before a new sweep (credit/service_layer/feed_wait.py) against the in-memory feed:
caught up at once, catching up during the wait, ends that move on afterwards, never caught up,
and a broker that does not answer."""

import asyncio
import time

import pytest

from credit_control.credit.adapters.balance_feed import InMemoryBalanceFeed
from credit_control.credit.service_layer.feed_wait import (
    FeedBehind,
    Partition,
    behind,
    wait_until_applied,
)
from credit_control.metrics import SWEEP_FEED_LAG, SWEEPS_DEFERRED

B0: Partition = ("billing.balance.v1", 0)
B1: Partition = ("billing.balance.v1", 1)
R0: Partition = ("provisioning.results.v1", 0)


def test_behind_names_only_the_partitions_short_of_their_end() -> None:
    assert behind({B0: 5, B1: 3, R0: 0}, {B0: 5, B1: 1}) == {B1: 2}
    assert behind({B0: 5}, {B0: 7}) == {}  # applied past the end read: caught up


async def test_no_feed_or_no_wait_is_no_check() -> None:
    never = InMemoryBalanceFeed({B0: 1})
    await wait_until_applied(None, 60, "S")
    await wait_until_applied(never, 0, "S")
    assert never.asked == 0


async def test_caught_up_returns_at_once() -> None:
    feed = InMemoryBalanceFeed({B0: 4, B1: 2}, {B0: 4, B1: 2})
    started = time.monotonic()
    await wait_until_applied(feed, 60, "S")
    assert time.monotonic() - started < 1
    assert feed.asked == 1
    assert SWEEP_FEED_LAG._value.get() == 0


async def test_waits_until_the_ends_read_at_the_start_are_applied_not_later_ones() -> None:
    feed = InMemoryBalanceFeed({B0: 4, B1: 2}, {B0: 1, B1: 2})

    async def consumer() -> None:
        await asyncio.sleep(0.3)
        feed.publish(B0, 10)  # published after the sweep began: need not be applied
        feed.apply(B0, 4)

    task = asyncio.create_task(consumer())
    started = time.monotonic()
    await wait_until_applied(feed, 10, "S")
    await task
    assert 0.25 < time.monotonic() - started < 2
    assert feed.asked >= 2


async def test_never_caught_up_is_refused_with_the_lag() -> None:
    feed = InMemoryBalanceFeed({B0: 9, R0: 3}, {B0: 2, R0: 3})
    deferred = SWEEPS_DEFERRED._value.get()
    started = time.monotonic()
    with pytest.raises(FeedBehind) as refused:
        await wait_until_applied(feed, 0.5, "S1")
    assert 0.5 <= time.monotonic() - started < 2
    err = refused.value
    assert (err.status_code, err.retry_after_s) == (503, 10)
    body = err.body()
    assert body["error"] == "unavailable"
    assert body["reason"] == "balance_feed_behind"
    assert (body["id"], body["behind"], body["safe_to_retry"]) == ("S1", 7, True)
    assert body["lag"] == [{"topic": "billing.balance.v1", "partition": 0, "end": 9,
                            "applied": 2, "behind": 7}]
    assert 0.5 <= body["waited_s"] < 2
    assert "7 behind on billing.balance.v1" in body["message"]
    assert SWEEPS_DEFERRED._value.get() == deferred + 1
    assert SWEEP_FEED_LAG._value.get() == 7
    assert isinstance(err.__cause__, TimeoutError)  # the scheduler's loop: a warning, backoff


class _Down:
    async def ends(self) -> dict[Partition, int]:
        raise ConnectionError("no broker")

    async def applied(self, partitions: list[Partition]) -> dict[Partition, int]:
        raise AssertionError("never asked without ends")


async def test_a_broker_that_does_not_answer_is_never_swept_blind() -> None:
    with pytest.raises(FeedBehind) as refused:
        await wait_until_applied(_Down(), 0.5, "S2")
    body = refused.value.body()
    assert body["behind"] is None and body["lag"] == []
    assert body["feed_error"] == "ConnectionError: no broker"
    assert "Kafka did not answer" in body["message"]
    assert SWEEP_FEED_LAG._value.get() == -1


class _Hangs(InMemoryBalanceFeed):
    async def applied(self, partitions: list[Partition]) -> dict[Partition, int]:
        await asyncio.sleep(3600)
        return {}


async def test_a_question_that_hangs_is_bounded_by_the_wait() -> None:
    started = time.monotonic()
    with pytest.raises(FeedBehind) as refused:
        await wait_until_applied(_Hangs({B0: 1}), 0.3, "S3")
    assert time.monotonic() - started < 1.5
    assert "no answer in time" in refused.value.message
