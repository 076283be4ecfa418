"""The simulation clock (docs/simulation-clock.md): forward only, moves wake the loops that
idle until a business time, the bounds of business time measure against it, and it is
announced on every response and page."""

import asyncio
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from common.clock import (
    BUSINESS_TZ,
    BusinessTimeBounds,
    ClockMovesBackward,
    FixedClock,
    SimulatedClock,
    clock_moves,
)
from common.contracts.clock import SimulatedClockMoved
from common.envelope import to_bytes, wrap
from common.poll_loop import PollLoop
from common.settings import ServiceSettings
from common.simulation import (
    SIMULATED_CLOCK_HEADER,
    SIMULATED_TIME_HEADER,
    ClockFollower,
    SimulatedTimeHeaders,
    service_clock,
    wake_on_move,
)

WALL = datetime(2026, 11, 3, 9, 0, tzinfo=BUSINESS_TZ)


def simulated(offset: timedelta = timedelta(0)) -> tuple[FixedClock, SimulatedClock]:
    wall = FixedClock(WALL)
    return wall, SimulatedClock(wall, offset)


def test_it_reads_the_wall_clock_plus_its_offset_and_wall_time_still_flows() -> None:
    wall, clock = simulated(timedelta(days=2))
    assert clock.now() == WALL + timedelta(days=2)
    wall.advance(timedelta(minutes=5))
    assert clock.now() == WALL + timedelta(days=2, minutes=5)


def test_it_moves_only_forward() -> None:
    _, clock = simulated()
    assert clock.advance(timedelta(hours=11))
    assert clock.now() == WALL + timedelta(hours=11)
    with pytest.raises(ClockMovesBackward):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ClockMovesBackward):
        clock.advance_to(WALL + timedelta(hours=10))
    with pytest.raises(ClockMovesBackward):
        clock.move_to_offset(timedelta(hours=1))
    with pytest.raises(ClockMovesBackward):
        SimulatedClock(offset=timedelta(seconds=-1))
    assert clock.now() == WALL + timedelta(hours=11)  # refusals changed nothing
    assert not clock.move_to_offset(timedelta(hours=11))  # the same offset is no move
    assert clock.advance_to(WALL + timedelta(days=1)) and clock.moves == 2


def test_listeners_hear_each_move_until_they_unsubscribe() -> None:
    _, clock = simulated()
    heard: list[timedelta] = []
    unsubscribe = clock.on_move(heard.append)
    clock.advance(timedelta(days=1))
    clock.move_to_offset(timedelta(days=1))  # no move, nothing heard
    unsubscribe()
    clock.advance(timedelta(days=1))
    assert heard == [timedelta(days=1)]
    assert clock_moves(clock) == 2 and clock_moves(FixedClock(WALL)) == 0


async def test_a_loop_idling_until_a_business_time_wakes_when_the_clock_jumps() -> None:
    _, clock = simulated()
    steps: list[datetime] = []

    async def step() -> bool:
        steps.append(clock.now())
        return False

    wake = wake_on_move(clock)
    assert wake is not None
    stop = asyncio.Event()
    loop = asyncio.create_task(PollLoop("scheduler", step, idle_s=3600, wake=wake).run(stop))
    await asyncio.sleep(0.05)
    assert len(steps) == 1  # the first step, then an hour's idle
    clock.advance(timedelta(hours=11))  # past tonight's 20:00
    await asyncio.sleep(0.05)
    stop.set()
    await loop
    assert steps == [WALL, WALL + timedelta(hours=11)]


def test_only_a_simulated_clock_sets_a_wake_up() -> None:
    own = asyncio.Event()
    assert wake_on_move(FixedClock(WALL)) is None
    assert wake_on_move(FixedClock(WALL), own) is own
    _, clock = simulated()
    assert wake_on_move(clock, own) is own
    clock.advance(timedelta(minutes=1))
    assert own.is_set()


def test_the_bounds_measure_ahead_of_the_clock_against_simulated_now() -> None:
    _, clock = simulated()
    bounds = BusinessTimeBounds(clock=clock)
    tomorrow = WALL + timedelta(days=1)
    assert bounds.refusal(tomorrow) is not None  # still ahead of the clock
    clock.advance(timedelta(days=1))
    assert bounds.refusal(tomorrow) is None
    assert bounds.refusal(tomorrow + timedelta(minutes=6)) is not None  # tolerance as before
    assert bounds.refusal(datetime(1999, 12, 31, tzinfo=BUSINESS_TZ)) is not None  # the floor


def test_the_setting_decides_the_clock_and_the_bounds_follow_it() -> None:
    assert not isinstance(service_clock(ServiceSettings()), SimulatedClock)
    on = ServiceSettings(simulation_clock=True)
    clock = service_clock(on, FixedClock(WALL))
    assert isinstance(clock, SimulatedClock) and clock.now() == WALL
    assert on.business_time_bounds(clock).clock is clock


def move(seq: int, offset: timedelta) -> bytes:
    payload = SimulatedClockMoved(
        move_id=f"m{seq}", seq=seq, offset_s=offset.total_seconds(), previous_offset_s=0,
        simulated_at=WALL + offset, wall_at=WALL, moved_by="zhang.wei", reason="demo")
    return to_bytes(wrap(payload, key="clock", source="credit-control", occurred_at=WALL))


def test_a_follower_applies_moves_and_never_goes_back() -> None:
    _, clock = simulated()
    follower = ClockFollower("127.0.0.1:1", clock, "notifier")
    assert follower.apply(move(1, timedelta(days=1)))
    assert follower.apply(move(3, timedelta(days=3)))
    assert not follower.apply(move(2, timedelta(days=2)))  # smaller: ignored, never back
    assert not follower.apply(b"not a clock move")
    assert clock.offset == timedelta(days=3) and follower.seq == 3


def test_every_response_says_simulated_time_and_every_page_shows_the_banner() -> None:
    _, clock = simulated(timedelta(days=22, hours=11))
    app = FastAPI()

    @app.get("/api")
    def api() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/page", response_class=HTMLResponse)
    def page() -> str:
        return "<html><head></head><body class='x'><h1>信控</h1></body></html>"

    app.add_middleware(SimulatedTimeHeaders, clock=clock)
    client = TestClient(app)
    answer = client.get("/api")
    assert answer.json() == {"ok": "yes"}
    assert answer.headers[SIMULATED_TIME_HEADER] == "2026-11-25T20:00:00+08:00"
    assert answer.headers[SIMULATED_CLOCK_HEADER] == f"on; offset={22 * 86400 + 11 * 3600}s"
    shown = client.get("/page")
    assert shown.headers[SIMULATED_TIME_HEADER] == "2026-11-25T20:00:00+08:00"
    assert "<body class='x'><div class=\"simulated-time\"" in shown.text
    assert "模拟时钟 SIMULATED TIME 2026-11-25T20:00:00+08:00" in shown.text
    assert int(shown.headers["content-length"]) == len(shown.content)
