"""The product's credit (产品信控): one product instance's place in credit control, as an
aggregate. Its state, arrears cycle, arrears ladder (warning level, suspension warning),
chain command sequence and the action it awaits (a chain command or a work order) change only
through its methods:

- `propose(intent, as_of)`: may this decision act on the product, under which id and when;
- `apply(decision, now)`: the decision's move, and what to publish (the decision, the chain
  command or the state change) and what else to write (a history entry, a work order);
- `confirm(...)` / `fail(...)`: the chain's (or the operator's) result of that move;
- `reconcile(...)`: the ladder follows the facts (domain/ladder.py); in two steps,
  `reconciled(...)` (nothing moves) then `follow(...)`, for a caller that copies the product
  only when `moves(...)` says it would change (the balance batch).

"Back to normal starts a new arrears cycle" lives here only (`_enter`): notices of the same
bill month may come again, and the ladder starts afresh. The balance path, the closed loop,
work orders and the invariant checker's replay all move products through this class.

Pure: no I/O. It also remembers what changed since it was loaded (`dirty`), so a repository
writes back only the products that moved.
"""

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from common.clock import business_date
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
)
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import ProductFamily, ProductSnapshot, Tier
from common.envelope import Contract

from . import rules
from .ladder import Ladder, Reconciled, reconcile
from .model import Action, action_for, can, next_state
from .rule_table import RuleTable

S = CreditState
DECISION_NS = uuid.UUID("6f1c2a52-8f0e-4b7e-9a43-3d2b8a1c0e11")
# The states whose product the industry gateway should block (the rest: open). What
# `GET /v1/provisioning/desired` answers and what a repair sends again.
SUSPENDED_AT_CHAIN = frozenset({S.SUSPEND_REQUESTED, S.SUSPENDED, S.PRE_CANCEL})
IN_FLIGHT = (S.SUSPEND_REQUESTED, S.RESTORE_REQUESTED)
# How long after its last command a product may be repaired: the gateway judges "settled"
# by its own `stuck_after` (an hour by default, but a credit-admin may ask for less); a
# command younger than this may still be on its way through Kafka, and a repair would only
# send the same action a second time.
REPAIR_AFTER = timedelta(minutes=5)
# How many repairs in a row (the product's newest commands all reconciliation's, nothing
# decided in between) before the next is refused for a person to look: a chain that never
# holds the product would otherwise get a new command every run, each reported as repaired,
# while the difference stays (QA pass 34).
REPAIR_LIMIT = 3
_CHAIN_DECISIONS = (DecisionType.SUSPEND, DecisionType.RESTORE)


@dataclass(frozen=True)
class Change:
    """One state change, as state_history records it."""

    before: CreditState
    after: CreditState
    cause: str
    decision_id: str | None  # None: a ladder restart
    at: datetime


@dataclass(frozen=True)
class Proposal:
    """A decision the product can take now: its id (deterministic, per arrears cycle), its
    move and its moment (never before the product's last change)."""

    intent: rules.Intent
    decision_id: str
    action: Action
    before: CreditState
    after: CreditState
    as_of: datetime


@dataclass(frozen=True)
class Decision:
    """A proposal with what the notice needs to say (the context) and the rule version."""

    proposal: Proposal
    context: NoticeContext
    rule_version: int


@dataclass(frozen=True)
class WorkOrderRequest:
    """A work order to open (WORK_ORDER products are suspended and restored by people)."""

    action: ProvisioningAction
    decision_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Applied:
    """What a decision's move asks for: events to publish (in order), the history entry and
    a work order to open."""

    events: list[Contract]
    change: Change | None = None
    work_order: WorkOrderRequest | None = None


@dataclass(frozen=True)
class Retry:
    """A failed chain attempt to try again at `at`."""

    at: datetime


@dataclass(frozen=True)
class Escalate:
    """The chain gave up: a work order for a person to finish the move."""

    reason: str


