"""gateway_adapter.domain.chain.plan: BOSS → EMOS → gateway, newest sequence wins."""

import pytest

from common.contracts.gateway import ChainStage, ProvisioningAction
from gateway_adapter.domain.chain import BossStatus, ChainPlan, plan

SUSPEND = ProvisioningAction.SUSPEND
RESTORE = ProvisioningAction.RESTORE


@pytest.mark.parametrize(
    ("action", "status", "blocked", "gateway_detail"),
    [
        (SUSPEND, BossStatus.ARREARS_SUSPENDED, True, "enterprise blocked"),
        (RESTORE, BossStatus.ACTIVE, False, "enterprise open"),
    ],
)
@pytest.mark.parametrize(("sequence", "last"), [(1, 0), (2, 1), (10, 3), (10**12, 10**12 - 1)])
def test_newer_sequence_runs_the_whole_chain(
    action: ProvisioningAction, status: BossStatus, blocked: bool, gateway_detail: str,
    sequence: int, last: int,
) -> None:
    p = plan(action, sequence, last)
    assert p.superseded is False
    assert p.boss_status is status
    assert p.gateway_blocked is blocked
    assert [s.stage for s in p.steps] == [ChainStage.BOSS, ChainStage.EMOS, ChainStage.GATEWAY]
    assert p.steps[0].detail == f"product status → {status.value}"
    assert p.steps[1].detail == f"provisioning order for {action.value} closed"
    assert p.steps[2].detail == gateway_detail


@pytest.mark.parametrize("action", list(ProvisioningAction), ids=str)
@pytest.mark.parametrize(
    ("sequence", "last"),
    [
        pytest.param(1, 1, id="same-command-twice"),
        pytest.param(5, 5, id="equal"),
        pytest.param(4, 5, id="older-arrives-late"),
        pytest.param(1, 9, id="much-older"),
        pytest.param(0, 0, id="zero"),
    ],
)
def test_equal_or_older_sequence_is_superseded(
    action: ProvisioningAction, sequence: int, last: int
) -> None:
    p = plan(action, sequence, last)
    assert p.superseded is True
    assert p.steps == ()


def test_restore_after_a_newer_suspend_is_superseded() -> None:
    """Seq 1 = suspend, seq 2 = restore race: suspend 1 arriving after restore 2 acts not."""
    assert plan(RESTORE, 2, 0).superseded is False
    assert plan(SUSPEND, 1, 2) == ChainPlan(True, BossStatus.ARREARS_SUSPENDED, True, ())
