"""Reconciliation: what credit-control wants against what the gateway holds. Pure.

A product differs when it should be blocked and is open (漏停, missed suspension) or should be
open and is blocked (错停, wrong suspension). A difference with a command for the desired state
still in the chain is counted as in flight, not reported: it is on its way. EMOS orders open
longer than allowed are reported as stuck.

A stored run also repairs (`plan_repairs`, `with_repairs`): a missed or wrong suspension that
is settled (nothing of the product in the chain, its command sent longer ago than
`stuck_after`) is asked of credit-control, which sends the desired command again; the rest
are listed as skipped, with why.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from common.contracts.gateway import ProvisioningAction
from common.contracts.reconciliation import (
    ChainDifference,
    ChainRepair,
    ChainRepairRequest,
    DesiredChainState,
    DifferenceKind,
    EmosCrossMonth,
    ReconciliationReport,
    RepairOutcome,
)

SUSPEND = ProvisioningAction.SUSPEND
CROSS_MONTH_STANDARD = 0.005  # seed 000: ≤0.5% of EMOS orders close in a later month
# A report lists at most this many differences of each kind; the counts are of all of them.
# A network-wide fault (a gateway that lost its blocks) differs on every product: listed in
# full, the report outgrew what PostgreSQL stores in one jsonb value (256 MB) and the run
# failed, with no count either.
LISTED_PER_KIND = 10_000


@dataclass(frozen=True)
class HeldState:
    """What the gateway holds for one product."""

    product_id: str
    blocked: bool
    gateway_sequence: int
    in_flight_sequence: int | None  # the newest sequence with an attempt still in the chain
    in_flight_action: ProvisioningAction | None


@dataclass(frozen=True)
class OpenOrder:
    order_id: str
    product_id: str
    created_at: datetime


def compare(
    desired: Iterable[DesiredChainState], held: dict[str, HeldState],
    open_orders: Iterable[OpenOrder], as_of: datetime, stuck_after: timedelta,
    listed_per_kind: int = LISTED_PER_KIND,
) -> ReconciliationReport:
    found = _Differences(listed_per_kind)
    in_flight = compared = 0
    listed: set[str] = set()
    for want in desired:
        compared += 1
        listed.add(want.product_id)
        h = held.get(want.product_id)
        verdict = _one(want, h)
        if isinstance(verdict, ChainDifference):
            found.add(verdict)
        elif verdict == IN_FLIGHT:
            in_flight += 1
    for h in held.values():
        if h.product_id not in listed and h.blocked:
            compared += 1
            found.add(ChainDifference(
                kind=DifferenceKind.WRONG_SUSPENSION, product_id=h.product_id,
                detail="blocked at the gateway, unknown to credit-control",
                gateway_blocked=True, gateway_sequence=h.gateway_sequence))
    for o in open_orders:
        if o.created_at <= as_of - stuck_after:
            found.add(ChainDifference(
                kind=DifferenceKind.STUCK_EMOS_ORDER, product_id=o.product_id,
                emos_order_id=o.order_id, since=o.created_at,
                detail=f"EMOS order open since {o.created_at.isoformat()}"))
    counts = found.counts
    return ReconciliationReport(
        as_of=as_of, products_compared=compared, in_flight=in_flight,
        missed_suspensions=counts[DifferenceKind.MISSED_SUSPENSION],
        wrong_suspensions=counts[DifferenceKind.WRONG_SUSPENSION],
        stuck_emos_orders=counts[DifferenceKind.STUCK_EMOS_ORDER],
        differences=tuple(found.listed),
        differences_omitted=sum(counts.values()) - len(found.listed))


class _Differences:
    """Every difference counted by kind; the first `per_kind` of each kind listed."""

    def __init__(self, per_kind: int) -> None:
        self.per_kind = per_kind
        self.counts = dict.fromkeys(DifferenceKind, 0)
        self.listed: list[ChainDifference] = []

    def add(self, difference: ChainDifference) -> None:
        self.counts[difference.kind] += 1
        if self.counts[difference.kind] <= self.per_kind:
            self.listed.append(difference)


IN_FLIGHT = "in_flight"


def _one(want: DesiredChainState, h: HeldState | None) -> ChainDifference | str | None:
    """None: as wanted; IN_FLIGHT: on its way; otherwise the difference."""
    blocked = h.blocked if h is not None else False
    should_block = want.desired is SUSPEND
    if blocked == should_block:
        return None
    if (h is not None and h.in_flight_action is want.desired
            and (h.in_flight_sequence or 0) >= want.sequence):
        return IN_FLIGHT
    kind = DifferenceKind.MISSED_SUSPENSION if should_block else DifferenceKind.WRONG_SUSPENSION
    return ChainDifference(
        kind=kind, product_id=want.product_id, desired=want.desired,
        desired_sequence=want.sequence, gateway_blocked=blocked,
        gateway_sequence=h.gateway_sequence if h is not None else None,
        detail=("should be blocked, the gateway lets it send" if should_block
                else "should be open, the gateway blocks it")
               + ("" if h is not None else " (never seen by the chain)"))


@dataclass(frozen=True)
class RepairPlan:
    """What a run asks credit-control to repair, and the differences it does not ask about."""

    requests: list[ChainRepairRequest]
    kinds: dict[str, DifferenceKind]  # by product: the difference each request repairs
    skipped: list[ChainRepair]


def plan_repairs(desired: Iterable[DesiredChainState], held: dict[str, HeldState],
                 as_of: datetime, stuck_after: timedelta) -> RepairPlan:
    """The settled missed / wrong suspensions: desired ≠ held, nothing of the product still
    in the chain (any attempt, so a repair never races one), and credit-control's newest
    command sent longer ago than `stuck_after` (it may still be on its way through Kafka).
    A product blocked here that credit-control does not list is not chain-managed there:
    there is no desired command to send, so it is skipped."""
    plan = RepairPlan([], {}, [])
    listed: set[str] = set()
    for want in desired:
        listed.add(want.product_id)
        h = held.get(want.product_id)
        verdict = _one(want, h)
        if not isinstance(verdict, ChainDifference):
            continue
        why = _unsettled(want, h, as_of, stuck_after)
        if why is not None:
            plan.skipped.append(_skip(verdict.kind, want.product_id, why, want.desired))
            continue
        plan.kinds[want.product_id] = verdict.kind
        plan.requests.append(ChainRepairRequest(
            product_id=want.product_id, desired=want.desired, sequence=want.sequence,
            gateway_blocked=h.blocked if h is not None else False,
            gateway_sequence=h.gateway_sequence if h is not None else None))
    for h in held.values():
        if h.product_id not in listed and h.blocked:
            plan.skipped.append(_skip(
                DifferenceKind.WRONG_SUSPENSION, h.product_id,
                "not chain-managed at credit-control (not listed): no desired command to send",
                None))
    return plan


def _unsettled(want: DesiredChainState, h: HeldState | None, as_of: datetime,
               stuck_after: timedelta) -> str | None:
    if h is not None and h.in_flight_sequence is not None:
        return (f"an attempt ({h.in_flight_action.value if h.in_flight_action else '?'}, "
                f"sequence {h.in_flight_sequence}) is still in the chain")
    if want.sent_at is not None and want.sent_at > as_of - stuck_after:
        return (f"its command left credit-control at {want.sent_at.isoformat()}, less than "
                f"{stuck_after.total_seconds():g} s ago: it may still be on its way")
    return None


def _skip(kind: DifferenceKind, product_id: str, why: str,
          action: ProvisioningAction | None) -> ChainRepair:
    return ChainRepair(product_id=product_id, outcome=RepairOutcome.SKIPPED, kind=kind,
                       action=action, detail=why)


def with_repairs(report: ReconciliationReport, repairs: Iterable[ChainRepair],
                 listed_per_kind: int = LISTED_PER_KIND) -> ReconciliationReport:
    """The report with what its run repaired and could not: counted in full, the first
    `listed_per_kind` of each outcome listed (as the differences are)."""
    counts = dict.fromkeys(RepairOutcome, 0)
    listed: list[ChainRepair] = []
    for r in repairs:
        counts[r.outcome] += 1
        if counts[r.outcome] <= listed_per_kind:
            listed.append(r)
    repaired = counts[RepairOutcome.REPAIRED]
    return report.model_copy(update={
        "repair": True, "repaired": repaired, "not_repaired": sum(counts.values()) - repaired,
        "repairs": tuple(listed), "repairs_omitted": sum(counts.values()) - len(listed)})


def cross_month_figure(month: str, orders: int, closed_later: int, still_open_after: int,
                       still_open: int) -> EmosCrossMonth:
    """Orders closed in a later month, plus those still open after their month ended (they
    can only close later), over all orders created in the month. No orders: no value."""
    late = closed_later + still_open_after
    ratio = late / orders if orders else None
    return EmosCrossMonth(month=month, orders=orders, cross_month=late, still_open=still_open,
                          ratio=ratio, standard=CROSS_MONTH_STANDARD,
                          meets_standard=(None if ratio is None
                                          else ratio <= CROSS_MONTH_STANDARD))
