"""The BOSS → EMOS → industry-gateway chain for one command attempt, as a state machine. Pure.

A command attempt is accepted (`judge`), then advanced step by step (`advance`) when each step
is due: BOSS flips the product status, EMOS receives a provisioning work order and sends it to
the gateway, the gateway blocks or opens the enterprise (through the vendor's adapter) and the
order closes. The attempt is done only when the gateway confirms. The newest command for a
product wins by its sequence, never by arrival order; the same attempt twice acts once.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome

from .faults import Fate, Faults, Step, draw, plan
from .vendors import GatewayInstruction, VendorAdapter, VendorRefused


class BossStatus(StrEnum):
    ACTIVE = "active"
    ARREARS_SUSPENDED = "arrears_suspended"  # 欠费停用


class OrderStatus(StrEnum):
    RECEIVED = "received"
    SENT_TO_GATEWAY = "sent_to_gateway"
    CLOSED = "closed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a newer command or attempt took over

    @property
    def open(self) -> bool:
        return self in (OrderStatus.RECEIVED, OrderStatus.SENT_TO_GATEWAY)


class Verdict(StrEnum):
    RUN = "run"
    SUPERSEDED = "superseded"
    ALREADY_APPLIED = "already_applied"


STAGE_OF = {Step.BOSS: ChainStage.BOSS, Step.EMOS: ChainStage.EMOS,
            Step.GATEWAY: ChainStage.GATEWAY, Step.GATEWAY_CONFIRM: ChainStage.GATEWAY}


@dataclass
class ProductChain:
    """One product's state at BOSS and the gateway, and the newest sequence accepted."""

    product_id: str
    last_sequence: int
    boss_status: BossStatus
    boss_sequence: int
    boss_updated_at: datetime
    gateway_blocked: bool
    gateway_sequence: int
    gateway_updated_at: datetime


@dataclass
class EmosOrder:
    order_id: str
    command_id: str
    attempt: int
    product_id: str
    action: ProvisioningAction
    status: OrderStatus
    created_at: datetime
    due_at: datetime | None = None
    sent_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass
class Attempt:
    command_id: str
    attempt: int
    product_id: str
    customer_id: str | None
    cpno: str
    family: str
    vendor: str | None
    action: ProvisioningAction
    sequence: int
    received_at: datetime
    step: Step = Step.BOSS
    fate: Fate = Fate.OK
    due_at: datetime | None = None
    outcome: StageOutcome | None = None
    detail: str = ""
    emos_order_id: str | None = None
    vendor_command: str | None = None
    boss_at: datetime | None = None
    emos_at: datetime | None = None
    gateway_ack_at: datetime | None = None
    gateway_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def suspend(self) -> bool:
        return self.action is ProvisioningAction.SUSPEND


class StageReport(NamedTuple):
    """One stage's outcome for the results topic."""

    stage: ChainStage
    outcome: StageOutcome
    final: bool
    detail: str
    at: datetime


@dataclass(frozen=True)
class CommandRecord:
    """What the chain remembers of a command across its attempts."""

    command_id: str
    sequence: int
    latest_attempt: int
    applied_attempt: int | None
    emos_order_id: str | None


def judge(
    command_id: str, sequence: int, attempt: int, last_sequence: int,
    record: CommandRecord | None,
) -> Verdict:
    """Whether a newly arrived attempt runs. Only sequences decide, never arrival order."""
    if sequence < last_sequence:
        return Verdict.SUPERSEDED
    if record is None:
        # Equal sequence from another command: the product's newest is someone else.
        return Verdict.SUPERSEDED if sequence == last_sequence and sequence > 0 else Verdict.RUN
    if record.applied_attempt is not None:
        return Verdict.ALREADY_APPLIED
    if attempt < record.latest_attempt:
        return Verdict.SUPERSEDED  # an older attempt overtaken by its own retry
    return Verdict.RUN


def schedule(a: Attempt, step: Step, faults: Faults, start: datetime) -> bool:
    """Set the attempt's next step and when it is due; True when it lands in a later month."""
    d = draw(faults, a.command_id, a.attempt, step, start)
    a.step, a.fate, a.due_at = step, d.fate, d.due_at
    return d.cross_month


def supersede(a: Attempt, order: EmosOrder | None, at: datetime, why: str) -> StageReport:
    a.outcome, a.detail, a.finished_at = StageOutcome.SUPERSEDED, why, at
    if order is not None and order.status.open:
        order.status, order.closed_at = OrderStatus.CANCELLED, at
    return StageReport(STAGE_OF[a.step], StageOutcome.SUPERSEDED, True, why, at)


@dataclass
class Advance:
    """What advancing one attempt produced: a new EMOS order (if one was opened) and reports."""

    new_order: EmosOrder | None
    reports: list[StageReport]


