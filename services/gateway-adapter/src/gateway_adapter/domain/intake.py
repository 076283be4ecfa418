"""Accepting a batch of command attempts into the chain, in memory. Pure.

The consumer hands over a partition's batch (offset order) together with what the database
holds for it, read set-wise: the batch's products (locked), the attempts already recorded for
its commands or still in flight for its products, the commands' records and the in-flight
attempts' EMOS orders. `Intake.accept` then decides each command in turn exactly as if the
batch had come one event at a time: a later command of the batch sees what an earlier one
did (its attempt in flight, the product's newest sequence, the command's latest attempt).
What changed is written back afterwards with one statement per kind.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from common.contracts.gateway import ProvisioningAction, ProvisioningCommand, StageOutcome

from .chain import (
    STAGE_OF,
    Attempt,
    CommandRecord,
    EmosOrder,
    ProductChain,
    StageReport,
    Verdict,
    judge,
    schedule,
    supersede,
)
from .faults import Faults, Step

PENDING = "pending"


@dataclass
class CommandState:
    """One row of what the chain remembers per command, as the batch moves it."""

    command_id: str
    product_id: str
    action: ProvisioningAction
    sequence: int
    received_at: datetime
    latest_attempt: int
    outcome: str = PENDING  # the latest finished attempt's, or pending
    applied_attempt: int | None = None
    emos_order_id: str | None = None

    def record(self) -> CommandRecord:
        return CommandRecord(self.command_id, self.sequence, self.latest_attempt,
                             self.applied_attempt, self.emos_order_id)

    def running(self, attempt: int) -> None:
        self.latest_attempt, self.outcome = max(self.latest_attempt, attempt), PENDING

    def finished(self, a: Attempt) -> None:
        """An attempt of this command finished; an applied command stays applied."""
        applied = a.outcome is StageOutcome.APPLIED
        if self.applied_attempt is not None:
            self.outcome = StageOutcome.APPLIED.value
        else:
            self.outcome = a.outcome.value if a.outcome else PENDING
        if self.applied_attempt is None and applied:
            self.applied_attempt = a.attempt
        if self.emos_order_id is None and applied:
            self.emos_order_id = a.emos_order_id


@dataclass
class Intake:
    """The batch's working set. Inputs: what the database holds; outputs: what to write."""

    products: dict[str, ProductChain]
    commands: dict[str, CommandState]
    in_flight: dict[str, list[Attempt]]  # by product: attempts recorded and not finished
    orders: dict[str, EmosOrder]  # the in-flight attempts' EMOS orders
    seen: set[tuple[str, int]]  # (command_id, attempt) already recorded
    faults: Faults
    now: datetime
    new_attempts: list[Attempt] = field(default_factory=list)
    stopped: list[Attempt] = field(default_factory=list)  # recorded before, superseded now
    moved_products: set[str] = field(default_factory=set)
    moved_commands: set[str] = field(default_factory=set)
    cancelled_orders: list[EmosOrder] = field(default_factory=list)
    _recorded_now: set[tuple[str, int]] = field(default_factory=set)

    def accept(self, cmd: ProvisioningCommand) -> list[tuple[Attempt, StageReport]]:
        """One command attempt; returns the results it publishes at once (none while the
        attempt just starts its way through the chain)."""
        key = (cmd.command_id, cmd.attempt)
        if key in self.seen:
            return []  # redelivered, or replayed under a new event id: nothing new to say
        self.seen.add(key)
        product = self.products[cmd.product_id]
        state = self.commands.get(cmd.command_id)
        record = state.record() if state is not None else None
        a = Attempt(command_id=cmd.command_id, attempt=cmd.attempt, product_id=cmd.product_id,
                    customer_id=cmd.customer_id, cpno=cmd.cpno, family=cmd.family.value,
                    vendor=cmd.vendor, action=cmd.action, sequence=cmd.sequence,
                    received_at=self.now)
        verdict = judge(cmd.command_id, cmd.sequence, cmd.attempt, product.last_sequence, record)
        self._note_command(cmd, state)
        self.new_attempts.append(a)
        self._recorded_now.add(key)
        if verdict is not Verdict.RUN:
            return [self._answer_at_once(a, verdict, product.last_sequence, record)]
        reports = self._supersede_in_flight(cmd)
        product.last_sequence = max(product.last_sequence, cmd.sequence)
        self.moved_products.add(product.product_id)
        schedule(a, Step.BOSS, self.faults, self.now)
        self.in_flight[cmd.product_id] = [a]
        return reports

    def due_now(self) -> list[Attempt]:
        """The batch's new attempts whose next step is already due (with delays at 0, all)."""
        return [a for a in self.new_attempts
                if a.outcome is None and a.due_at is not None and a.due_at <= self.now]

    def advanced(self, attempts: Iterable[Attempt]) -> None:
        """These attempts moved along the chain in the batch: their products changed, and
        the finished ones' outcomes go on their commands."""
        moved = list(attempts)
        self.moved_products.update(a.product_id for a in moved)
        self._finished([a for a in moved if a.outcome is not None])

    def _note_command(self, cmd: ProvisioningCommand, state: CommandState | None) -> None:
        if state is None:
            self.commands[cmd.command_id] = CommandState(
                cmd.command_id, cmd.product_id, cmd.action, cmd.sequence, self.now, cmd.attempt)
        else:
            state.running(cmd.attempt)
        self.moved_commands.add(cmd.command_id)

    def _answer_at_once(
        self, a: Attempt, verdict: Verdict, last_sequence: int, record: CommandRecord | None,
    ) -> tuple[Attempt, StageReport]:
        a.step, a.finished_at = Step.GATEWAY, self.now
        if verdict is Verdict.ALREADY_APPLIED and record is not None:
            a.outcome, a.emos_order_id = StageOutcome.APPLIED, record.emos_order_id
            a.detail = f"already applied at the gateway by attempt {record.applied_attempt}"
        else:
            a.outcome = StageOutcome.SUPERSEDED
            a.detail = (f"sequence {a.sequence} is not newer than {last_sequence}"
                        if record is None or a.sequence < last_sequence
                        else f"attempt {a.attempt} overtaken by attempt {record.latest_attempt}")
        self._finished([a])
        return a, StageReport(STAGE_OF[a.step], a.outcome, True, a.detail, self.now)

    def _supersede_in_flight(self, cmd: ProvisioningCommand) -> list[tuple[Attempt, StageReport]]:
        """A newer command (or a newer attempt of the same one) takes over the product at
        once: what is still in the chain for it stops, and its EMOS order is cancelled."""
        older = self.in_flight.pop(cmd.product_id, [])
        why = f"superseded by {cmd.command_id} attempt {cmd.attempt} (sequence {cmd.sequence})"
        reports = []
        for o in older:
            order = self.orders.get(o.emos_order_id or "")
            was_open = order is not None and order.status.open
            reports.append((o, supersede(o, order, self.now, why)))
            if order is not None and was_open:
                self.cancelled_orders.append(order)
            if (o.command_id, o.attempt) not in self._recorded_now:
                self.stopped.append(o)
        self._finished(older)
        return reports

    def _finished(self, finished: Iterable[Attempt]) -> None:
        for a in finished:
            state = self.commands.get(a.command_id)
            if state is not None:  # else the database has no record to update either
                state.finished(a)
                self.moved_commands.add(a.command_id)
