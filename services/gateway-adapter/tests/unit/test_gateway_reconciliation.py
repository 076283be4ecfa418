"""Reconciliation (漏停 / 错停 / stuck orders) and the EMOS cross-month figure. Pure."""

from datetime import UTC, datetime, timedelta

from common.contracts.gateway import ProvisioningAction
from common.contracts.reconciliation import DesiredChainState, DifferenceKind
from common.contracts.snapshots import ProductFamily
from gateway_adapter.domain.reconciliation import HeldState, OpenOrder, compare, cross_month_figure

NOW = datetime(2026, 12, 1, tzinfo=UTC)
S, R = ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE


def want(pid: str, action: ProvisioningAction, seq: int = 1) -> DesiredChainState:
    return DesiredChainState(product_id=pid, account_id="A", customer_id="G", cpno="CP",
                             family=ProductFamily.MAS, vendor="huawei", desired=action,
                             sequence=seq)


def held(pid: str, blocked: bool, seq: int = 1, flight: int | None = None,
         flight_action: ProvisioningAction | None = None) -> HeldState:
    return HeldState(pid, blocked, seq, flight, flight_action)


def test_agreement_is_zero_differences() -> None:
    report = compare([want("a", S), want("b", R), want("c", R, seq=0)],
                     {"a": held("a", True), "b": held("b", False)}, [], NOW, timedelta(hours=1))
    assert (report.products_compared, report.total, report.differences) == (3, 0, ())


def test_missed_and_wrong_suspensions() -> None:
    report = compare(
        [want("miss", S, 2), want("never", S), want("wrong", R, 3)],
        {"miss": held("miss", False), "wrong": held("wrong", True, 2),
         "orphan": held("orphan", True), "open": held("open", False)},
        [], NOW, timedelta(hours=1))
    kinds = {d.product_id: d.kind for d in report.differences}
    assert kinds == {"miss": DifferenceKind.MISSED_SUSPENSION,
                     "never": DifferenceKind.MISSED_SUSPENSION,
                     "wrong": DifferenceKind.WRONG_SUSPENSION,
                     "orphan": DifferenceKind.WRONG_SUSPENSION}
    assert (report.missed_suspensions, report.wrong_suspensions) == (2, 2)
    assert report.products_compared == 4


def test_a_command_on_its_way_is_in_flight_not_a_difference() -> None:
    report = compare([want("a", S, 2), want("b", S, 3)],
                     {"a": held("a", False, 1, flight=2, flight_action=S),
                      "b": held("b", False, 1, flight=2, flight_action=S)},
                     [], NOW, timedelta(hours=1))
    assert report.in_flight == 1 and report.missed_suspensions == 1
    assert report.differences[0].product_id == "b"  # its newest command never reached us


def test_stuck_orders_are_the_ones_open_too_long() -> None:
    orders = [OpenOrder("o1", "a", NOW - timedelta(hours=2)),
              OpenOrder("o2", "b", NOW - timedelta(minutes=5))]
    report = compare([], {}, orders, NOW, timedelta(hours=1))
    assert [(d.kind, d.emos_order_id) for d in report.differences] == [
        (DifferenceKind.STUCK_EMOS_ORDER, "o1")]


def test_cross_month_figure_matches_the_seed() -> None:
    jan = cross_month_figure("2011-01", orders=685, closed_later=2, still_open_after=0,
                             still_open=0)
    assert round(jan.ratio * 100, 2) == 0.29 and jan.meets_standard
    bad = cross_month_figure("2011-04", orders=100, closed_later=0, still_open_after=1,
                             still_open=1)
    assert bad.cross_month == 1 and bad.ratio == 0.01 and not bad.meets_standard
    # No orders, nothing to judge: no ratio and not judged (credit-control's KPI report says
    # null for it too), never "meets the standard".
    empty = cross_month_figure("2011-05", 0, 0, 0, 0)
    assert (empty.orders, empty.ratio, empty.meets_standard) == (0, None, None)
    assert empty.model_dump(mode="json")["meets_standard"] is None


def test_a_network_wide_fault_is_counted_in_full_and_listed_in_part() -> None:
    """Every product differs (a gateway that lost its blocks): each kind's count is of all of
    them, each kind lists its first few, and the report says how many it left out."""
    wanted = [want(f"m{i}", S) for i in range(5)] + [want(f"w{i}", R) for i in range(4)]
    gateway = {**{f"w{i}": held(f"w{i}", True) for i in range(4)},
               "orphan": held("orphan", True)}
    orders = [OpenOrder(f"o{i}", "x", NOW - timedelta(hours=2)) for i in range(2)]
    report = compare(wanted, gateway, orders, NOW, timedelta(hours=1), listed_per_kind=2)
    assert (report.missed_suspensions, report.wrong_suspensions,
            report.stuck_emos_orders) == (5, 5, 2)
    assert [d.product_id for d in report.differences] == ["m0", "m1", "w0", "w1", "x", "x"]
    assert report.differences_omitted == 3 + 3 + 0
    full = compare(wanted, gateway, orders, NOW, timedelta(hours=1))
    assert len(full.differences) == 12 and full.differences_omitted == 0
