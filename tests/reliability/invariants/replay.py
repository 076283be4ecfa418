"""The decisions that should exist, recomputed from the inputs alone: the balance events
billing published, the sweeps that ran (their `as_of`, rule version, guard hold), the
notifier's outcomes of the suspension warnings' SMS (`notifier.notices.v1`: sent, delivered,
failed, cancelled = withdrawn), the rule table of each version and the credit profiles /
exemptions. It replays credit-control's pure domain (`credit_control.credit.domain.rules`: the
same functions the service calls) product by product, in the order the inputs took effect
(credit-control's: when it applied each event and outcome, when each sweep started).

Notice outcomes: each product keeps what credit-control records of its current suspension
warning (`ladder.Notice`: `Notice.heard` per outcome of that warning, `ladder.next_notice`
when the sweep decides a new one), and the sweep's rules read it as the service's do
(`rules.on_calendar` under the notice policy: a lost warning is owed again, `~n`; the
suspension waits until the warning reached the customer a notice period earlier, or is an
exception; a warning unheard of too long is lost).

Assumptions, stated so a failure can be read: a sweep ran while no balance event of the
same accounts was being applied (a sweep takes effect chunk by chunk after it started, so
an event applied during it may or may not have been seen: the replay orders by the sweep's
start); a chain command (MAS / SMS-direct) reaches its
final state before the next input of its product (true after "wait until quiescent"); a
work-order product stays requested until its work order is done; profiles and exemptions are
taken as they are now (their history is in the audit log, not replayed).
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from common.clock import business_date, parse_bill_month
from common.contracts.billing import BalanceChanged
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.gateway import ProvisioningAction
from common.contracts.notifier import NoticeOutcome
from common.sending_hours import DEFAULT_CUSTOMER_WINDOW, SendingWindow
from credit_control.credit.domain import rules
from credit_control.credit.domain.ladder import (
    DEFAULT_POLICY,
    Ladder,
    Notice,
    NoticePolicy,
    first_sending_day,
    next_notice,
)
from credit_control.credit.domain.product_amount import (
    allowed_in_sweep,
    allowed_on_balance,
    product_amount_due,
)
from credit_control.credit.domain.product_credit import ProductCredit
from credit_control.credit.domain.profiles import CreditProfile
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable

S = CreditState
IN_FLIGHT = (S.SUSPEND_REQUESTED, S.RESTORE_REQUESTED)


@dataclass(frozen=True)
class Expected:
    decision_id: str
    product_id: str
    decision: DecisionType
    rule_id: str


@dataclass(frozen=True)
class SweepRun:
    at: datetime  # when it ran (the sweep's reservation or its confirmation)
    as_of: datetime
    rule_version: int
    held: bool  # the guard held it: no suspensions in this run
    # A catch-up's real moment (its run's start on the service's clock): its suspension
    # warnings leave then, and their notice counts from the day they can first leave
    # (ladder.first_sending_day, rules.on_calendar's `sent_on`). None: not a catch-up.
    caught_up_at: datetime | None = None


@dataclass
class Inputs:
    events: list[tuple[datetime, BalanceChanged]]  # when applied, the event
    sweeps: list[SweepRun]
    tables: dict[int, tuple[datetime | None, RuleTable]]
    profiles: dict[str, CreditProfile]
    done_work_orders: set[str]  # decision ids whose manual work order is done
    # What became of suspension warnings' SMS: when credit-control applied it, the outcome.
    outcomes: list[tuple[datetime, NoticeOutcome]] = field(default_factory=list)
    # credit-control's notice policy (CREDIT_NOTICE_REQUIRES_DELIVERY, _MAX_WARNINGS,
    # _UNHEARD_AFTER_DAYS); the defaults unless the checker is told otherwise.
    policy: NoticePolicy = DEFAULT_POLICY
    # credit-control's customer SMS sending window (CREDIT_CUSTOMER_SENDING_HOURS): a
    # suspension warning's notice counts from the day its SMS can first leave.
    sending: SendingWindow = DEFAULT_CUSTOMER_WINDOW


@dataclass
class Replay:
    inputs: Inputs
    products: dict[str, ProductCredit] = field(default_factory=dict)
    latest: dict[str, BalanceChanged] = field(default_factory=dict)  # account → newest event
    product_account: dict[str, str] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=dict)
    # product → (its current suspension warning's decision id, what became of its SMS): the
    # product row's notice columns (kept, like them, after its ladder moves on)
    notices: dict[str, tuple[str, Notice]] = field(default_factory=dict)

    def run(self) -> dict[str, Expected]:
        stimuli: list[tuple[datetime, int, int, BalanceChanged | SweepRun | NoticeOutcome]] = [
            (at, 0, e.sequence, e) for at, e in self.inputs.events]
        stimuli += [(s.at, 1, 0, s) for s in self.inputs.sweeps]
        stimuli += [(at, 2, 0, o) for at, o in self.inputs.outcomes]
        stimuli.sort(key=lambda s: (s[0], s[1], s[2]))
        for at, _, _, what in stimuli:
            if isinstance(what, BalanceChanged):
                self._event(at, what)
            elif isinstance(what, NoticeOutcome):
                self._outcome(what)
            else:
                self._sweep(what)
        return self.expected

    def _outcome(self, outcome: NoticeOutcome) -> None:
        """Recorded when it is of the product's current suspension warning (an older
        warning's, a reminder's: nothing changes)."""
        current = self.notices.get(outcome.product_id)
        if current is None or current[0] != outcome.decision_id:
            return
        self.notices[outcome.product_id] = (current[0], current[1].heard(
            outcome.status.value, business_date(outcome.at), outcome.reason,
            outcome.permanent))

    def _table_at(self, at: datetime) -> RuleTable:
        current = DEFAULT_RULES
        for _, (changed_at, table) in sorted(self.inputs.tables.items()):
            if changed_at is None or changed_at <= at:
                current = table
        return current

    def _profile(self, customer_id: str) -> CreditProfile:
        return self.inputs.profiles.get(customer_id) or CreditProfile(customer_id)

    def _event(self, at: datetime, event: BalanceChanged) -> None:
        seen = self.latest.get(event.account_id)
        if seen is not None and event.sequence <= seen.sequence:
            return  # stale: credit-control drops it too
        self.latest[event.account_id] = event
        profile = self._profile(event.customer.customer_id)
        facts = _facts(event, profile)
        table = self._table_at(at)  # the version in force when credit-control applied it
        star = profile.star(event.customer.star_level)
        exempt = profile.suspension_exempt(event.as_of)
        # A reversal's deadline: the notice from the day its SMS can first leave.
        sent_on = first_sending_day(event.as_of, self.inputs.sending)
        for snap in sorted(event.products, key=lambda p: p.product_id):
            self.product_account[snap.product_id] = event.account_id
            p = self.products.setdefault(snap.product_id, ProductCredit(
                snap.product_id, event.account_id, snap.family,
                ladder=Ladder(facts.oldest_due_month)))
            p.reconcile(table, event.customer.tier, facts.oldest_due_month, facts.owes,
                        event.as_of)
            intent = rules.on_balance(
                table, facts, rules.ProductFacts(
                    p.family, event.customer.tier, p.state, p.warning_level, star, exempt,
                    own_due_fen=product_amount_due(event, snap.product_id)),
                business_date(event.as_of), event_key=f"seq:{event.sequence}",
                sent_on=sent_on)
            if intent is not None and allowed_on_balance(
                    intent.decision, product_amount_due(event, snap.product_id)):
                self._take(p, intent, event.as_of)

    def _sweep(self, run: SweepRun) -> None:
        table = self.inputs.tables.get(run.rule_version, (None, DEFAULT_RULES))[1]
        today = business_date(run.as_of)
        # The day its SMS can first leave (after the sending window closed: the next day; a
        # catch-up's: when it really ran), as the service's sweep works it out
        # (sweeps.sending_day).
        sent_on = first_sending_day(run.as_of, self.inputs.sending, run.caught_up_at)
        deposit_left: dict[str, int] = {}  # per account, what this sweep's deductions left
        for pid in sorted(self.products):
            p = self.products[pid]
            event = self.latest.get(self.product_account[pid])
            if event is None or p.state in IN_FLIGHT:
                continue  # a sweep never acts on a product with a command in flight
            last = p.moved_at or p.changed_at
            if run.caught_up_at is None and last is not None and last > run.as_of:
                continue  # decided after the sweep's moment: left to the next sweep
            profile = self._profile(event.customer.customer_id)
            facts = _facts(event, profile)
            warning = self.notices.get(pid)
            pf = rules.ProductFacts(p.family, event.customer.tier, p.state, p.warning_level,
                                    profile.star(event.customer.star_level),
                                    profile.suspension_exempt(run.as_of), p.suspended_on,
                                    p.ladder.month, p.ladder.suspension_warned_on,
                                    p.ladder.suspension_deadline,
                                    notice=warning[1] if warning else None)
            own = product_amount_due(event, pid)
            for intent in rules.on_calendar(table, facts, pf, today, self.inputs.policy,
                                            sent_on=sent_on):
                if run.held and intent.decision is DecisionType.SUSPEND:
                    continue
                if not allowed_in_sweep(intent.decision, own):
                    continue
                if intent.decision is DecisionType.DEDUCTION and not _share(
                        deposit_left, event, own):
                    continue
                did = self._take(p, intent, run.as_of)
                if did is not None:
                    p.ladder = rules.record(pf.ladder(facts.oldest_due_month), intent, today)
                    if intent.decision is DecisionType.SUSPENSION_WARNING:
                        self._warned(p, did, pf, table, today)

    def _warned(self, p: ProductCredit, did: str, pf: rules.ProductFacts, table: RuleTable,
                today: date) -> None:
        """A new suspension warning (`did`): its SMS not heard of yet, the lost ones of this
        ladder still counted (as the sweep records it on the product)."""
        days = max(1, table.notice_days(p.family, pf.tier, today))
        self.notices[p.product_id] = (did, next_notice(
            pf.notice, pf.suspension_deadline, self.inputs.policy, today, days))

    def _take(self, p: ProductCredit, intent: rules.Intent, as_of: datetime) -> str | None:
        """The product's credit (the service's aggregate) proposes and moves: the decision's
        id, or None when it takes nothing."""
        proposal = p.propose(intent, as_of)
        if proposal is None or proposal.decision_id in self.expected:
            return None
        did = proposal.decision_id
        self.expected[did] = Expected(did, p.product_id, intent.decision, intent.rule_id)
        p.move(proposal)
        self._confirm(p, did, proposal.as_of)
        return did

    def _confirm(self, p: ProductCredit, decision_id: str, as_of: datetime) -> None:
        """The chain (or the operator) finishes what was requested."""
        if p.state not in IN_FLIGHT:
            return
        if not p.family.uses_chain and decision_id not in self.inputs.done_work_orders:
            return
        p.complete(ProvisioningAction.SUSPEND if p.state is S.SUSPEND_REQUESTED
                   else ProvisioningAction.RESTORE, as_of)


def _share(deposit_left: dict[str, int], event: BalanceChanged, own: int) -> bool:
    """A sweep's deductions of one account's products share its one deposit in product id
    order, each asking at most its own amount due; a product the deposit has nothing left
    for asks nothing, so has no deduction (rules.deduction_shares, the sweep's SQL)."""
    left = deposit_left.get(event.account_id, max(0, event.deposit_fen))
    ask = min(max(0, own), left)
    deposit_left[event.account_id] = left - ask
    return ask > 0


def _facts(event: BalanceChanged, profile: CreditProfile) -> rules.AccountFacts:
    return rules.AccountFacts(
        event.balance_fen, event.amount_due_fen, event.cause, event.closed_bill_month,
        oldest_due_month=parse_bill_month(event.dues[0].bill_month) if event.dues else None,
        credit_limit_fen=profile.limit_fen(event.customer.star_level),
        deposit_fen=event.deposit_fen)
