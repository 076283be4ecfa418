"""Where credit-control's CPU per balance event goes, by part of the batch (`credit_bench
--cpu-only --sections`): the process's CPU time (`time.process_time`, the kernel's share of
a round trip included, which callgrind's instruction counts leave out) spent in each of the
store's reads and writes, in deciding, in the rating's inputs and in the inbox claim, per
event. Each part is timed around its await, so a part's figure includes its statement's
round trip (the request sent, the answer read) but not the server's own work.

The timers are wrappers put on the classes and modules for the duration of a `with
sections() as parts:` block, and taken off again."""

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

from common.inbox import Inbox
from credit_control.credit.service_layer import balance_events
from credit_control.credit.service_layer.balance_store import SqlBalanceStore
from credit_control.rating.adapters import rating_sql

STORE = ("advance_positions", "upsert_products", "rule_table", "profiles",
         "taken_decisions", "open_freezes", "open_promises", "held_by_collections", "write",
         "close_cleared")
OTHERS = ((balance_events.Batch, "decide", "decide"),
          (rating_sql, "record_inputs", "rating inputs"),
          (Inbox, "claim_many", "inbox claim"), (Inbox, "claim_new", "inbox claim"))


def _timed(parts: dict[str, float], label: str, call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return await call(*args, **kwargs)
        finally:
            parts[label] = parts.get(label, 0.0) + time.process_time() - started
    return timed


@contextlib.contextmanager
def sections() -> Iterator[dict[str, float]]:
    """The parts' CPU seconds, summed, while the block runs."""
    parts: dict[str, float] = {}
    patched = [(SqlBalanceStore, name, name) for name in STORE] + list(OTHERS)
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]
    try:
        for owner, name, label in patched:
            setattr(owner, name, _timed(parts, label, getattr(owner, name)))
        yield parts
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def report(parts: dict[str, float], events: int, total_us: float) -> list[str]:
    """One line per part, µs an event, largest first; the rest of the measured total
    (decoding, the transaction's begin and commit, the batch's own code) last."""
    lines = [f"    {label:22s} {seconds / events * 1e6:6.2f} µs"
             for label, seconds in sorted(parts.items(), key=lambda p: -p[1])]
    rest = total_us - sum(parts.values()) / events * 1e6
    return [*lines, f"    {'the rest':22s} {rest:6.2f} µs (decode, begin and commit, the "
            "batch's own code)"]
