"""Balance events, set-wise: a batch of one partition costs a fixed handful of statements.

1. lock the accounts' positions and drop stale events;
2. upsert the batch's products (returns them locked);
3. decide in memory, event by event, in order: each decision moves the product's state in
   memory, so a later event of the batch sees it (exactly as if applied one by one);
4. write the decisions, states, history and outbox rows with one statement each;
5. store each account's newest position.

Decision ids are deterministic, and a decision already taken is not taken again (no state
change, no event). Which ids are taken is asked once for the whole batch; if that changes
what the batch decides, it decides again with the answer (a fixed point, usually one round).
"""

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import business_date
from common.contracts.billing import BalanceCause, BalanceChanged
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditState,
    CreditStateChanged,
    DecisionType,
    NoticeContext,
)
from common.contracts.gateway import ProvisioningAction, ProvisioningCommand
from common.contracts.snapshots import CustomerSnapshot, ProductFamily, ProductSnapshot, Tier
from common.envelope import Contract, Envelope, RawEnvelope, encode, to_builtins, wrap

from ..adapters import admin_repository as admin_repo
from ..adapters import balance_sql as sql
from ..adapters import worklist_sql
from ..domain import rules
from ..domain.ladder import Ladder, reconcile
from ..domain.model import Action, action_for, can, next_state
from ..domain.product_amount import allowed_on_balance, product_amount_due
from ..domain.profiles import CreditProfile
from ..domain.rule_table import RuleTable
from ..metrics import count_decisions
from .handlers import DECISION_NS, CreditContext, ProductView
from .work_orders import cancel_superseded, open_work_order

log = logging.getLogger(__name__)


async def apply_balance_events(
    ctx: CreditContext, conn: AsyncConnection, items: list[tuple[RawEnvelope, BalanceChanged]]
) -> None:
    """A batch of balance events of one partition, in offset order, in the caller's
    transaction (the consumer's, with the inbox claim)."""
    fresh = await _fresh(conn, items)
    if not fresh:
        return
    snapshots = {p.product_id: (e, p) for _, e in fresh for p in e.products}
    rows = await sql.upsert_products(conn, list(snapshots.values()))
    table = await ctx.rules.current(conn)
    profiles = await admin_repo.profiles_for(
        conn, sorted({e.customer.customer_id for _, e in fresh}))
    batch = Batch(ctx, table, profiles, rows, snapshots)
    await batch.decide(conn, fresh)
    await batch.write(conn)
    newest = {e.account_id: e for _, e in fresh}
    await sql.save_positions(conn, list(newest.values()))
    await worklist_sql.close_cleared(conn, [
        (e.account_id, e.as_of, f"arrears cleared ({e.cause.value})") for e in newest.values()
        if e.amount_due_fen == 0 and e.cause in _CLEARING])


# The causes that can clear arrears: only their events may close worklist entries at once (a
# refresh closes the rest), so charges and bill runs cost the hot path nothing.
_CLEARING = frozenset({BalanceCause.PAYMENT, BalanceCause.ADJUSTMENT, BalanceCause.DEDUCTION,
                       BalanceCause.WRITE_OFF, BalanceCause.REVERSAL})


async def _fresh(
    conn: AsyncConnection, items: list[tuple[RawEnvelope, BalanceChanged]]
) -> list[tuple[RawEnvelope, BalanceChanged]]:
    """The events newer than the account's applied sequence (positions locked)."""
    applied = await sql.sequences_for_update(conn, sorted({e.account_id for _, e in items}))
    fresh: list[tuple[RawEnvelope, BalanceChanged]] = []
    for envelope, event in items:
        if event.sequence <= applied.get(event.account_id, 0):
            log.info("stale balance event for %s (seq %d)", event.account_id, event.sequence)
            continue
        applied[event.account_id] = event.sequence
        fresh.append((envelope, event))
    return fresh


# Dict lookups: an Enum(value) call costs several times more, once per product and batch.
_FAMILIES = {f.value: f for f in ProductFamily}
_STATES = {s.value: s for s in CreditState}


