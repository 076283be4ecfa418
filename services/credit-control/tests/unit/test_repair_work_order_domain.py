"""Reconciliation's repair left for a person (docs/gateway.md, Repair): the repair work order
a product `repairs_exhausted` refused gets (`repair_work_order`), its done
(`repaired_by_hand`: nothing moves, nothing is sent) and the limit starting again after it
(`since`). Pure."""

from datetime import UTC, datetime

from common.contracts.credit_control import CreditState
from common.contracts.gateway import ProvisioningAction
from common.contracts.snapshots import ProductFamily, ProductSnapshot
from credit_control.credit.domain.product_credit import (
    REPAIR_LIMIT,
    ProductCredit,
    repair_decision_id,
)

S, SUS, RES = CreditState, ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE
NOW = datetime(2200, 11, 3, 9, tzinfo=UTC)
SNAPSHOT = ProductSnapshot(product_id="P1", cpno="CP1", name="行业短信", family=ProductFamily.MAS,
                           vendor="huawei")


def exhausted(state: CreditState = S.SUSPENDED) -> tuple[ProductCredit, list[int]]:
    """Settled at sequence 1 (a decision's), then `REPAIR_LIMIT` repairs (2, 3, 4)."""
    p = ProductCredit("P1", "A1", ProductFamily.MAS, state, command_seq=1, snapshot=SNAPSHOT,
                      customer_id="C1", command_action=SUS, command_at=NOW,
                      command_attempt=1, command_sent_at=NOW)
    repaired: list[int] = []
    for _ in range(REPAIR_LIMIT):
        cmd = p.sync_command(NOW)
        assert cmd is not None
        repaired.insert(0, cmd.sequence)
    return p, repaired


def test_a_lost_block_left_for_a_person_says_what_reconciliation_found() -> None:
    p, repaired = exhausted()
    assert p.repairs_exhausted(repaired) is not None
    order = p.repair_work_order(NOW)
    assert (order.action, order.at) == (SUS, NOW)
    assert order.decision_id == repair_decision_id("P1", 4)
    assert order.reason.startswith(
        "reconciliation: the gateway does not hold the product blocked after 3 repairs "
        "(sequences 2, 3, 4;"), order.reason
    assert "check it at the gateway" in order.reason


def test_a_lost_restore_left_for_a_person_asks_for_it_open() -> None:
    p, _ = exhausted(S.NORMAL)
    order = p.repair_work_order(NOW)
    assert order.action is RES
    assert "does not hold the product open after 3 repairs" in order.reason, order.reason


def test_while_it_is_open_the_product_is_refused_for_it_and_done_sends_nothing() -> None:
    p, repaired = exhausted()
    p.escalated("WO-r")
    assert p.repair_refusal(SUS, 4, 1, NOW.replace(hour=12)) == "work order WO-r is open for it"
    before = (p.state, p.command_seq, p.command_sent_at, p.pending_command_id)
    assert p.repaired_by_hand("WO-other") is False
    assert p.repaired_by_hand("WO-r") is True
    assert p.pending_work_order_id is None
    assert (p.state, p.command_seq, p.command_sent_at, p.pending_command_id) == before
    # Done at sequence 4: the three repairs before it no longer count, a new drift is repaired.
    assert p.repairs_exhausted(repaired, since=4) is None
    assert p.repair_refusal(SUS, 4, 1, NOW.replace(hour=12)) is None


def test_after_a_done_the_limit_counts_only_the_repairs_after_it() -> None:
    p, repaired = exhausted()
    since = p.command_seq  # a repair work order done at sequence 4
    for _ in range(REPAIR_LIMIT - 1):
        cmd = p.sync_command(NOW)
        assert cmd is not None
        repaired.insert(0, cmd.sequence)
        assert p.repairs_exhausted(repaired, since) is None
    cmd = p.sync_command(NOW)
    assert cmd is not None
    repaired.insert(0, cmd.sequence)
    why = p.repairs_exhausted(repaired, since)
    assert why is not None and "(sequences 5, 6, 7)" in why, why
    # The next work order is another one (its own decision id: the newest repair's).
    assert p.repair_work_order(NOW).decision_id == repair_decision_id("P1", 7)
