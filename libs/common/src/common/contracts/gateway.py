"""Provisioning commands to the BOSS → EMOS → industry-gateway chain, and its results."""

from enum import StrEnum
from typing import ClassVar

from common.envelope import Contract

from .bounds import Attempt, Id, Instant, Name, Ref, SequenceNo, Text
from .snapshots import ProductFamily

COMMANDS_TOPIC = "provisioning.commands.v1"
RESULTS_TOPIC = "provisioning.results.v1"


class ProvisioningAction(StrEnum):
    SUSPEND = "suspend"
    RESTORE = "restore"


class ChainStage(StrEnum):
    BOSS = "boss"
    EMOS = "emos"
    GATEWAY = "gateway"


class StageOutcome(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SUPERSEDED = "superseded"  # a newer command for the product already won


class ProvisioningCommand(Contract, frozen=True, kw_only=True):
    """Suspend or restore one product. `sequence` grows per product; the newest wins."""

    event_type: ClassVar[str] = "provisioning.command"
    topic: ClassVar[str] = COMMANDS_TOPIC

    command_id: Ref
    decision_id: Ref
    product_id: Id
    account_id: Id
    cpno: Id
    family: ProductFamily
    vendor: Name | None = None
    action: ProvisioningAction
    sequence: SequenceNo
    requested_at: Instant
    attempt: Attempt = 1  # credit-control's retry of a command; (command_id, attempt) is unique
    customer_id: Id | None = None  # the enterprise the industry gateway blocks or opens


class ProvisioningResult(Contract, frozen=True, kw_only=True):
    """One stage's outcome; `final` is true when the command is done (applied at the gateway,
    superseded, or given up), so credit-control can close its loop."""

    event_type: ClassVar[str] = "provisioning.result"
    topic: ClassVar[str] = RESULTS_TOPIC

    command_id: Ref
    product_id: Id
    action: ProvisioningAction
    sequence: SequenceNo
    stage: ChainStage
    outcome: StageOutcome
    final: bool
    detail: Text = ""
    at: Instant
    attempt: Attempt = 1
    emos_order_id: Ref | None = None