@dataclass
class Product:
    """A locked product_credit row as the batch moves it in memory."""

    product_id: str
    account_id: str
    family: ProductFamily
    snapshot: ProductSnapshot  # the newest in the batch: what the row now holds
    customer_id: str | None
    state: CreditState
    command_seq: int
    warning_level: int
    cycle: int
    moved: bool = False
    at: datetime | None = None
    command: ProvisioningCommand | None = None  # the last chain command of the batch
    command_sent_at: datetime | None = None
    pending_decision_id: str | None = None
    work_order_id: str | None = None  # the last work order of the batch
    ladder: Ladder = field(default_factory=Ladder)  # this cycle's notices (domain/ladder.py)
    ladder_moved: bool = False
    changed_at: datetime | None = None  # the stored state's moment (before this batch)

    @classmethod
    def of(cls, row: Row[Any], event: BalanceChanged, snapshot: ProductSnapshot) -> "Product":
        # account and customer are what the upsert just wrote: the event's
        return cls(row.product_id, event.account_id, _FAMILIES[row.family], snapshot,
                   event.customer.customer_id, _STATES[row.state], row.command_seq,
                   row.warning_level, row.cycle,
                   ladder=Ladder(row.ladder_month, row.warning_level, row.suspension_warned_on,
                                 row.suspension_deadline),
                   changed_at=getattr(row, "state_changed_at", None))

    def set_ladder(self, ladder: Ladder) -> None:
        if ladder != self.ladder:
            self.ladder, self.warning_level, self.ladder_moved = (
                ladder, ladder.warning_level, True)


@dataclass(frozen=True)
class Inputs:
    """What a decision was based on: shown by the explain endpoint."""

    facts: rules.AccountFacts
    event: BalanceChanged
    profile: CreditProfile
    rule_version: int

    def as_json(self) -> dict[str, Any]:
        f, event = self.facts, self.event
        exemptions = [{"kind": e.kind, "reason": e.reason, "approver": e.approver,
                       "until": e.until.isoformat() if e.until else None}
                      for e in self.profile.active_exemptions(event.as_of)]
        return {"balance_fen": f.balance_fen, "amount_due_fen": f.amount_due_fen,
                "dues": to_builtins(event.dues), "tier": event.customer.tier.value,
                "star_level": self.profile.star(event.customer.star_level),
                "credit_limit_fen": f.credit_limit_fen, "exemptions": exemptions,
                "oldest_due_month": f.oldest_due_month.isoformat() if f.oldest_due_month
                else None, "cause": f.cause.value if f.cause else None,
                "rule_version": self.rule_version}


def facts_of(event: BalanceChanged, profile: CreditProfile) -> rules.AccountFacts:
    return rules.AccountFacts(
        event.balance_fen, event.amount_due_fen, event.cause, event.closed_bill_month,
        oldest_due_month=sql.oldest_due_month(event),
        credit_limit_fen=profile.limit_fen(event.customer.star_level),
        deposit_fen=event.deposit_fen)


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


