"""Balance events, set-wise: a batch of one partition costs a fixed handful of statements.

load → `rules.on_balance` → `ProductCredit.apply` → save, for a whole batch at once:
1. move each account's position to its newest event of the batch, locking it, and learn
   where it was before: the events at or below that are stale and dropped;
2. upsert the batch's products' facts and load them as aggregates (domain/product_credit.py),
   locked;
3. decide in memory, event by event, in order: each decision moves the product in memory,
   so a later event of the batch sees it (exactly as if applied one by one);
4. after the decisions, the facts the notifier's messages quote: what billing's answer to a
   deduction paid of each product (`credit.deduction_collected`) and each product off normal
   whose own amount moved with no decision (`credit.product_amount_changed`);
5. write the decisions, products, history and outbox rows with one statement each.

Decision ids are deterministic, and a decision already taken is not taken again (no state
change, no event). Which ids are taken is asked once for the whole batch; if that changes
what the batch decides, it decides again with the answer (a fixed point, usually one round).

The store (`BalanceStore`) is the batch's one door to the database: `balance_store.Sql…` in
the consumer's transaction, `adapters.memory.InMemoryBalanceStore` in use-case tests.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import msgspec
import orjson

from common.clock import business_date, month_text
from common.contracts.billing import BalanceCause, BalanceChanged
from common.contracts.credit_control import (
    CreditState,
    CreditStateChanged,
    DecisionType,
    DeductionCollected,
    NoticeContext,
    ProductAmountChanged,
)
from common.contracts.gateway import ProvisioningCommand
from common.contracts.snapshots import CustomerSnapshot, ProductFamily, ProductSnapshot, Tier
from common.envelope import RawEnvelope, encode, to_builtins, wrap
from common.sending_hours import SendingWindow

from ...collections.domain.promises import Promise
from ..adapters import balance_sql as sql
from ..domain import freezes, rules
from ..domain.freezes import Freeze
from ..domain.ladder import first_sending_day, reminder_level
from ..domain.product_amount import allowed_on_balance, product_amount_due
from ..domain.product_credit import Decision, ProductCredit
from ..domain.profiles import CreditProfile
from ..domain.rule_table import RuleRow, RuleTable, Trigger

log = logging.getLogger(__name__)


class BalanceStore(Protocol):
    """What the balance path reads and writes, set-wise."""

    source: str
    # The customers' SMS sending window (CREDIT_CUSTOMER_SENDING_HOURS): a reversal's deadline
    # counts the notice from the day its SMS can first leave (ladder.first_sending_day).
    sending_window: SendingWindow

    def now(self) -> datetime: ...

    async def advance_positions(
        self, newest: list[BalanceChanged]) -> dict[str, sql.Position | None]: ...

    async def upsert_products(
        self, snapshots: list[tuple[BalanceChanged, ProductSnapshot]],
        since: Mapping[str, datetime] | None = None,
    ) -> tuple[dict[str, ProductCredit], dict[str, int]]:
        """The batch's products, locked, and what each owed of its own before (absent: a
        new product, or not known). A new product starts normal as of `since` (its earliest
        moment in the batch), else as of its snapshot's event."""
        ...

    async def rule_table(self) -> RuleTable: ...

    async def profiles(self, customer_ids: list[str]) -> dict[str, CreditProfile]: ...

    async def taken_decisions(self, decision_ids: list[str]) -> set[str]: ...

    async def open_freezes(self) -> list[Freeze]: ...

    async def open_promises(self, account_ids: list[str]) -> list[Promise]: ...

    async def write(self, writes: sql.BatchWrites) -> None: ...

    async def close_cleared(self, cleared: list[tuple[str, datetime, str]]) -> None: ...

    async def held_by_collections(self, product_ids: list[str]) -> set[str]: ...


@dataclass(frozen=True)
class Applied:
    """What a batch applied, for what else the batch records (the rating's inputs): each
    account's event that is its position now (the batch's newest fresh one), what those
    accounts owed before the batch (absent: no position yet), and, for an account with
    several fresh events in the batch, the most it owed along them (an arrears peak between
    two events of one batch; absent: its current event's debt)."""

    current: list[BalanceChanged] = field(default_factory=list)
    due_before: dict[str, int] = field(default_factory=dict)
    peak_due: dict[str, int] = field(default_factory=dict)


