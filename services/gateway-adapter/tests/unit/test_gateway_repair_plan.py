"""Which differences a stored run asks credit-control to repair, and the report of it. Pure."""

from datetime import UTC, datetime, timedelta

from common.contracts.gateway import ProvisioningAction
from common.contracts.reconciliation import (
    ChainRepair,
    DesiredChainState,
    DifferenceKind,
    ReconciliationReport,
    RepairOutcome,
)
from common.contracts.snapshots import ProductFamily
from gateway_adapter.domain.reconciliation import HeldState, plan_repairs, with_repairs

NOW = datetime(2026, 12, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
S, R = ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE


def want(pid: str, action: ProvisioningAction, seq: int = 1,
         sent: timedelta | None = 2 * HOUR) -> DesiredChainState:
    return DesiredChainState(product_id=pid, account_id="A", customer_id="G", cpno="CP",
                             family=ProductFamily.MAS, desired=action, sequence=seq,
                             sent_at=None if sent is None else NOW - sent)


def test_only_settled_differences_are_asked() -> None:
    plan = plan_repairs(
        [want("miss", S, 2), want("wrong", R, 3, sent=None), want("young", S, sent=HOUR / 2),
         want("busy", S, 2), want("fine", S), want("coming", S, 2)],
        {"miss": HeldState("miss", False, 1, None, None),
         "wrong": HeldState("wrong", True, 2, None, None),
         "young": HeldState("young", False, 0, None, None),
         "busy": HeldState("busy", False, 1, 1, R),  # an older attempt still in the chain
         "fine": HeldState("fine", True, 1, None, None),
         "coming": HeldState("coming", False, 1, 2, S),  # in flight: not a difference
         "orphan": HeldState("orphan", True, 4, None, None)},
        NOW, HOUR)
    assert [(r.product_id, r.desired, r.sequence, r.gateway_blocked) for r in plan.requests] == [
        ("miss", S, 2, False), ("wrong", R, 3, True)]
    assert plan.kinds == {"miss": DifferenceKind.MISSED_SUSPENSION,
                          "wrong": DifferenceKind.WRONG_SUSPENSION}
    skipped = {s.product_id: s.detail for s in plan.skipped}
    assert set(skipped) == {"young", "busy", "orphan"}
    assert "still in the chain" in skipped["busy"]
    assert "may still be on its way" in skipped["young"]
    assert "not chain-managed" in skipped["orphan"]


def test_the_report_counts_and_lists_the_repairs() -> None:
    base = ReconciliationReport(as_of=NOW, products_compared=3, in_flight=0,
                                missed_suspensions=3, wrong_suspensions=0, stuck_emos_orders=0)
    done = [ChainRepair(product_id=f"p{i}", outcome=RepairOutcome.REPAIRED, detail="")
            for i in range(3)]
    refused = ChainRepair(product_id="q", outcome=RepairOutcome.REFUSED, detail="moved on")
    report = with_repairs(base, [*done, refused], listed_per_kind=2)
    assert (report.repair, report.repaired, report.not_repaired) == (True, 3, 1)
    assert [r.product_id for r in report.repairs] == ["p0", "p1", "q"]
    assert report.repairs_omitted == 1
    assert ReconciliationReport.model_validate_json(report.model_dump_json()) == report
