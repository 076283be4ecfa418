"""Every garbage collection's pause is measured, and a long one is logged."""

import gc
import logging
from collections.abc import Iterator

import pytest

from common import metrics, runtime


def _count(generation: int) -> float:
    for sample in metrics.GC_PAUSES.collect()[0].samples:
        if sample.name.endswith("_count") and sample.labels["generation"] == str(generation):
            return sample.value
    return 0.0


@pytest.fixture(autouse=True)
def own_callbacks() -> Iterator[None]:
    """The interpreter's own list (CPython reads that object, not the module attribute)."""
    saved = list(gc.callbacks)
    gc.callbacks.clear()
    yield
    gc.callbacks[:] = saved


def test_each_collection_is_observed_by_generation() -> None:
    threshold = gc.get_threshold()
    try:
        runtime.tune_gc()
        runtime.tune_gc()  # a second start does not count collections twice
        assert gc.callbacks == [runtime._gc_timer]
        before = _count(2), _count(0)
        gc.collect()
        gc.collect(0)
        assert (_count(2), _count(0)) == (before[0] + 1, before[1] + 1)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_long_pause_is_logged(monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    gc.callbacks.append(runtime._gc_timer)
    monkeypatch.setattr(runtime, "GC_PAUSE_LOGGED_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="common.runtime"):
        gc.collect(1)
    assert any("garbage collection of generation 1 stopped the process" in r.getMessage()
               for r in caplog.records)