async def apply_balance_events(
    store: BalanceStore, items: list[tuple[RawEnvelope, BalanceChanged]]
) -> Applied:
    """A batch of balance events of one partition, in offset order, in the store's
    transaction (the consumer's, with the inbox claim)."""
    moved = await store.advance_positions(list(_newest(items).values()))
    fresh = _fresh(items, moved)
    if not fresh:
        return Applied()
    snapshots = {p.product_id: (e, p) for _, e in fresh for p in e.products}
    # Some account has several fresh events: a new product's first state dates from the
    # earliest of them, not from the newest (whose snapshot it takes).
    since = _earliest(fresh) if len(fresh) > len(moved) else None
    products, owed_before = await store.upsert_products(list(snapshots.values()), since)
    table = await store.rule_table()
    profiles = await store.profiles(sorted({e.customer.customer_id for _, e in fresh}))
    batch = Batch(store, table, profiles, products, snapshots,
                  freezes=await store.open_freezes(), held=await held_products(store, products),
                  promises={p.account_id: p for p in await store.open_promises(
                      sorted({e.account_id for _, e in fresh}))})
    await batch.decide(fresh)
    batch.announce_deductions(fresh)
    batch.revise_amounts(owed_before, fresh)
    await store.write(batch.writes)
    newest = {e.account_id: e for _, e in fresh}
    await store.close_cleared([
        (e.account_id, e.as_of, f"arrears cleared ({e.cause.value})") for e in newest.values()
        if e.amount_due_fen == 0 and e.cause in _CLEARING])
    peaks: dict[str, int] = {}
    if len(fresh) > len(newest):  # some account has several fresh events in the batch
        for _, e in fresh:
            if e.amount_due_fen > peaks.get(e.account_id, -1):
                peaks[e.account_id] = e.amount_due_fen
    return Applied(list(newest.values()),
                   {a: p[1] for a, p in moved.items() if p is not None}, peaks)


# The causes that can clear arrears: only their events may close worklist entries at once (a
# refresh closes the rest), so charges and bill runs cost the hot path nothing.
_CLEARING = frozenset({BalanceCause.PAYMENT, BalanceCause.ADJUSTMENT, BalanceCause.DEDUCTION,
                       BalanceCause.WRITE_OFF, BalanceCause.REVERSAL})


async def held_products(store: BalanceStore, products: dict[str, ProductCredit]) -> frozenset[str]:
    """The batch's products suspended by association (关联停机, collections/): their own
    account's events never restore them; the collections case does, once its arrears are
    paid. Asked only when a product of the batch is sanctioned (most batches: no statement)."""
    sanctioned = [i for i, p in products.items() if p.state in rules.RESTORABLE]
    return frozenset(await store.held_by_collections(sanctioned)) if sanctioned else frozenset()


def _newest(items: list[tuple[RawEnvelope, BalanceChanged]]) -> dict[str, BalanceChanged]:
    """Each account's event of the highest sequence (the first of equal ones): the batch's
    last fresh event of the account, if it has any, is this one."""
    newest: dict[str, BalanceChanged] = {}
    for _, event in items:
        seen = newest.get(event.account_id)
        if seen is None or event.sequence > seen.sequence:
            newest[event.account_id] = event
    return newest


def _earliest(fresh: list[tuple[RawEnvelope, BalanceChanged]]) -> dict[str, datetime]:
    """Each product's earliest business moment among the batch's fresh events. Events come
    in sequence order, but their moments need not: a charge posted today, then a bill run
    closing last month as of its 2nd. A product new to credit control starts normal as of
    this moment; starting it as of the newest event's would date the bill run's notice (and
    the ladder after it) weeks late, as not_before_last_change keeps decisions after the
    product's last state change."""
    earliest: dict[str, datetime] = {}
    for _, e in fresh:
        at = e.as_of
        for p in e.products:
            seen = earliest.get(p.product_id)
            if seen is None or at < seen:
                earliest[p.product_id] = at
    return earliest


