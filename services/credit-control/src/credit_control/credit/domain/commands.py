"""Commands credit-control accepts over HTTP."""

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from common.clock import BusinessTime, IsoMoment
from common.ids import EntityId

from .freezes import Scope as FreezeScope
from .rule_table import RuleRow


class Role(StrEnum):
    """Seed 000's four roles of the manual suspension process."""

    ACCOUNT_MANAGER = "account_manager"  # 客户经理/代理商
    PRODUCT_MANAGER = "product_manager"  # 产品经理
    OPERATOR = "operator"  # 业务办理人员
    GROUP_BILLING_MANAGER = "group_billing_manager"  # 集团账务管理人员


class WorkOrderStatus(StrEnum):
    """Where a manual work order stands (created and assigned are open)."""

    CREATED = "created"
    ASSIGNED = "assigned"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # superseded by the opposite action, or its reason gone


class WorkOrderKind(StrEnum):
    """What a work order's done means (migration 0038)."""

    DECISION = "decision"  # a decision's move made by hand: the credit state moves
    REPAIR = "repair"  # reconciliation gave up repairing: a person makes the gateway hold
    # the settled state; nothing moves, nothing is sent, repairs may start again


class RunSweep(BaseModel):
    """Evaluate the calendar rules for every owing product as of a moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sweep_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    as_of: BusinessTime


# Free text staff type (reasons, notes, names): anything but NUL, which PostgreSQL cannot
# store (one reached the database and came back as SQLSTATE 22021, naming no field).
NO_NUL = r"^[^\x00]*$"
Actor = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
# Who did it: over HTTP the caller's token subject always replaces it (the audit trail must not
# take a caller's word for who they are); a body may still send it, and it is ignored.
ByToken = Annotated[str, Field(max_length=64, pattern=NO_NUL,
                               description="ignored: the bearer token's subject is recorded")]


class ConfirmSweep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    confirmed_by: ByToken = ""
    note: Annotated[str, Field(max_length=1000, pattern=NO_NUL)] = ""


class PutRules(BaseModel):
    """A whole new rule table; `expected_version` guards against overwriting someone's change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    changed_by: ByToken = ""
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
    expected_version: int
    rows: tuple[RuleRow, ...]


class PutProfile(BaseModel):
    # Strict: a star level sent as "3" is a client's bug, told rather than guessed.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    changed_by: ByToken = ""
    star_level: Annotated[int, Field(ge=0, le=5)] | None = None
    credit_limit_fen: Annotated[int, Field(ge=0)] | None = None
    # When it takes effect (default: now): its products are reconsidered as of then.
    as_of: Annotated[BusinessTime | None, Field(strict=False)] = None


class ExemptionKind(StrEnum):
    RED_LIST = "red_list"  # 红名单
    EMERGENCY = "emergency"  # 紧急不停机


class AddExemption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    exemption_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    customer_id: EntityId
    kind: ExemptionKind
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
    approver: Actor
    created_by: ByToken = ""
    until: IsoMoment | None = None  # required for emergency: it is time-boxed


class AddFreeze(BaseModel):
    """A scoped emergency freeze (domain/freezes.py): no automatic suspension for the scope
    (and no suspension warning, with `covers_warnings`) until `until`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    freeze_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    scope: FreezeScope
    value: Annotated[str | None, Field(min_length=1, max_length=64, pattern=NO_NUL)] = None
    covers_warnings: bool = False
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
    approver: Actor
    created_by: ByToken = ""
    starts_at: IsoMoment | None = None  # None: now
    until: IsoMoment


class EndFreeze(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
    ended_by: ByToken = ""
    at: IsoMoment | None = None  # business time it ends; None: now


class RemoveExemption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    removed_by: ByToken = ""


class PutGuard(BaseModel):
    """The mass-suspension guard's settings. A field left out (None) stays as it is: a
    caller that only moves the share keeps the minimum of active products, and the other
    way round (a left-out minimum read as 0 let even a small branch's sweep be held). Strict:
    `"max_share": true` read as 1.0 would switch the guard off without saying so."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    changed_by: ByToken = ""
    enabled: bool | None = None
    max_share: Annotated[float | None, Field(gt=0, le=1)] = None
    # A count of products: far below what the column (bigint) holds.
    min_active: Annotated[int | None, Field(ge=0, le=10**9)] = None
    # Sweeps decide only what a credit-admin approved in their preview (issue 19).
    needs_approved_preview: bool | None = None

    def applied_to(self, current: dict[str, Any]) -> dict[str, Any]:
        """The settings once this is applied to `current`."""
        given = self.model_dump(exclude={"changed_by"}, exclude_none=True)
        return {k: given.get(k, current[k]) for k in GUARD_FIELDS}


GUARD_FIELDS = ("enabled", "max_share", "min_active", "needs_approved_preview")


class ApprovePreview(BaseModel):
    """A credit-admin approves the preview of a sweep as of a moment, as they saw it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    approved_by: ByToken = ""
    # Tonight's sweep may be approved this afternoon: a moment ahead of the clock is fine (an
    # approval decides nothing), within the plausible bounds.
    as_of: IsoMoment
    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$",
                                      description="the preview's fingerprint, as shown")]
    note: Annotated[str, Field(max_length=500, pattern=NO_NUL)] = ""


class AssignWorkOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    by: ByToken = ""
    assignee: Actor
    role: Role = Role.OPERATOR
    note: Annotated[str, Field(max_length=1000, pattern=NO_NUL)] = ""


class FinishWorkOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    by: ByToken = ""
    note: Annotated[str, Field(min_length=1, max_length=1000, pattern=NO_NUL)]


class RunLoop(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    as_of: BusinessTime
