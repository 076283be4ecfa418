"""What credit-control wants the chain to hold, per product: read by the gateway's reconciliation.

Served by credit-control at `GET /v1/provisioning/desired?after=<product_id>&limit=N`
as `DesiredChainPage`, paged by product id.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .bounds import Id, Instant, Name, SequenceNo
from .gateway import ProvisioningAction
from .snapshots import ProductFamily


class DesiredChainState(BaseModel):
    model_config = ConfigDict(frozen=True)
    product_id: Id
    account_id: Id
    customer_id: Id
    cpno: Id
    family: ProductFamily
    vendor: Name | None = None
    desired: ProvisioningAction  # suspend = blocked at the gateway, restore = open
    sequence: SequenceNo  # the newest command's sequence (0: never commanded, open)
    since: Instant | None = None  # when credit-control decided it
    # When the newest command's latest attempt (or repair) left credit-control, on its clock:
    # a difference is repaired only once this is older than the gateway's `stuck_after` (a
    # command may still be on its way through Kafka). None: never sent.
    sent_at: Instant | None = None


class DesiredChainPage(BaseModel):
    items: tuple[DesiredChainState, ...]
    next_after: Id | None = None  # pass as `after` for the next page; None at the end


class DifferenceKind(StrEnum):
    MISSED_SUSPENSION = "missed_suspension"  # 漏停: should be blocked, the gateway lets it send
    WRONG_SUSPENSION = "wrong_suspension"  # 错停: should be open, the gateway blocks it
    STUCK_EMOS_ORDER = "stuck_emos_order"  # an EMOS order open longer than allowed


class ChainDifference(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: DifferenceKind
    product_id: str
    detail: str
    desired: ProvisioningAction | None = None  # None: credit-control does not list the product
    desired_sequence: int | None = None
    gateway_blocked: bool | None = None
    gateway_sequence: int | None = None
    emos_order_id: str | None = None
    since: Instant | None = None  # stuck orders: when the order was created


class ChainRepairRequest(BaseModel):
    """A settled difference the gateway asks credit-control to repair: what reconciliation saw.
    credit-control repairs it only if it still wants `desired` at `sequence` with nothing
    pending (checked under the product's lock), so a repair never fights a newer command and
    the same request twice sends one command."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    product_id: Id
    desired: ProvisioningAction
    sequence: SequenceNo  # the desired state's sequence the gateway compared with
    gateway_blocked: bool
    gateway_sequence: SequenceNo | None = None


class ChainRepairBatch(BaseModel):
    """`POST /v1/provisioning/repairs` on credit-control."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    items: tuple[ChainRepairRequest, ...] = Field(min_length=1, max_length=1000)


class RepairOutcome(StrEnum):
    REPAIRED = "repaired"  # credit-control sent the desired command through the chain again
    REFUSED = "refused"  # credit-control said no (moved on, pending, not chain-managed, unknown)
    SKIPPED = "skipped"  # not asked: not settled (in flight, too young) or not chain-managed
    FAILED = "failed"  # credit-control could not be asked


class ChainRepair(BaseModel):
    """One difference's repair: what was done about it, and why not when nothing was."""

    model_config = ConfigDict(frozen=True)
    product_id: str
    outcome: RepairOutcome
    detail: str
    kind: DifferenceKind | None = None  # the difference repaired (set by the gateway)
    action: ProvisioningAction | None = None
    command_id: str | None = None  # repaired: the command sent
    sequence: int | None = None  # repaired: its sequence
    # refused: the work order open for the product, for a person (the one this refusal
    # opened when the repairs in a row reached credit-control's limit, or one already open)
    work_order_id: str | None = None


class ChainRepairResults(BaseModel):
    """credit-control's answer to a `ChainRepairBatch`, one per item, in its order."""

    items: tuple[ChainRepair, ...]


class ReconciliationReport(BaseModel):
    """What `GET /v1/reconciliation` on gateway-adapter answers: differences between what
    credit-control wants and what the gateway holds, as of a moment."""

    model_config = ConfigDict(frozen=True)
    as_of: Instant
    products_compared: int
    in_flight: int  # differing, but a command for the desired state is still in the chain
    missed_suspensions: int
    wrong_suspensions: int
    stuck_emos_orders: int
    differences: tuple[ChainDifference, ...] = ()
    # Counted above but not listed: each kind lists at most the gateway's limit of them (a
    # network-wide fault would otherwise make a report too large to answer or store).
    differences_omitted: int = 0
    # Stored runs repair settled missed / wrong suspensions (docs/gateway.md, Reconciliation):
    # whether this run did, how many it repaired and could not, and each one (listed up to
    # the same limit per outcome as the differences).
    repair: bool = False
    repaired: int = 0
    not_repaired: int = 0
    repairs: tuple[ChainRepair, ...] = ()
    repairs_omitted: int = 0

    @property
    def total(self) -> int:
        return self.missed_suspensions + self.wrong_suspensions + self.stuck_emos_orders


class EmosCrossMonth(BaseModel):
    """What `GET /v1/kpis/emos-cross-month` on gateway-adapter answers (credit-control's KPI
    report reads it): seed 000's EMOS figure, suspension orders closed only in a later month
    / all orders of the month (Jan 2011: 2 of 685 = 0.29%; standard ≤ 0.5%). A month without
    orders has nothing to judge: `ratio` and `meets_standard` are null, as credit-control's
    KPI report says for it (`value` and `meets_target` null)."""

    model_config = ConfigDict(frozen=True)
    month: str  # YYYY-MM, the month the orders were created (Asia/Shanghai)
    orders: int
    cross_month: int  # closed in a later month, or still open after the month ended
    still_open: int
    ratio: float | None  # cross_month / orders; null when there were no orders
    standard: float  # the largest ratio that meets it (the gateway's CROSS_MONTH_STANDARD)
    meets_standard: bool | None  # null when there were no orders: not judged