def _fresh(
    items: list[tuple[RawEnvelope, BalanceChanged]], moved: dict[str, sql.Position | None]
) -> list[tuple[RawEnvelope, BalanceChanged]]:
    """The events newer than the account's applied sequence before the batch, each newer
    than the account's fresh ones before it; an account whose position did not move (it was
    at or past the batch's newest event) has none."""
    applied = {a: p[0] if p is not None else 0 for a, p in moved.items()}
    fresh: list[tuple[RawEnvelope, BalanceChanged]] = []
    for envelope, event in items:
        if event.sequence <= applied.get(event.account_id, event.sequence):
            log.info("stale balance event for %s (seq %d)", event.account_id, event.sequence)
            continue
        applied[event.account_id] = event.sequence
        fresh.append((envelope, event))
    return fresh


@dataclass(frozen=True)
class Inputs:
    """What a decision was based on: shown by the explain endpoint. `trigger`: what asked
    for a decision no balance event asked for ("credit review", "collections case"), shown as
    its cause in place of the account's last event's, as a sweep's says "sweep"."""

    facts: rules.AccountFacts
    event: BalanceChanged
    profile: CreditProfile
    rule_version: int
    trigger: str | None = None

    def as_json(self) -> dict[str, Any]:
        f, event = self.facts, self.event
        exemptions = [{"kind": e.kind, "reason": e.reason, "approver": e.approver,
                       "until": e.until.isoformat() if e.until else None}
                      for e in self.profile.active_exemptions(event.as_of)]
        return {"balance_fen": f.balance_fen, "amount_due_fen": f.amount_due_fen,
                "dues": to_builtins(event.dues),
                "tier": self.profile.decision_tier(event.customer.tier).value,
                "star_level": self.profile.star(event.customer.star_level),
                "credit_limit_fen": f.credit_limit_fen, "exemptions": exemptions,
                "oldest_due_month": f.oldest_due_month.isoformat() if f.oldest_due_month
                else None,
                "cause": self.trigger or (f.cause.value if f.cause else None),
                "rule_version": self.rule_version}


def _correlation(envelope: RawEnvelope) -> str:
    """What the events a balance event leads to are correlated by: its own correlation, or
    its id."""
    return envelope.correlation_id or str(envelope.event_id)


def facts_of(event: BalanceChanged, profile: CreditProfile) -> rules.AccountFacts:
    return rules.AccountFacts(
        event.balance_fen, event.amount_due_fen, event.cause, event.closed_bill_month,
        oldest_due_month=sql.oldest_due_month(event),
        credit_limit_fen=profile.limit_fen(event.customer.star_level),
        deposit_fen=event.deposit_fen)


