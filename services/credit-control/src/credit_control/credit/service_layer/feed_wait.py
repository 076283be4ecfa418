"""Has the balance feed been applied up to now? A new sweep decides on the account positions and
product facts credit-control holds, so it first waits until this service's consumer has applied
every event published to its topics (billing.balance.v1, chain results, SMS outcomes) before
the sweep began: otherwise a customer whose payment still sits in the topic is suspended, then
restored when the payment arrives — the chain moves twice and the customer is cut off by mistake.

The consumer commits its offsets only after its database transaction (common.kafka), so its
group's committed offsets reaching the ends read when the sweep began means every event
published before it is applied. Ends that moved on meanwhile need not be reached: a busy billing
never has zero lag. Not covered: what billing committed in its own database that its outbox
relay has not yet published to Kafka (docs/credit-control.md "A sweep waits for the balance
feed")."""

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from common.errors import Unavailable

from ...metrics import SWEEP_FEED_LAG, SWEEPS_DEFERRED

log = logging.getLogger(__name__)

Partition = tuple[str, int]  # (topic, partition)

POLL_S = 0.2  # how often the group's progress is asked again while it is behind
RETRY_AFTER_S = 10  # a refused sweep: when to send it again (a scheduled one: PollLoop backoff)


class BalanceFeed(Protocol):
    """The consumer's topics and its group's progress on them (adapters/balance_feed.py)."""

    async def ends(self) -> dict[Partition, int]:
        """Every partition of the topics, with its end offset now (the next to be written)."""
        ...

    async def applied(self, partitions: list[Partition]) -> dict[Partition, int]:
        """Per partition, the offset before which the group applied everything: its committed
        offset, or the log's start where it never committed (nothing older is left)."""
        ...


@dataclass
class _Seen:
    """What the last look at the feed found, for the refusal and the gauge."""

    ends: dict[Partition, int] | None = None
    applied: dict[Partition, int] | None = None
    error: str | None = None

    def behind(self) -> dict[Partition, int]:
        if self.ends is None or self.applied is None:
            return {}
        return behind(self.ends, self.applied)


def behind(ends: dict[Partition, int], applied: dict[Partition, int]) -> dict[Partition, int]:
    """The partitions not applied up to `ends`, with how many events each still lacks."""
    return {p: end - applied.get(p, 0) for p, end in ends.items() if applied.get(p, 0) < end}


class FeedBehind(Unavailable):
    """A new sweep not started: the feed was not applied up to its start in time."""


async def wait_until_applied(feed: BalanceFeed | None, wait_s: float, sweep_id: str) -> None:
    """Returns once the events published before this call are applied; raises FeedBehind
    (nothing written) when that takes longer than `wait_s` or Kafka cannot be asked: a sweep
    never decides blind. No feed (tests, benches) or `wait_s` 0: no check."""
    if feed is None or wait_s <= 0:
        return
    started, seen = time.monotonic(), _Seen()
    try:
        async with asyncio.timeout(wait_s):
            await _poll(feed, seen)
    except TimeoutError as exc:
        # Raised from the TimeoutError: the scheduler's PollLoop logs it as what it is, a
        # wait on the infrastructure (a warning, no traceback), and backs off.
        raise _refusal(sweep_id, seen, time.monotonic() - started) from exc
    SWEEP_FEED_LAG.set(0)


async def _poll(feed: BalanceFeed, seen: _Seen) -> None:
    """Until the group's offsets reach the ends first read. A failed question (the broker
    away) is asked again: until the bound, it counts as behind."""
    while True:
        try:
            if seen.ends is None:
                seen.ends = await feed.ends()
            seen.applied = await feed.applied(list(seen.ends))
            seen.error = None
            lag = seen.behind()
            if not lag:
                return
            SWEEP_FEED_LAG.set(sum(lag.values()))
        except Exception as exc:  # Kafka down or slow: not known to be caught up
            seen.error = f"{type(exc).__name__}: {exc}"
            SWEEP_FEED_LAG.set(-1)
        await asyncio.sleep(POLL_S)


def _refusal(sweep_id: str, seen: _Seen, waited: float) -> FeedBehind:
    SWEEPS_DEFERRED.inc()
    lag = seen.behind()
    if seen.applied is None:
        what = f"Kafka did not answer ({seen.error or 'no answer in time'})"
    else:
        per_topic: dict[str, int] = {}
        for (topic, _), n in lag.items():
            per_topic[topic] = per_topic.get(topic, 0) + n
        what = "still " + ", ".join(f"{n} behind on {t}" for t, n in sorted(per_topic.items()))
    log.warning("sweep %s not started after waiting %.1f s for the balance feed: %s",
                sweep_id, waited, what)
    return FeedBehind(
        f"sweep {sweep_id} not started: credit-control has not applied the events published "
        f"before it ({what}, waited {waited:.1f} s); nothing was written, send the same "
        f"request again later",
        retry_after_s=RETRY_AFTER_S, reason="balance_feed_behind", id=sweep_id,
        waited_s=round(waited, 3), behind=sum(lag.values()) if seen.applied is not None else None,
        lag=[{"topic": t, "partition": p, "end": (seen.ends or {})[(t, p)],
              "applied": (seen.applied or {}).get((t, p), 0), "behind": n}
             for (t, p), n in sorted(lag.items())],
        **({"feed_error": seen.error} if seen.error else {}))
