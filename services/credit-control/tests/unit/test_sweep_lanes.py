"""sweeps._Ranges: a pass in concurrent lanes records a cursor that never runs ahead of what
was committed (a resume from it repeats chunks, which decides nothing, and skips none), and
is done only once every lane is; sweeps.range_cuts: the ranges a pass splits into, halving
in size toward its end."""

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit_control.credit.service_layer.sweeps import _Ranges, range_cuts


def test_one_lane_records_its_own_cursor_as_before() -> None:
    lanes = _Ranges([""])
    assert lanes.upto(0) is None
    assert lanes.cursor(0, "P00000499", False) == ("P00000499", False)
    assert lanes.cursor(0, "P00000731", True) == ("P00000731", True)


def test_a_later_lane_ahead_leaves_the_cursor_at_the_first_unfinished_one() -> None:
    lanes = _Ranges(["", "P00500000"])
    assert (lanes.upto(0), lanes.upto(1)) == ("P00500000", None)
    assert lanes.cursor(1, "P00600000", False) == ("", False)
    lanes.at[1] = "P00600000"
    lanes.at[0], lanes.finished[0] = "P00499990", True
    assert lanes.cursor(1, "P00700000", False) == ("P00700000", False)
    lanes.at[1] = "P00700000"
    assert lanes.cursor(1, "P00999999", True) == ("P00999999", True)


def test_the_first_lane_done_before_the_second_hands_on_to_its_committed_cursor() -> None:
    lanes = _Ranges(["P1", "P5"])
    lanes.at[1] = "P7"
    assert lanes.cursor(0, "P4", True) == ("P7", False)


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 40), st.booleans()), max_size=30))
def test_the_cursor_never_passes_a_product_an_unfinished_range_has_not_committed(
    moves: list[tuple[int, int, bool]]
) -> None:
    # Products 000..299 (zero-padded: text order is number order) in three ranges:
    # ("", "099"], ("099", "199"], ("199", …). A chunk of range i commits its next `step`
    # products; a range that finishes has committed all of its own.
    ranges = _Ranges(["", "099", "199"])
    ids = [f"{n:03d}" for n in range(300)]
    last, ends = [-1, 99, 199], [99, 199, 299]
    committed: set[str] = set()
    for i, step, finish in moves:
        if ranges.finished[i]:
            continue
        last[i] = ends[i] if finish else min(last[i] + step, ends[i])
        committed |= {f"{n:03d}" for n in range(ends[i] - 99 if i else 0, last[i] + 1)}
        at = f"{last[i]:03d}"
        cursor, done = ranges.cursor(i, at, finish)
        ranges.at[i], ranges.finished[i] = at, finish
        # A resume starts after the cursor: everything up to it must be committed.
        assert [p for p in ids if p <= cursor and p not in committed] == []
        assert not done or len(committed) == len(ids)


def test_one_lane_is_one_range() -> None:
    assert range_cuts(1) == []


def test_two_lanes_take_halving_ranges_and_end_on_small_ones() -> None:
    cuts = range_cuts(2)
    sizes = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
    assert sizes == pytest.approx([1 / 4, 1 / 4, 1 / 8, 1 / 8, 1 / 16, 1 / 16,
                                   1 / 32, 1 / 32, 1 / 32, 1 / 32])


@given(st.integers(2, 8), st.integers(1, 6))
def test_the_cuts_rise_inside_the_pass_and_never_grow_a_range(lanes: int, levels: int) -> None:
    cuts = range_cuts(lanes, levels)
    assert all(0 < c < 1 for c in cuts) and all(a < b for a, b in pairwise(cuts))
    sizes = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
    assert all(b <= a + 1e-12 for a, b in pairwise(sizes))
    # every lane has a range of the largest size to start on
    assert sizes[lanes - 1] == pytest.approx(sizes[0])