@dataclass
class Batch:
    """One batch's decisions: taken in memory (`decide`), collected for the store (`writes`)."""

    store: BalanceStore
    table: RuleTable
    profiles: dict[str, CreditProfile]
    loaded: dict[str, ProductCredit]  # as the store handed them out, in product id order
    snapshots: dict[str, tuple[BalanceChanged, ProductSnapshot]]
    freezes: list[Freeze] = field(default_factory=list)  # not ended (active: at the event)
    products: dict[str, ProductCredit] = field(default_factory=dict)
    writes: sql.BatchWrites = field(default_factory=sql.BatchWrites)
    taken: set[str] = field(default_factory=set)
    narrowed: dict[tuple[ProductFamily, Tier],
                   tuple[RuleTable, dict[Trigger, RuleRow]]] = field(default_factory=dict)
    held: frozenset[str] = frozenset()  # suspended by association: no restore from here
    promises: dict[str, Promise] = field(default_factory=dict)  # open, by account
    quoted: dict[str, int] = field(default_factory=dict)  # own amount of its last decision

    async def decide(self, fresh: list[tuple[RawEnvelope, BalanceChanged]]) -> None:
        def round_() -> None:
            for envelope, event in fresh:
                self._consider(event, event.as_of, envelope)

        await self._fixed_point(round_)

    async def reconsider(self, at: datetime | Mapping[str, datetime], correlation: str, *,
                         trigger: str) -> None:
        """Each of the batch's products against its facts as they stand (its account's newest
        position) and its customer's profile now, as of `at`, as a balance event would: the
        ladder reconciled (an upgrade voids a suspension warning that no longer announces the
        suspension; a downgrade does not revive one voided), then the balance rules (a product
        now within its credit limit is cleared, or restored). For what changes a product's
        facts with no balance event: its customer's tier by the rating, its limit or star by
        a credit-admin (service_layer/reconsider.py). `trigger`: the decisions' cause. `at`:
        the change's moment, or each product's (by product id); each product's snapshot
        comes with an event that carries it alone."""
        # Nothing was billed or paid: the position's facts as a master data change brings
        # them (its own cause, a bill run's say, would give its bill notice again).
        events = [(msgspec.structs.replace(event, cause=BalanceCause.MASTER_DATA,
                                           closed_bill_month=None),
                   at if isinstance(at, datetime) else at[product_id])
                  for product_id, (event, _) in self.snapshots.items()]

        def round_() -> None:
            for event, moment in events:
                self._consider(event, moment, correlation, trigger)

        await self._fixed_point(round_)

    async def _fixed_point(self, round_: Callable[[], None]) -> None:
        """Rounds of decisions until none of them was already taken (decision ids are
        deterministic; which are taken is asked of the store once a round)."""
        asked: set[str] = set()
        known: set[str] = set()
        while True:
            self._reset(known)
            round_()
            self._settle()
            unknown = [d for d in self.writes.decisions.decision_id if d not in asked]
            if not unknown:
                return
            asked.update(unknown)
            already = await self.store.taken_decisions(unknown)
            if not already:
                return
            known |= already

    def decide_one(self, product_id: str, intent: rules.Intent, as_of: datetime,
                   correlation: str, own_due_fen: int | None = None, *,
                   trigger: str) -> bool:
        """One decision that no balance event asked for (a credit-admin's review restores a
        product), on the account's newest position: the same moves, chain commands, work
        orders and events as a payment's. Whether the product moved.

        `own_due_fen` stands for the product's own amount (the notice's XX): an associated
        suspension (关联停机, collections/) suspends a product that owes nothing for the
        arrears of the customer's account in collections, and says that amount. `trigger`
        is what asked for it, the decision's cause in its inputs."""
        self._reset(set())
        event, _ = self.snapshots[product_id]
        product, profile = self._own(product_id), self.profiles[event.customer.customer_id]
        self._take(product, event.customer, Inputs(facts_of(event, profile), event, profile,
                                                   self.table.version, trigger),
                   intent, as_of, correlation, own_due_fen)
        self._settle()
        return product.moved_at is not None

    def _reset(self, known: set[str]) -> None:
        # A second round decides from the loaded state again, so a round changes copies
        # only: each product is copied before its first change of the round (`_own`), and
        # most of a batch's products never change (copying them all was ~3 % of its CPU).
        self.products = dict(self.loaded)
        self.writes = sql.BatchWrites()
        self.taken = set(known)
        self.quoted = {}

    def _own(self, product_id: str) -> ProductCredit:
        """The round's own copy of the product, to change."""
        product = self.products[product_id]
        if product is self.loaded[product_id]:
            product = self.products[product_id] = product.copy()
        return product

    def _settle(self) -> None:
        """The round's changed products, for the store to write back."""
        loaded = self.loaded
        self.writes.products = [p for i, p in self.products.items() if p is not loaded[i]]

    def _consider(self, event: BalanceChanged, as_of: datetime,
                  source: RawEnvelope | str, trigger: str | None = None) -> None:
        """The event's products, in product id order, as of `as_of` (the event's own, or a
        profile change's moment: `reconsider`); `source`: the envelope whose correlation the
        decisions take, or that correlation."""
        profile = self.profiles[event.customer.customer_id]
        facts = facts_of(event, profile)
        today = business_date(as_of)
        # Only a reversal's decision names a suspension deadline on this path (the notice
        # counted from the day its SMS can first leave: after the sending window closed, the
        # next day); the others need no sending day, so none is worked out for them.
        sent_on = (first_sending_day(as_of, self.store.sending_window)
                   if facts.cause is BalanceCause.REVERSAL else None)
        star = profile.star(event.customer.star_level)
        exempt = bool(profile.exemptions) and profile.suspension_exempt(as_of)
        tier = profile.decision_tier(event.customer.tier)
        products = (event.products if len(event.products) < 2
                    else sorted(event.products, key=lambda p: p.product_id))
        for snapshot in products:
            product = self.products[snapshot.product_id]
            table, rows = self._rules(product.family, tier)
            now = product.reconciled(table, tier, facts.oldest_due_month, facts.owes)
            if product.moves(now):
                product = self._own(snapshot.product_id)
                change = product.follow(now, as_of)
                if change is not None:
                    self._history(product.product_id, change)
                    if change.before is CreditState.SUSPENSION_WARNED:
                        self._withdrawn(product, event, facts, exempt, as_of, source)
            frozen = bool(self.freezes) and self._frozen(product, event, star, as_of)
            promised = bool(self.promises) and self._promised(event, today, as_of)
            intent = rules.on_balance(
                table, facts,
                rules.ProductFacts(product.family, tier, product.state, product.warning_level,
                                   star, exempt, frozen=frozen, promised=promised,
                                   own_due_fen=product_amount_due(event, snapshot.product_id)),
                today, event_key=f"seq:{event.sequence}", rows=rows, sent_on=sent_on)
            if intent is not None and intent.decision is DecisionType.RESTORE and (
                    snapshot.product_id in self.held):
                continue  # 关联停机: restored when the collections case's arrears are paid
            if intent is not None:
                product = self._own(snapshot.product_id)
                product.account_id = event.account_id  # the event's, even if it moved since
                self._take(product, event.customer, Inputs(facts, event, profile,
                                                           self.table.version, trigger),
                           intent, as_of, source if isinstance(source, str)
                           else _correlation(source))

    def _withdrawn(self, product: ProductCredit, event: BalanceChanged,
                   facts: rules.AccountFacts, exempt: bool, as_of: datetime,
                   source: RawEnvelope | str) -> None:
        """The product's suspension warning stopped counting with no decision (the ladder
        restarted for a new oldest owing month, an upgrade voided it: suspension_warned →
        warned): a `credit.state_changed` says so, so a suspension warning the notifier has
        not sent yet (held by the quiet hours) is cancelled, not sent naming a date no
        suspension will follow (docs/notifier.md "No empty threats"). Rare: no cost to the
        batches that never see one."""
        oldest = facts.oldest_due_month
        assert product.snapshot is not None  # the batch's products carry the event's
        at = as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.writes.outbox.append((CreditStateChanged.topic, wrap(CreditStateChanged(
            account_id=event.account_id, product_id=product.product_id,
            decision_id=f"ladder:{product.product_id}:{at}",  # no decision: the reconcile's
            state_before=CreditState.SUSPENSION_WARNED, state_after=product.state,
            as_of=as_of, context=NoticeContext(
                customer=event.customer, product=product.snapshot,
                amount_due_fen=product_amount_due(event, product.product_id),
                account_amount_due_fen=facts.amount_due_fen, as_of_date=business_date(as_of),
                bill_month=month_text(oldest) if oldest else None,
                suspension_exempt=exempt)),
            key=event.account_id, source=self.store.source, occurred_at=self.store.now(),
            correlation_id=source if isinstance(source, str) else _correlation(source))))

    def announce_deductions(self, fresh: list[tuple[RawEnvelope, BalanceChanged]]) -> None:
        """After the batch's decisions: billing's answer to a deduction (`cause=deduction`)
        names what its collected money paid of each product's arrears; each part is a
        `DeductionCollected`, the fact the deduction notice (划扣通知) quotes. Not the
        decision's asked amount: billing collects at most what the deposit holds and what
        is owed, and pays the account's oldest bills first (docs/billing.md "Deductions").
        Only fresh events: a stale one was announced when it was fresh."""
        for envelope, event in fresh:
            outcome = event.deduction
            if event.cause is not BalanceCause.DEDUCTION or outcome is None:
                continue
            snapshots = {p.product_id: p for p in event.products}
            for part in outcome.products:
                snapshot = snapshots.get(part.product_id)
                if part.collected_fen <= 0 or snapshot is None:
                    log.warning("deduction %s: no notice for product %s (%d fen, %s)",
                                outcome.decision_id, part.product_id, part.collected_fen,
                                "not one of the account's" if snapshot is None else "nothing")
                    continue
                self.writes.outbox.append((DeductionCollected.topic, wrap(
                    self._deduction_collected(event, outcome.decision_id, snapshot,
                                              part.collected_fen),
                    key=event.account_id, source=self.store.source,
                    occurred_at=self.store.now(), correlation_id=_correlation(envelope))))

    def _deduction_collected(self, event: BalanceChanged, deduction_id: str,
                             snapshot: ProductSnapshot, collected_fen: int) -> DeductionCollected:
        profile = self.profiles[event.customer.customer_id]
        oldest = sql.oldest_due_month(event)
        return DeductionCollected(
            account_id=event.account_id, product_id=snapshot.product_id,
            deduction_id=deduction_id, as_of=event.as_of, sequence=event.sequence,
            collected_fen=collected_fen, context=NoticeContext(
                customer=event.customer, product=snapshot,
                amount_due_fen=product_amount_due(event, snapshot.product_id),
                account_amount_due_fen=event.amount_due_fen,
                as_of_date=business_date(event.as_of),
                bill_month=month_text(oldest) if oldest else None,
                suspension_exempt=bool(profile.exemptions)
                and profile.suspension_exempt(event.as_of)))

    def revise_amounts(self, owed_before: dict[str, int],
                       fresh: list[tuple[RawEnvelope, BalanceChanged]]) -> None:
        """After the batch's decisions: each product off normal whose own amount due is not
        what its notices quote (its last decision's in this batch, else what it owed before
        the batch) gets a `ProductAmountChanged`, after its decisions in the outbox, so
        a notice the notifier has not sent yet is revised to what the product owes now
        (docs/notifier.md "Amounts still true when they leave"). A new product quotes
        nothing yet; a product back to normal has its reminders cancelled instead."""
        # The envelope of each product's last event (its snapshot's), looked up only for the
        # products that publish: most of a batch's products do not.
        envelopes: dict[int, RawEnvelope] | None = None
        now = self.store.now()
        for product_id, (event, _) in self.snapshots.items():
            quoted = self.quoted.get(product_id, owed_before.get(product_id))
            owed = product_amount_due(event, product_id)
            state = self.products[product_id].state
            if (quoted is None or quoted == owed or state is CreditState.NORMAL
                    or product_id in self.held):
                # Held by an association (关联停机): its suspension notice quotes the arrears
                # of the account in collections, not its own amount; its own amount moving
                # (a bill of its own) must not revise that notice, nor cancel it at 0.
                continue
            if envelopes is None:
                envelopes = {id(e): envelope for envelope, e in fresh}
            self.writes.outbox.append((ProductAmountChanged.topic, wrap(
                ProductAmountChanged(
                    account_id=event.account_id, product_id=product_id, as_of=event.as_of,
                    sequence=event.sequence, state=state, amount_due_fen=owed,
                    previous_fen=quoted, account_amount_due_fen=event.amount_due_fen),
                key=event.account_id, source=self.store.source,
                occurred_at=now, correlation_id=_correlation(envelopes[id(event)]))))

    def frozen(self, product_id: str, at: datetime) -> bool:
        """Whether a freeze in force at `at` holds back a suspension of the batch's product
        (one no balance event asked for: a collections case's associated suspension)."""
        if not self.freezes:
            return False
        event, _ = self.snapshots[product_id]
        star = self.profiles[event.customer.customer_id].star(event.customer.star_level)
        return self._frozen(self.loaded[product_id], event, star, at)

    def _frozen(self, product: ProductCredit, event: BalanceChanged, star: int | None,
                as_of: datetime) -> bool:
        snapshot = product.snapshot
        return freezes.frozen(self.freezes, freezes.Covered(
            product.family, event.customer.tier, star, snapshot.vendor if snapshot else None,
            snapshot.channel if snapshot else None, event.customer.customer_id,
            event.customer.region), as_of)

    def _promised(self, event: BalanceChanged, today: date, as_of: datetime) -> bool:
        """An open promise made by the moment considered still holds (the event's own dues
        say what was paid towards it)."""
        p = self.promises.get(event.account_id)
        return p is not None and p.recorded_at <= as_of and p.defers(
            p.paid_fen((d.bill_month, d.amount_due_fen) for d in event.dues), today)

    def _history(self, product_id: str, change: Any) -> None:
        h = self.writes.history
        h.product_id.append(product_id)
        h.state_before.append(change.before)
        h.state_after.append(change.after)
        h.cause.append(change.cause)
        h.decision_id.append(change.decision_id)
        h.at.append(change.at)

    def _rules(self, family: ProductFamily,
               tier: Tier) -> tuple[RuleTable, dict[Trigger, RuleRow]]:
        """The table narrowed to one family × tier (`on_balance` looks at nothing else, and
        6–10 rows answer faster than all 90) and its rows a balance event can fire."""
        key = (family, tier)
        found = self.narrowed.get(key)
        if found is None:
            # Already validated as a whole; a part of it is not complete on its own.
            narrowed = RuleTable.model_construct(
                version=self.table.version, rows=tuple(self.table.enabled(family, tier)))
            found = self.narrowed[key] = (narrowed, rules.balance_rows(narrowed, family, tier))
        return found

    def _take(self, product: ProductCredit, customer: CustomerSnapshot, inputs: Inputs,
              intent: rules.Intent, as_of: datetime, correlation: str,
              own_due_fen: int | None = None) -> None:
        """One decision and its move, in memory; skipped if already taken or not allowed."""
        own_due = (product_amount_due(inputs.event, product.product_id)
                   if own_due_fen is None else own_due_fen)
        if not allowed_on_balance(intent.decision, own_due):
            return  # the account owes, this product does not: nothing to remind or suspend
        proposal = product.propose(intent, as_of)
        if proposal is None or proposal.decision_id in self.taken:
            return
        self.taken.add(proposal.decision_id)
        oldest = inputs.facts.oldest_due_month
        assert product.snapshot is not None  # the batch's products carry the event's
        context = NoticeContext(
            customer=customer, product=product.snapshot,
            amount_due_fen=own_due, account_amount_due_fen=(
                inputs.facts.amount_due_fen if own_due_fen is None else own_due_fen),
            as_of_date=business_date(proposal.as_of),
            deadline=proposal.intent.deadline, bill_month=month_text(oldest) if oldest else None,
            suspension_exempt=bool(inputs.profile.exemptions)
            and inputs.profile.suspension_exempt(inputs.event.as_of),
            reminder_level=reminder_level(proposal.intent.warning_level,
                                          product.warning_level))
        self._record(product, proposal.intent, proposal, context, inputs)
        self.quoted[product.product_id] = own_due
        applied = product.apply(Decision(proposal, context, inputs.rule_version),
                                self.store.now())
        w = self.writes
        if applied.work_order is not None:
            w.work_orders.append((product, applied.work_order))
        if applied.change is not None:
            self._history(product.product_id, applied.change)
        for event in applied.events:
            if isinstance(event, ProvisioningCommand):
                w.commands[product.product_id] = event
                key = product.product_id
            else:
                key = product.account_id
            w.outbox.append((event.topic, wrap(
                event, key=key, source=self.store.source, occurred_at=self.store.now(),
                correlation_id=correlation)))

    def _record(self, product: ProductCredit, intent: rules.Intent, proposal: Any,
                context: NoticeContext, inputs: Inputs) -> None:
        d = self.writes.decisions
        d.decision_id.append(proposal.decision_id)
        d.product_id.append(product.product_id)
        d.account_id.append(product.account_id)
        d.decision.append(intent.decision)
        d.rule_id.append(intent.rule_id)
        d.reason.append(intent.reason)
        d.state_before.append(proposal.before)
        d.state_after.append(proposal.after)
        d.as_of.append(proposal.as_of)
        d.context.append(encode(context))
        d.inputs.append(orjson.dumps(inputs.as_json()))
        d.warning_level.append(intent.warning_level)
        d.amount_fen.append(intent.amount_fen)
        d.rule_version.append(inputs.rule_version)
