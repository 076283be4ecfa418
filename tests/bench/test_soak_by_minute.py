"""bench/soak.py's event → SMS by minute: each minute of the run from its first event, its
count, p99 and how many went over the threshold (where a run's tail sits: one bad minute, a
checkpoint's or a cold start's, or spread over all)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak import by_minute


def test_minutes_count_from_the_first_event() -> None:
    start = 1_800_000_000.0
    points = [(start, 40.0), (start + 59.9, 300.0), (start + 60, 20.0),
              (start + 185, 260.0), (start + 186, 10.0)]
    assert by_minute(points) == [
        {"minute": 0, "n": 2, "p99": 300.0, "over": 1},
        {"minute": 1, "n": 1, "p99": 20.0, "over": 0},
        {"minute": 3, "n": 2, "p99": 260.0, "over": 1},
    ]


def test_no_sms_no_minutes() -> None:
    assert by_minute([]) == []
