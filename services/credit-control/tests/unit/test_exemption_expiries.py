"""admin.domain.expiries: which run-out exemptions are announced to the notifier, and as of
when. One announcement per customer, as of the last `until` among those run out together,
and none while another exemption still holds the customer."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from credit_control.admin.domain.expiries import Announcement, RunOut, announcements

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def run_out(exemption_id: str, customer_id: str, hours: int = 0) -> RunOut:
    return RunOut(exemption_id, customer_id, "emergency", T0 + timedelta(hours=hours))


def test_a_run_out_exemption_is_announced_as_of_its_until() -> None:
    assert announcements([run_out("EX1", "G1", 3)], set()) == [
        Announcement("G1", "EX1", T0 + timedelta(hours=3))]


def test_a_customer_another_exemption_still_holds_is_not_told() -> None:
    """It is still exempt: nothing changed for its products (the one that holds is
    announced when it ends)."""
    assert announcements([run_out("EX1", "G1")], {"G1"}) == []


def test_several_run_out_together_are_one_announcement_as_of_the_last() -> None:
    found = announcements([run_out("EX2", "G1", 5), run_out("EX1", "G1", 1),
                           run_out("EX3", "G2", 2)], set())
    assert found == [Announcement("G1", "EX2", T0 + timedelta(hours=5)),
                     Announcement("G2", "EX3", T0 + timedelta(hours=2))]


def test_the_same_until_picks_one_exemption_whatever_the_order() -> None:
    a, b = run_out("EXa", "G1", 1), run_out("EXb", "G1", 1)
    assert announcements([a, b], set()) == announcements([b, a], set()) == [
        Announcement("G1", "EXb", T0 + timedelta(hours=1))]


def test_nothing_run_out_announces_nothing() -> None:
    assert announcements([], {"G1"}) == []


@given(st.lists(st.tuples(st.sampled_from(["G1", "G2", "G3"]), st.integers(0, 100)),
                max_size=12),
       st.sets(st.sampled_from(["G1", "G2", "G3"])))
def test_at_most_once_per_customer_never_for_one_still_exempt(
    items: list[tuple[str, int]], still: set[str],
) -> None:
    found = announcements([run_out(f"EX{i}", c, h) for i, (c, h) in enumerate(items)], still)
    customers = [a.customer_id for a in found]
    assert customers == sorted(set(customers))
    assert not set(customers) & still
    assert set(customers) == {c for c, _ in items} - still
    for a in found:
        assert a.as_of == max(T0 + timedelta(hours=h) for c, h in items if c == a.customer_id)