@dataclass
class Batch:
    """One batch's decisions: taken in memory (`decide`), then written set-wise (`write`)."""

    ctx: CreditContext
    table: RuleTable
    profiles: dict[str, CreditProfile]
    rows: list[Row[Any]]
    snapshots: dict[str, tuple[BalanceChanged, ProductSnapshot]]
    products: dict[str, Product] = field(default_factory=dict)
    decisions: sql.DecisionRows = field(default_factory=sql.DecisionRows)
    history: sql.HistoryRows = field(default_factory=sql.HistoryRows)
    outbox: list[tuple[str, Envelope[Any]]] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    work_orders: list[tuple[Product, ProvisioningAction, str, str, datetime]] = field(
        default_factory=list)
    narrowed: dict[tuple[ProductFamily, Tier], RuleTable] = field(default_factory=dict)

    async def decide(self, conn: AsyncConnection,
                     fresh: list[tuple[RawEnvelope, BalanceChanged]]) -> None:
        asked: set[str] = set()
        known: set[str] = set()
        while True:
            self._reset(known)
            for envelope, event in fresh:
                self._on_event(envelope, event)
            unknown = [d for d in self.decisions.decision_id if d not in asked]
            if not unknown:
                return
            asked.update(unknown)
            already = await sql.taken_decisions(conn, unknown)
            if not already:
                return
            known |= already

    def decide_one(self, product_id: str, intent: rules.Intent, as_of: datetime,
                   correlation: str) -> bool:
        """One decision that no balance event asked for (a credit-admin's review restores a
        product), on the account's newest position: the same moves, chain commands, work
        orders and events as a payment's. Whether the product moved."""
        self._reset(set())
        event, _ = self.snapshots[product_id]
        product, profile = self.products[product_id], self.profiles[event.customer.customer_id]
        self._take(product, event.customer, Inputs(facts_of(event, profile), event, profile,
                                                   self.table.version),
                   intent, as_of, correlation)
        return product.moved

    def _reset(self, known: set[str]) -> None:
        self.products = {r.product_id: Product.of(r, *self.snapshots[r.product_id])
                         for r in self.rows}
        self.decisions, self.history, self.outbox = sql.DecisionRows(), sql.HistoryRows(), []
        self.work_orders = []
        self.taken = set(known)

    def _on_event(self, envelope: RawEnvelope, event: BalanceChanged) -> None:
        profile = self.profiles[event.customer.customer_id]
        facts = facts_of(event, profile)
        today = business_date(event.as_of)
        star = profile.star(event.customer.star_level)
        exempt = bool(profile.exemptions) and profile.suspension_exempt(event.as_of)
        tier = event.customer.tier
        products = (event.products if len(event.products) < 2
                    else sorted(event.products, key=lambda p: p.product_id))
        for snapshot in products:
            product = self.products[snapshot.product_id]
            self._reconcile(product, tier, facts, event.as_of)
            intent = rules.on_balance(
                self._rules(product.family, tier), facts,
                rules.ProductFacts(product.family, tier, product.state, product.warning_level,
                                   star, exempt),
                today, event_key=f"seq:{event.sequence}")
            if intent is not None:
                product.account_id = event.account_id  # the event's, even if it moved since
                self._take(product, event.customer, Inputs(facts, event, profile,
                                                           self.table.version),
                           intent, event.as_of,
                           envelope.correlation_id or str(envelope.event_id))

    def _reconcile(self, product: Product, tier: Tier, facts: rules.AccountFacts,
                   as_of: datetime) -> None:
        """The ladder follows the facts (domain/ladder.py): a new oldest owing month restarts
        it, an upgrade drops a suspension warning that no longer announces the suspension."""
        now = reconcile(product.state, product.ladder, self._rules(product.family, tier),
                        product.family, tier, facts.oldest_due_month, facts.owes)
        product.set_ladder(now.ladder)
        if now.state is product.state or now.reason is None:
            return
        h = self.history
        h.product_id.append(product.product_id)
        h.state_before.append(product.state.value)
        h.state_after.append(now.state.value)
        h.cause.append(now.reason)
        h.decision_id.append(None)
        h.at.append(as_of)
        product.state, product.at, product.moved = now.state, as_of, True

    def _rules(self, family: ProductFamily, tier: Tier) -> RuleTable:
        """The table narrowed to one family × tier: `on_balance` looks at nothing else (it
        asks `enabled(family, tier)`), and 6–10 rows answer that faster than all 90."""
        key = (family, tier)
        narrowed = self.narrowed.get(key)
        if narrowed is None:
            # Already validated as a whole; a part of it is not complete on its own.
            narrowed = self.narrowed[key] = RuleTable.model_construct(
                version=self.table.version, rows=tuple(self.table.enabled(family, tier)))
        return narrowed

    def _take(self, product: Product, customer: CustomerSnapshot, inputs: Inputs,
              intent: rules.Intent, as_of: datetime, correlation: str) -> None:
        """One decision and its move, in memory; skipped if already taken or not allowed."""
        action = action_for(intent.decision, product.family)
        own_due = product_amount_due(inputs.event, product.product_id)
        if not allowed_on_balance(intent.decision, own_due):
            return  # the account owes, this product does not: nothing to remind or suspend
        before = product.state
        if not can(before, action):
            return
        after = next_state(before, action)
        decision_id = rules.decision_id(product.product_id, intent.period, intent.decision,
                                        product.cycle)
        if decision_id in self.taken:
            return
        self.taken.add(decision_id)
        as_of, intent = not_before_last_change(product.at or product.changed_at, as_of, intent,
                                               before)
        oldest = inputs.facts.oldest_due_month
        context = NoticeContext(
            customer=customer, product=product.snapshot,
            amount_due_fen=own_due, account_amount_due_fen=inputs.facts.amount_due_fen,
            as_of_date=business_date(as_of),
            deadline=intent.deadline, bill_month=f"{oldest:%Y-%m}" if oldest else None,
            suspension_exempt=bool(inputs.profile.exemptions)
            and inputs.profile.suspension_exempt(inputs.event.as_of))
        self._record(product, intent, decision_id, before, after, as_of, context, inputs)
        events: list[Contract] = [CreditDecisionMade(
            decision_id=decision_id, account_id=product.account_id,
            product_id=product.product_id, decision=intent.decision, rule_id=intent.rule_id,
            reason=intent.reason, state_before=before, state_after=after, as_of=as_of,
            context=context, warning_level=intent.warning_level, amount_fen=intent.amount_fen,
            rule_version=inputs.rule_version)]
        if action is not Action.DEDUCT:
            events += self._move(product, customer, intent, decision_id, before, after, action,
                                 context, as_of)
        for event in events:
            key = (product.product_id if isinstance(event, ProvisioningCommand)
                   else product.account_id)
            self.outbox.append((event.topic, wrap(
                event, key=key, source=self.ctx.source, occurred_at=self.ctx.clock.now(),
                correlation_id=correlation)))

    def _record(self, product: Product, intent: rules.Intent, decision_id: str,
                before: CreditState, after: CreditState, as_of: datetime,
                context: NoticeContext, inputs: Inputs) -> None:
        d = self.decisions
        d.decision_id.append(decision_id)
        d.product_id.append(product.product_id)
        d.account_id.append(product.account_id)
        d.decision.append(intent.decision.value)
        d.rule_id.append(intent.rule_id)
        d.reason.append(intent.reason)
        d.state_before.append(before.value)
        d.state_after.append(after.value)
        d.as_of.append(as_of)
        d.context.append(encode(context).decode())
        d.inputs.append(orjson.dumps(inputs.as_json()).decode())
        d.warning_level.append(intent.warning_level)
        d.amount_fen.append(intent.amount_fen)
        d.rule_version.append(inputs.rule_version)

    def _move(self, product: Product, customer: CustomerSnapshot, intent: rules.Intent,
              decision_id: str, before: CreditState, after: CreditState, action: Action,
              context: NoticeContext, as_of: datetime) -> list[Contract]:
        events: list[Contract] = []
        cause = f"{intent.rule_id}: {intent.reason}"
        command = self._command_for(product, customer, intent.decision, decision_id, as_of)
        if command is not None:
            product.command, product.command_seq = command, command.sequence
            product.command_sent_at = self.ctx.clock.now()
            product.pending_decision_id = decision_id
            events.append(command)
        elif product.family is ProductFamily.WORK_ORDER and action in (
                Action.REQUEST_SUSPEND, Action.REQUEST_RESTORE):
            product.pending_decision_id = decision_id
            self.work_orders.append(
                (product, ProvisioningAction(intent.decision.value), decision_id, cause, as_of))
        elif action in (Action.SUSPEND_NOW, Action.RESTORE_NOW):
            events.append(CreditStateChanged(
                account_id=product.account_id, product_id=product.product_id,
                decision_id=decision_id, state_before=before, state_after=after, as_of=as_of,
                context=context))
        h = self.history
        h.product_id.append(product.product_id)
        h.state_before.append(before.value)
        h.state_after.append(after.value)
        h.cause.append(cause)
        h.decision_id.append(decision_id)
        h.at.append(as_of)
        product.state, product.at, product.moved = after, as_of, True
        if after is CreditState.NORMAL:  # a new arrears cycle: notices may come again
            product.cycle += 1
            product.set_ladder(Ladder(product.ladder.month))
        if intent.warning_level is not None:
            product.set_ladder(product.ladder.warned(intent.warning_level))
        return events

    def _command_for(self, product: Product, customer: CustomerSnapshot,
                     decision: DecisionType, decision_id: str,
                     as_of: datetime) -> ProvisioningCommand | None:
        family = product.family
        if not family.uses_chain or decision not in (DecisionType.SUSPEND,
                                                     DecisionType.RESTORE):
            return None
        sequence = product.command_seq + 1
        return ProvisioningCommand(
            command_id=str(uuid.uuid5(DECISION_NS, f"{decision_id}|cmd|{sequence}")),
            decision_id=decision_id, product_id=product.product_id,
            account_id=product.account_id, cpno=product.snapshot.cpno, family=family,
            vendor=product.snapshot.vendor, action=ProvisioningAction(decision.value),
            sequence=sequence, requested_at=as_of, attempt=1,
            customer_id=customer.customer_id)

    async def write(self, conn: AsyncConnection) -> None:
        """Decisions, work orders, states, history and outbox rows, one statement each."""
        await sql.update_ladders(conn, self._ladders())
        if not self.decisions.decision_id:
            if self.history.product_id:  # a ladder restart moved a state, no decision
                await sql.update_states(conn, self._states())
                await sql.insert_history(conn, self.history)
            return
        written = await sql.insert_decisions(conn, self.decisions)
        if written != len(self.decisions.decision_id):
            # Cannot happen while the products are locked; retried as a whole if it does.
            raise RuntimeError(f"{len(self.decisions.decision_id) - written} decisions of the "
                               "batch were taken meanwhile")
        count_decisions(conn, self.decisions.decision)
        for product, action, decision_id, reason, at in self.work_orders:
            product.work_order_id = await open_work_order(
                self.ctx, conn, ProductView(
                    product.product_id, product.account_id, product.family.value,
                    to_builtins(product.snapshot), product.state.value,
                    product.command_seq, product.warning_level, product.cycle,
                    product.customer_id),
                action, decision_id, reason, at)
        for product in self.products.values():
            # An escalated (manual) work order for the opposite action is void now that the
            # chain has a new command, e.g. a payment's restore after a failed suspension.
            if product.command is not None:  # rare: a product's state flips on the chain
                await cancel_superseded(
                    self.ctx, conn, product.product_id, product.command.action,
                    product.at or product.command.requested_at,
                    f"superseded by command {product.command.command_id} "
                    f"({product.command.action.value})")
        await sql.update_states(conn, self._states())
        await sql.insert_history(conn, self.history)
        await self.ctx.outbox.add_many(conn, self.outbox)

    def _ladders(self) -> sql.LadderRows:
        rows = sql.LadderRows()
        for p in sorted((p for p in self.products.values() if p.ladder_moved),
                        key=lambda p: p.product_id):
            rows.product_id.append(p.product_id)
            rows.ladder_month.append(p.ladder.month)
            rows.warning_level.append(p.ladder.warning_level)
            rows.suspension_warned_on.append(p.ladder.suspension_warned_on)
            rows.suspension_deadline.append(p.ladder.suspension_deadline)
        return rows

    def _states(self) -> sql.StateRows:
        rows = sql.StateRows()
        for p in sorted((p for p in self.products.values() if p.moved),
                        key=lambda p: p.product_id):
            assert p.at is not None
            command = p.command
            rows.product_id.append(p.product_id)
            rows.state.append(p.state.value)
            rows.at.append(p.at)
            rows.cycle.append(p.cycle)
            rows.warning_level.append(p.warning_level)
            rows.commanded.append(command is not None)
            rows.command_seq.append(p.command_seq)
            rows.command_id.append(command.command_id if command else None)
            rows.command_action.append(command.action.value if command else None)
            rows.command_at.append(command.requested_at if command else None)
            rows.command_sent_at.append(p.command_sent_at)
            rows.pending.append(p.pending_decision_id is not None)
            rows.pending_decision_id.append(p.pending_decision_id)
            rows.pending_work_order_id.append(p.work_order_id)
        return rows
