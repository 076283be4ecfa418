"""Service apps built inside a test process."""

from collections.abc import Callable
from typing import TypeVar

from common.clock import business_time_bounds, business_time_within

T = TypeVar("T")


def built_in_process(build: Callable[[], T]) -> T:
    """`build()` (a service's `bootstrap`), the test process's business-time bounds kept:
    building an app configures the process's bounds from the service's settings
    (common.app), which would take the suite's simulation mode away from every test after
    it (bill months in year 2200 refused as "ahead of the clock")."""
    with business_time_within(business_time_bounds()):
        return build()
