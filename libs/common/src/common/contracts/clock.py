"""credit-control publishes each move of the simulation clock (docs/simulation-clock.md).

One compacted topic of one partition, every record keyed `clock`: its latest record is the
clock's state, so a service starting reads only that one (assign + seek, no consumer group)
and then follows the later moves. Only services started with `<PREFIX>SIMULATION_CLOCK=true`
read it; credit-control refuses to move the clock without that setting."""

from typing import ClassVar

from common.envelope import Contract

from .bounds import Instant, Ref, SequenceNo, Text

CLOCK_TOPIC = "credit.clock.v1"
CLOCK_KEY = "clock"


class SimulatedClockMoved(Contract, frozen=True, kw_only=True):
    """The simulation clock moved forward: business time is now the wall time plus
    `offset_s` seconds (keyed `clock`; the latest record is the clock's state)."""

    event_type: ClassVar[str] = "credit.simulated_clock_moved"
    topic: ClassVar[str] = CLOCK_TOPIC

    move_id: Ref
    seq: SequenceNo  # the move's number, 1, 2, ...: a follower ignores an older one
    offset_s: float  # business time minus wall time after the move, in seconds (never less)
    previous_offset_s: float
    simulated_at: Instant  # business time just after the move
    wall_at: Instant  # the wall time of the move
    moved_by: Text
    reason: Text = ""
