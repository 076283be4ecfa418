"""Every garbage collection's pause is measured, and a long one is logged from the event
loop, never from inside the collection."""

import asyncio
import gc
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, generate_latest

from common import runtime


@pytest.fixture(autouse=True)
def own_callbacks() -> Iterator[None]:
    """The interpreter's own list (CPython reads that object, not the module attribute)."""
    saved = list(gc.callbacks)
    gc.callbacks.clear()
    yield
    gc.callbacks[:] = saved


def _count(generation: int) -> float:
    value = REGISTRY.get_sample_value("creditctl_gc_pause_seconds_count",
                                      {"generation": str(generation)})
    return value or 0.0


def test_each_collection_is_observed_by_generation() -> None:
    threshold = gc.get_threshold()
    try:
        runtime.tune_gc()
        runtime.tune_gc()  # a second start does not count collections twice
        assert gc.callbacks == [runtime.GC_PAUSES.callback]
        before = _count(2), _count(0)
        gc.collect()
        gc.collect(0)
        assert (_count(2), _count(0)) == (before[0] + 1, before[1] + 1)
        text = generate_latest(REGISTRY).decode()
        assert 'creditctl_gc_pause_seconds_bucket{generation="2",le="+Inf"}' in text
        inf = REGISTRY.get_sample_value("creditctl_gc_pause_seconds_bucket",
                                        {"generation": "2", "le": "+Inf"})
        assert inf == _count(2)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def test_a_long_pause_is_logged_by_the_loop_after_the_collection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    gc.callbacks.append(runtime.GC_PAUSES.callback)
    monkeypatch.setattr(runtime, "GC_PAUSE_LOGGED_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="common.runtime"):
        gc.collect(1)
        said = [r for r in caplog.records if "generation 1 stopped" in r.getMessage()]
        assert said == []  # not from inside the collection
        await asyncio.sleep(0)
    assert any("garbage collection of generation 1 stopped the process" in r.getMessage()
               for r in caplog.records)
