"""The BOSS → EMOS → industry-gateway chain for one command. Pure.

The newest command for a product wins by its sequence, never by arrival order: a restore
that arrives after a newer suspend is superseded, and the same command twice acts once.
"""

from dataclasses import dataclass
from enum import StrEnum

from common.contracts.gateway import ChainStage, ProvisioningAction


class BossStatus(StrEnum):
    ACTIVE = "active"
    ARREARS_SUSPENDED = "arrears_suspended"  # 欠费停用


@dataclass(frozen=True)
class StageStep:
    stage: ChainStage
    detail: str


@dataclass(frozen=True)
class ChainPlan:
    superseded: bool
    boss_status: BossStatus
    gateway_blocked: bool
    steps: tuple[StageStep, ...]


def plan(action: ProvisioningAction, sequence: int, last_sequence: int) -> ChainPlan:
    suspend = action is ProvisioningAction.SUSPEND
    status = BossStatus.ARREARS_SUSPENDED if suspend else BossStatus.ACTIVE
    if sequence <= last_sequence:
        return ChainPlan(True, status, suspend, ())
    return ChainPlan(False, status, suspend, (
        StageStep(ChainStage.BOSS, f"product status → {status.value}"),
        StageStep(ChainStage.EMOS, f"provisioning order for {action.value} closed"),
        StageStep(ChainStage.GATEWAY, "enterprise blocked" if suspend else "enterprise open"),
    ))