def advance(
    a: Attempt, p: ProductChain, order: EmosOrder | None, faults: Faults,
    vendor: VendorAdapter | None, now: datetime, new_order_id: str,
) -> Advance:
    """Run every step of the attempt that is due by `now`; each step happens at its due time."""
    out = Advance(None, [])
    while a.outcome is None and a.due_at is not None and a.due_at <= now:
        order = order or out.new_order
        report = _step(a, p, order, faults, vendor, out, new_order_id)
        if report is not None:
            out.reports.append(report)
    return out


def _step(
    a: Attempt, p: ProductChain, order: EmosOrder | None, faults: Faults,
    vendor: VendorAdapter | None, out: Advance, new_order_id: str,
) -> StageReport | None:
    at = a.due_at
    assert at is not None
    if a.sequence < p.last_sequence:
        return supersede(a, order, at, f"sequence {a.sequence} < newest {p.last_sequence}")
    down_until = plan(faults)[a.step].down_until
    stage = STAGE_OF[a.step]
    if down_until is not None and at < down_until:
        return _give_up(a, order, StageOutcome.FAILED, at,
                        f"{stage.value} down until {faults.stage(a.step).down_until}")
    if a.fate is Fate.TIMEOUT:
        return _give_up(a, order, StageOutcome.TIMED_OUT, at, f"{stage.value} did not answer")
    if a.fate is Fate.FAIL:
        return _give_up(a, order, StageOutcome.FAILED, at, f"{stage.value} rejected the command")
    if a.step is Step.BOSS:
        return _boss(a, p, faults, out, new_order_id, at)
    assert order is not None, "an attempt past BOSS has its EMOS order"
    if a.step is Step.EMOS:
        return _emos(a, order, faults, at)
    if a.step is Step.GATEWAY:
        return _gateway(a, p, order, faults, vendor, at)
    return _confirm(a, p, order, at)


def _boss(
    a: Attempt, p: ProductChain, faults: Faults, out: Advance, new_order_id: str, at: datetime,
) -> StageReport:
    p.boss_status = BossStatus.ARREARS_SUSPENDED if a.suspend else BossStatus.ACTIVE
    p.boss_sequence, p.boss_updated_at, a.boss_at = a.sequence, at, at
    order = EmosOrder(new_order_id, a.command_id, a.attempt, a.product_id, a.action,
                      OrderStatus.RECEIVED, created_at=at)
    out.new_order, a.emos_order_id = order, order.order_id
    schedule(a, Step.EMOS, faults, at)
    order.due_at = a.due_at
    return StageReport(ChainStage.BOSS, StageOutcome.APPLIED, False,
                       f"product status → {p.boss_status.value}; EMOS order {order.order_id}", at)


def _emos(a: Attempt, order: EmosOrder, faults: Faults, at: datetime) -> StageReport:
    order.status, order.sent_at, a.emos_at = OrderStatus.SENT_TO_GATEWAY, at, at
    schedule(a, Step.GATEWAY, faults, at)
    return StageReport(ChainStage.EMOS, StageOutcome.APPLIED, False,
                       f"order {order.order_id} for {a.action.value} sent to the gateway", at)


def _gateway(
    a: Attempt, p: ProductChain, order: EmosOrder, faults: Faults,
    vendor: VendorAdapter | None, at: datetime,
) -> StageReport | None:
    if vendor is None:
        return _give_up(a, order, StageOutcome.FAILED, at, f"no gateway adapter for {a.vendor!r}")
    try:
        a.vendor_command = vendor.render(GatewayInstruction(
            a.action, a.product_id, a.cpno, a.customer_id, a.sequence, order.order_id, at))
    except VendorRefused as exc:
        return _give_up(a, order, StageOutcome.FAILED, at, f"{vendor.name} refused: {exc}")
    if vendor.acknowledges_async:
        a.gateway_ack_at = at
        schedule(a, Step.GATEWAY_CONFIRM, faults, at)
        return None  # accepted, not done: the confirmation is the gateway's answer
    return _confirm(a, p, order, at)


def _confirm(a: Attempt, p: ProductChain, order: EmosOrder, at: datetime) -> StageReport:
    p.gateway_blocked, p.gateway_sequence, p.gateway_updated_at = a.suspend, a.sequence, at
    order.status, order.closed_at = OrderStatus.CLOSED, at
    a.outcome, a.gateway_at, a.finished_at = StageOutcome.APPLIED, at, at
    a.detail = "enterprise blocked" if a.suspend else "enterprise open"
    return StageReport(ChainStage.GATEWAY, StageOutcome.APPLIED, True, a.detail, at)


def _give_up(
    a: Attempt, order: EmosOrder | None, outcome: StageOutcome, at: datetime, why: str
) -> StageReport:
    a.outcome, a.detail, a.finished_at = outcome, why, at
    if order is not None and order.status.open:
        order.status, order.closed_at = OrderStatus.FAILED, at
    return StageReport(STAGE_OF[a.step], outcome, True, why, at)