@dataclass
class ProductCredit:
    product_id: str
    account_id: str
    family: ProductFamily
    state: CreditState = S.NORMAL
    cycle: int = 0
    command_seq: int = 0
    ladder: Ladder = field(default_factory=Ladder)
    snapshot: ProductSnapshot | None = None
    customer_id: str | None = None
    changed_at: datetime | None = None  # the state's moment
    suspended_on: date | None = None  # the business date it was last suspended
    # The action awaited: a chain command (and its attempts) or a work order.
    pending_command_id: str | None = None
    pending_decision_id: str | None = None
    pending_work_order_id: str | None = None
    command_action: ProvisioningAction | None = None
    command_at: datetime | None = None
    command_attempt: int = 0
    command_sent_at: datetime | None = None
    retry_at: datetime | None = None
    # Since loaded: whether anything changed (the repository writes back only these), and
    # the moment of this load's newest move (a later event never moves it earlier).
    dirty: bool = False
    moved_at: datetime | None = None

    @property
    def warning_level(self) -> int:
        return self.ladder.warning_level

    def copy(self) -> "ProductCredit":
        """A copy to decide on (cheaper than `dataclasses.replace`: no __init__)."""
        twin = object.__new__(ProductCredit)
        twin.__dict__.update(self.__dict__)
        return twin

    # --- the ladder ---------------------------------------------------------------------------

    def reconcile(self, table: RuleTable, tier: Tier, oldest: date | None, owes: bool,
                  at: datetime) -> Change | None:
        """The ladder follows the facts: a new oldest owing month restarts it, an upgrade
        drops a suspension warning that no longer announces the suspension; a suspension-
        warned product whose warning is gone is warned again (returned as a change)."""
        return self.follow(self.reconciled(table, tier, oldest, owes), at)

    def reconciled(self, table: RuleTable, tier: Tier, oldest: date | None,
                   owes: bool) -> Reconciled:
        """Where the facts put the ladder and the state; nothing moves yet (`follow`)."""
        return reconcile(self.state, self.ladder, table, self.family, tier, oldest, owes)

    def moves(self, now: Reconciled) -> bool:
        """Whether `follow(now, …)` would change the product."""
        return ((now.ladder is not self.ladder and now.ladder != self.ladder)
                or (now.state is not self.state and now.reason is not None))

    def follow(self, now: Reconciled, at: datetime) -> Change | None:
        """Take the reconciled ladder and state (`reconciled`): the change, if the state
        moved."""
        self._set_ladder(now.ladder)
        if now.state is self.state or now.reason is None:
            return None
        change = Change(self.state, now.state, now.reason, None, at)
        self._enter(now.state, at)
        return change

    def _set_ladder(self, ladder: Ladder) -> None:
        if ladder is not self.ladder and ladder != self.ladder:
            self.ladder, self.dirty = ladder, True

    # --- decisions ----------------------------------------------------------------------------

    def decision_id(self, intent: rules.Intent) -> str:
        return rules.decision_id(self.product_id, intent.period, intent.decision, self.cycle)

    def propose(self, intent: rules.Intent, as_of: datetime) -> Proposal | None:
        """None when the move is not legal in the product's state."""
        action = action_for(intent.decision, self.family)
        if not can(self.state, action):
            return None
        decision_id = self.decision_id(intent)
        as_of, intent = not_before_last_change(self.moved_at or self.changed_at, as_of,
                                               intent, self.state)
        return Proposal(intent, decision_id, action, self.state,
                        next_state(self.state, action), as_of)

    def apply(self, decision: Decision, now: datetime) -> Applied:
        """The decision's move, in memory; `now` is when a chain command is sent."""
        p, context = decision.proposal, decision.context
        intent = p.intent
        events: list[Contract] = [CreditDecisionMade(
            decision_id=p.decision_id, account_id=self.account_id, product_id=self.product_id,
            decision=intent.decision, rule_id=intent.rule_id, reason=intent.reason,
            state_before=p.before, state_after=p.after, as_of=p.as_of, context=context,
            warning_level=intent.warning_level, amount_fen=intent.amount_fen,
            rule_version=decision.rule_version)]
        if p.action is Action.DEDUCT:  # money moves, the state does not
            return Applied(events)
        cause = f"{intent.rule_id}: {intent.reason}"
        work_order = None
        command = self._command(intent.decision, p.decision_id, p.as_of, now)
        if command is not None:
            events.append(command)
        elif self.family is ProductFamily.WORK_ORDER and p.action in (
                Action.REQUEST_SUSPEND, Action.REQUEST_RESTORE):
            self.pending_decision_id = p.decision_id
            work_order = WorkOrderRequest(ProvisioningAction(intent.decision.value),
                                          p.decision_id, cause, p.as_of)
        elif p.action in (Action.SUSPEND_NOW, Action.RESTORE_NOW):
            events.append(CreditStateChanged(
                account_id=self.account_id, product_id=self.product_id,
                decision_id=p.decision_id, state_before=p.before, state_after=p.after,
                as_of=p.as_of, context=context))
        self._enter(p.after, p.as_of)
        if intent.warning_level is not None:
            self._set_ladder(self.ladder.warned(intent.warning_level))
        return Applied(events, Change(p.before, p.after, cause, p.decision_id, p.as_of),
                       work_order)

    def move(self, proposal: Proposal) -> None:
        """A proposal's move alone, without events or commands (what the invariant checker's
        replay follows: the chain's part comes with `complete`)."""
        if proposal.action is Action.DEDUCT:
            return
        self._enter(proposal.after, proposal.as_of)
        if proposal.intent.warning_level is not None:
            self._set_ladder(self.ladder.warned(proposal.intent.warning_level))

    def _command(self, decision: DecisionType, decision_id: str, as_of: datetime,
                 now: datetime) -> ProvisioningCommand | None:
        """The chain command of a suspension or restore of a chain product: the newest one
        supersedes any still in flight (its sequence is higher)."""
        if not self.family.uses_chain or decision not in _CHAIN_DECISIONS:
            return None
        snapshot = self.snapshot
        assert snapshot is not None  # a product decided on has its snapshot
        self.command_seq += 1
        command = ProvisioningCommand(
            command_id=str(uuid.uuid5(DECISION_NS, f"{decision_id}|cmd|{self.command_seq}")),
            decision_id=decision_id, product_id=self.product_id, account_id=self.account_id,
            cpno=snapshot.cpno, family=self.family, vendor=snapshot.vendor,
            action=ProvisioningAction(decision.value), sequence=self.command_seq,
            requested_at=as_of, attempt=1, customer_id=self.customer_id)
        self.pending_command_id, self.pending_decision_id = command.command_id, decision_id
        self.pending_work_order_id = None  # an escalation of an earlier command is void
        self.command_action, self.command_at = command.action, as_of
        self.command_attempt, self.command_sent_at, self.retry_at = 1, now, None
        return command

    def _enter(self, after: CreditState, at: datetime) -> None:
        """Every state change goes through here."""
        self.state, self.moved_at, self.dirty = after, at, True
        if after is S.SUSPENDED:
            self.suspended_on = business_date(at)
        if after is S.NORMAL:
            # A new arrears cycle: notices of the same bill month may be sent again, and the
            # ladder starts afresh (a suspension warning of the last cycle never announces a
            # suspension of the next).
            self.cycle += 1
            self._set_ladder(Ladder(self.ladder.month))

    def warn_again(self, at: datetime, reason: str) -> Change | None:
        """A suspension a freeze held back (domain/freezes.py): its warning's notice period ran
        out while the freeze stood, so the ladder gives the warning again, with a new notice
        period, before any suspension (back to warned, the warning dropped: the sweep sends a
        new one). None when the product is not suspension-warned (nothing was announced)."""
        if self.state is not S.SUSPENSION_WARNED:
            return None
        self._set_ladder(self.ladder.without_suspension_warning())
        change = Change(self.state, S.WARNED, reason, None, at)
        self._enter(S.WARNED, at)
        return change

    # --- the closed loop ----------------------------------------------------------------------

    def confirm(self, action: ProvisioningAction, at: datetime, cause: str,
                decision: "DecisionFacts") -> tuple[Change, CreditStateChanged] | None:
        """The suspension / restore really happened (the chain applied it or a work order is
        done): the move completes and nothing is pending any more. None if the product is
        not waiting for that (a newer move overtook it)."""
        before = self.state
        after = self.complete(action, at)
        if after is None:
            return None
        self.pending_command_id = self.pending_decision_id = None
        self.pending_work_order_id = self.retry_at = None
        event = CreditStateChanged(
            account_id=self.account_id, product_id=self.product_id,
            decision_id=decision.decision_id, state_before=before, state_after=after, as_of=at,
            context=decision.context,
            # A restore decided while the suspension was still only requested overtook it:
            # the service never stopped, so the customer gets no "已可正常使用".
            service_was_suspended=(decision.state_before != S.SUSPEND_REQUESTED
                                   if action is ProvisioningAction.RESTORE else None))
        return Change(before, after, cause, decision.decision_id, at), event

    def complete(self, action: ProvisioningAction, at: datetime) -> CreditState | None:
        """The move of a confirmation alone; the state reached, or None if not waiting."""
        move = (Action.CONFIRM_SUSPEND if action is ProvisioningAction.SUSPEND
                else Action.CONFIRM_RESTORE)
        if not can(self.state, move):
            return None
        after = next_state(self.state, move)
        self._enter(after, at)
        return after

    def fail(self, at: datetime, why: str, max_attempts: int,
             backoff_s: float) -> Retry | Escalate:
        """A chain attempt failed: retry with exponential backoff, or, after the last
        attempt, escalate to a work order."""
        attempt = self.command_attempt
        self.dirty = True
        if attempt < max_attempts:
            self.retry_at = at + timedelta(seconds=backoff_s * 2 ** (attempt - 1))
            return Retry(self.retry_at)
        return Escalate(f"chain gave up after {attempt} attempts: {why}")

    def escalated(self, work_order_id: str) -> None:
        self.pending_work_order_id, self.retry_at, self.dirty = work_order_id, None, True

    @property
    def chain_desired(self) -> ProvisioningAction:
        """What the industry gateway should hold for this product now."""
        return (ProvisioningAction.SUSPEND if self.state in SUSPENDED_AT_CHAIN
                else ProvisioningAction.RESTORE)

    def sync_command(self, now: datetime) -> ProvisioningCommand | None:
        """The command that brings the chain to this product's state once more, sent without
        waiting for its result (nothing becomes pending, so a failure opens no work order):
        a command in flight (the chain gave up on it, its work order done: QA pass 32) goes
        again as its next attempt; with nothing pending (reconciliation's repair of a lost
        block or restore) the desired action goes under the next sequence, because the
        gateway acts once per command and answers the same command again "already applied".
        None: not a chain product."""
        if not self.family.uses_chain or self.snapshot is None:
            return None
        if self.pending_command_id is not None:
            return self.resend(now)
        return self._reissue(now)

    def repair_refusal(self, desired: ProvisioningAction, sequence: int,
                       gateway_sequence: int | None, now: datetime) -> str | None:
        """Why reconciliation's repair of what it saw (`desired` at `sequence`) must not be
        sent now, or None. Asked under the product's lock: a repair never fights a newer
        command, the closed loop or a person, and the same request twice sends one command
        (the first moves the sequence on; a second run seeing the repair's own sequence
        before the gateway has it is refused by `REPAIR_AFTER`)."""
        if not self.family.uses_chain:
            return f"not chain-managed ({self.family.value}): suspended and restored by work orders"
        if self.snapshot is None:
            return "no product snapshot to address the chain with"
        if self.pending_work_order_id is not None:
            return f"work order {self.pending_work_order_id} is open for it"
        if self.pending_command_id is not None:
            return (f"command {self.pending_command_id} (attempt {self.command_attempt}) is "
                    f"with the closed loop")
        if self.command_seq != sequence:
            return (f"credit-control moved on: sequence {self.command_seq}, reconciliation "
                    f"saw {sequence}")
        if self.chain_desired is not desired:
            return f"credit-control now wants {self.chain_desired.value}"
        if gateway_sequence is not None and gateway_sequence > self.command_seq:
            return (f"the gateway holds sequence {gateway_sequence}, newer than credit-control's "
                    f"{self.command_seq}")
        if self.command_sent_at is not None and now - self.command_sent_at < REPAIR_AFTER:
            return (f"its last command left at {self.command_sent_at.isoformat()}, less than "
                    f"{REPAIR_AFTER.total_seconds():.0f} s ago: it may still be on its way")
        return None

    def repairs_exhausted(self, repaired: list[int], since: int = 0) -> str | None:
        """Why no more repairs are sent, given the sequences reconciliation's repairs sent
        (newest first, at most `REPAIR_LIMIT`): the last `REPAIR_LIMIT` commands were all
        repairs, and the chain still differs. Only repairs after `since` count: the product's
        sequence when a person last made the gateway hold it by hand (a repair work order
        done), so a drift found later is repaired again. None: a repair may go."""
        newest = list(range(self.command_seq, self.command_seq - REPAIR_LIMIT, -1))
        if repaired[:REPAIR_LIMIT] != newest or newest[-1] <= since:
            return None
        return (f"repaired {REPAIR_LIMIT} times in a row (sequences "
                f"{', '.join(map(str, reversed(newest)))}) and the gateway still differs: the "
                "chain does not hold it; left for a person (listed under not_repaired)")

    def repair_work_order(self, at: datetime) -> WorkOrderRequest:
        """The work order that puts a product `repairs_exhausted` refused in front of a
        person: make the gateway hold the desired state by hand. Its decision id is the
        newest repair's (the product's state is settled: no decision of its own)."""
        action = self.chain_desired
        held = "blocked" if action is ProvisioningAction.SUSPEND else "open"
        newest = range(self.command_seq - REPAIR_LIMIT + 1, self.command_seq + 1)
        return WorkOrderRequest(
            action, repair_decision_id(self.product_id, self.command_seq),
            f"reconciliation: the gateway does not hold the product {held} after "
            f"{REPAIR_LIMIT} repairs (sequences {', '.join(map(str, newest))}; credit-control "
            f"is {self.state.value}, wants {action.value}); check it at the gateway and make it "
            f"hold the product {held} by hand", at)

    def repaired_by_hand(self, work_order_id: str) -> bool:
        """A repair work order done: a person made the gateway hold the settled state. Nothing
        moves and no command goes (one would start the repairs again); the product no longer
        waits for the work order. False: it was not waiting for this one (a newer decision
        took over)."""
        if self.pending_work_order_id != work_order_id or self.pending_command_id is not None:
            return False
        self.pending_work_order_id, self.dirty = None, True
        return True

    def _reissue(self, now: datetime) -> ProvisioningCommand:
        """The desired action again, under the next sequence and a repair's own ids."""
        assert self.snapshot is not None
        self.command_seq += 1
        repair_id = repair_decision_id(self.product_id, self.command_seq)
        action = self.chain_desired
        self.command_action, self.command_attempt = action, 1
        self.command_sent_at, self.retry_at, self.dirty = now, None, True
        return ProvisioningCommand(
            command_id=str(uuid.uuid5(DECISION_NS, f"{repair_id}|cmd|{self.command_seq}")),
            decision_id=repair_id, product_id=self.product_id, account_id=self.account_id,
            cpno=self.snapshot.cpno, family=self.family, vendor=self.snapshot.vendor,
            action=action, sequence=self.command_seq, requested_at=self.command_at or now,
            attempt=1, customer_id=self.customer_id)

    def resend(self, now: datetime) -> ProvisioningCommand:
        """The next attempt of the command in flight (its backoff ran out)."""
        assert self.pending_command_id and self.pending_decision_id and self.snapshot
        assert self.command_action is not None and self.command_at is not None
        self.command_attempt += 1
        self.command_sent_at, self.retry_at, self.dirty = now, None, True
        return ProvisioningCommand(
            command_id=self.pending_command_id, decision_id=self.pending_decision_id,
            product_id=self.product_id, account_id=self.account_id, cpno=self.snapshot.cpno,
            family=self.family, vendor=self.snapshot.vendor, action=self.command_action,
            sequence=self.command_seq, requested_at=self.command_at,
            attempt=self.command_attempt, customer_id=self.customer_id)


def repair_decision_id(product_id: str, sequence: int) -> str:
    """A repair's own decision id (it has no decision): its commands' and, after the limit,
    its work order's."""
    return str(uuid.uuid5(DECISION_NS, f"{product_id}|repair|{sequence}"))


@dataclass(frozen=True)
class DecisionFacts:
    """What a confirmation needs of the decision it completes."""

    decision_id: str
    context: NoticeContext
    state_before: CreditState


def not_before_last_change(last: datetime | None, as_of: datetime, intent: rules.Intent,
                           before: CreditState) -> tuple[datetime, rules.Intent]:
    """A balance event's business moment can lie before the product's last state change: a
    payment made at 11:59 arrives after the 12:00 sweep suspended. Its decision and move are
    dated at that change, never before it (the history stays in order, the restore notice
    never predates the suspension notice), and a restore says that it overtook the change."""
    if last is None or as_of >= last:
        return as_of, intent
    if intent.decision is DecisionType.RESTORE:
        intent = replace(intent, reason=(
            f"{intent.reason}; made {as_of.isoformat()}, before the {before.value} of "
            f"{last.isoformat()} it overtakes"))
    return last, intent
