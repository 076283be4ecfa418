"""Reconciliation's repair as the product's credit judges it (`repair_refusal`) and sends it
(`sync_command`). Pure."""

from datetime import UTC, datetime, timedelta

from common.contracts.credit_control import CreditState
from common.contracts.gateway import ProvisioningAction
from common.contracts.snapshots import ProductFamily, ProductSnapshot
from credit_control.credit.domain.product_credit import (
    REPAIR_AFTER,
    REPAIR_LIMIT,
    ProductCredit,
)

S, SUS, RES = CreditState, ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE
NOW = datetime(2200, 11, 3, 9, tzinfo=UTC)
DECIDED = datetime(2200, 10, 31, 20, tzinfo=UTC)
SNAPSHOT = ProductSnapshot(product_id="P1", cpno="CP1", name="行业短信", family=ProductFamily.MAS,
                           vendor="huawei")


def settled(state: CreditState = S.SUSPENDED, **kw: object) -> ProductCredit:
    """Suspended through the chain (sequence 1 confirmed), nothing pending."""
    return ProductCredit("P1", "A1", ProductFamily.MAS, state, command_seq=1,  # type: ignore[arg-type]
                         snapshot=SNAPSHOT, customer_id="C1", command_action=SUS,
                         command_at=DECIDED, command_attempt=1, command_sent_at=DECIDED, **kw)


def test_a_settled_product_is_repaired_under_the_next_sequence_once() -> None:
    p = settled()
    assert p.repair_refusal(SUS, 1, 1, NOW) is None
    cmd = p.sync_command(NOW)
    assert cmd is not None
    assert (cmd.action, cmd.sequence, cmd.attempt, cmd.requested_at) == (SUS, 2, 1, DECIDED)
    assert (p.command_seq, p.command_sent_at, p.pending_command_id, p.dirty) == (2, NOW, None,
                                                                                 True)
    # The same request again: credit-control moved on.
    assert "moved on" in (p.repair_refusal(SUS, 1, 1, NOW) or "")
    # Deterministic ids: the same repair of the same sequence is the same command.
    assert settled().sync_command(NOW) == cmd


def test_a_repair_waits_until_the_last_command_had_time_to_arrive() -> None:
    """A second run that sees the repair's own sequence before the gateway has it (a
    credit-admin's short stuck_after) sends nothing more."""
    p = settled()
    assert p.sync_command(NOW) is not None
    soon = NOW + REPAIR_AFTER - timedelta(seconds=1)
    assert "may still be on its way" in (p.repair_refusal(SUS, 2, 1, soon) or "")
    assert p.repair_refusal(SUS, 2, 1, NOW + REPAIR_AFTER) is None


def test_a_restored_product_is_repaired_with_a_restore() -> None:
    p = settled(S.NORMAL)
    assert p.repair_refusal(SUS, 1, 1, NOW) == "credit-control now wants restore"
    assert p.repair_refusal(RES, 1, 1, NOW) is None
    cmd = p.sync_command(NOW)
    assert cmd is not None and (cmd.action, cmd.sequence) == (RES, 2)


def test_refused_while_something_else_holds_the_product() -> None:
    assert "closed loop" in (settled(pending_command_id="c1", pending_decision_id="d1")
                             .repair_refusal(SUS, 1, 1, NOW) or "")
    assert "work order W1" in (settled(pending_work_order_id="W1").repair_refusal(SUS, 1, 1, NOW)
                               or "")
    assert "newer than" in (settled().repair_refusal(SUS, 1, 5, NOW) or "")
    adc = ProductCredit("P2", "A1", ProductFamily.ADC, S.SUSPENDED, snapshot=SNAPSHOT)
    assert "not chain-managed" in (adc.repair_refusal(SUS, 0, None, NOW) or "")
    assert adc.sync_command(NOW) is None


def test_a_pending_command_is_resent_as_its_next_attempt() -> None:
    """The work-order-done path (QA pass 32) is the same method: the pending command again."""
    p = settled(S.RESTORE_REQUESTED, pending_command_id="c1", pending_decision_id="d1")
    cmd = p.sync_command(NOW)
    assert cmd is not None and (cmd.command_id, cmd.sequence, cmd.attempt) == ("c1", 1, 2)


def test_repairs_in_a_row_stop_at_the_limit_for_a_person() -> None:
    """The newest REPAIR_LIMIT commands all repairs: no more; a decision in between (its
    own sequence) starts the count again."""
    p = settled()  # sequence 1, a decision's
    repaired: list[int] = []
    for _ in range(REPAIR_LIMIT):
        assert p.repairs_exhausted(repaired) is None
        cmd = p.sync_command(NOW)
        assert cmd is not None
        repaired.insert(0, cmd.sequence)
    why = p.repairs_exhausted(repaired)
    assert why is not None and "repaired 3 times in a row (sequences 2, 3, 4)" in why
    # A decision's command (sequence 5) in between: repairs may go again.
    p.command_seq += 1
    assert p.repairs_exhausted(repaired) is None
