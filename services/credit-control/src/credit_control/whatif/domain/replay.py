"""A month replayed through the pure credit domain under one rule table (the what-if).

The inputs are what the month really was: every account's balance events (billing's ledger,
`history.AccountHistory`) and its calendar days (one sweep a business day at the scheduler's
time). The products move through the service's own aggregate (`ProductCredit`: propose,
move), the balance rules (`rules.on_balance`), the sweep's rules (`rules.on_calendar`, the
reference semantics the sweep's SQL follows: the invariant checker, tests/reliability/
invariants, holds the SQL to it) and the ladder (`rules.record`), as the checker's replay
does. Nothing is written anywhere.

Assumptions (docs/credit-control.md, "What-if replay"): the warm-up months before the month
run under the current table (both variants start the month from the same places); a chain
command or a work order completes at once; every SMS reaches the customer (no lost warning);
profiles and exemptions are taken as they are now; money moves as it did (a deduction the
draft would have decided differently is reported, not booked).

Deductions are decided as the sweep's SQL decides them (each product asks its own amount due
as far as the deposit goes, the deposit shared by the account's products the same business
day: `rules.deduction_shares`), and what billing would collect for each, and which products
that pays, is worked out (collection.py): the deduction notices are one per product paid,
not one per decision (report.py).
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from common.clock import BUSINESS_TZ, business_date, last_day_of_month
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.gateway import ProvisioningAction
from common.contracts.snapshots import Tier
from common.sending_hours import DEFAULT_CUSTOMER_WINDOW, SendingWindow

from ...credit.domain import rules
from ...credit.domain.ladder import Ladder, first_sending_day, reminder_level
from ...credit.domain.product_amount import allowed_in_sweep, allowed_on_balance
from ...credit.domain.product_credit import ProductCredit
from ...credit.domain.profiles import CreditProfile
from ...credit.domain.rule_table import RuleTable
from .collection import Taken, collect
from .history import AccountHistory, Point

S = CreditState
D = DecisionType
IN_FLIGHT = (S.SUSPEND_REQUESTED, S.RESTORE_REQUESTED)
# Products a sweep can act on without owing: a suspension's retention runs out.
_RETAINED = (S.SUSPENDED, S.PRE_CANCEL)
SWEEP_TIME = time(20, 0)  # the scheduler's default (CREDIT_SCHEDULER_TIME)


@dataclass(frozen=True)
class Decided:
    """One decision the replay made in the month."""

    product_id: str
    account_id: str
    decision: DecisionType
    rule_id: str
    day: date
    warning_level: int | None = None
    amount_fen: int | None = None  # a deduction's amount (asked)
    # A deduction: what billing would collect of each product it pays (product id, fen > 0);
    # each is a deduction notice (credit.deduction_collected), none when nothing is collected.
    collected: tuple[tuple[str, int], ...] = ()
    # A warning sent with another level's text (ladder.reminder_level), else None.
    reminder_level: int | None = None


@dataclass
class Outcome:
    decisions: list[Decided] = field(default_factory=list)
    states: dict[str, CreditState] = field(default_factory=dict)  # products at month end


@dataclass(frozen=True)
class Month:
    """The replayed month and the table before (warm-up) and during it."""

    first: date
    before: RuleTable
    during: RuleTable
    sweep_time: time = SWEEP_TIME
    # The customers' SMS sending window (CREDIT_CUSTOMER_SENDING_HOURS): a suspension warning's
    # notice counts from the day its SMS can first leave, as the service's decisions do.
    sending: SendingWindow = DEFAULT_CUSTOMER_WINDOW

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=BUSINESS_TZ)

    @property
    def last(self) -> date:
        return last_day_of_month(self.first)

    def table_at(self, at: datetime) -> RuleTable:
        return self.during if at >= self.starts else self.before


def sweep_moments(first_day: date, last_day: date, at: time) -> list[datetime]:
    days = (last_day - first_day).days + 1
    return [datetime.combine(first_day + timedelta(days=n), at, tzinfo=BUSINESS_TZ)
            for n in range(days)]


@dataclass
class _Product:
    credit: ProductCredit
    history: AccountHistory
    taken: set[str] = field(default_factory=set)


@dataclass
class Replay:
    month: Month
    histories: list[AccountHistory]
    profiles: dict[str, CreditProfile]
    outcome: Outcome = field(default_factory=Outcome)
    products: dict[str, _Product] = field(default_factory=dict)
    latest: dict[str, Point] = field(default_factory=dict)  # account → its newest point
    # account → the facts of its newest point (made once per point, read by every sweep)
    facts: dict[str, rules.AccountFacts] = field(default_factory=dict)
    # account → what the replay's deductions took since its newest point (collection.py)
    taken: dict[str, Taken] = field(default_factory=dict)
    # account → (business day, product → what its deduction asked that day): the deposit
    # is one for the account's products, shared as the sweep shares it
    asked: dict[str, tuple[date, dict[str, int]]] = field(default_factory=dict)

    def run(self) -> Outcome:
        # A point and a sweep at the same moment: the point first (a payment billing took
        # by then), except billing's answer to a deduction, which the sweep of that moment
        # decided (it is dated at the decision's as_of): after the sweep that caused it.
        stimuli: list[tuple[datetime, int, str, Point | None]] = [
            (p.at, 2 if p.cause is BalanceCause.DEDUCTION else 0, h.account_id, p)
            for h in self.histories for p in h.points
            if business_date(p.at) <= self.month.last]
        if stimuli:
            first_day = business_date(min(s[0] for s in stimuli))
            stimuli += [(at, 1, "", None) for at in sweep_moments(
                first_day, self.month.last, self.month.sweep_time)]
        stimuli.sort(key=lambda s: (s[0], s[1], s[2]))
        by_id = {h.account_id: h for h in self.histories}
        for at, _, account_id, point in stimuli:
            if point is not None:
                self._event(by_id[account_id], point)
            else:
                self._sweep(at)
        self.outcome.states = {pid: p.credit.state for pid, p in sorted(self.products.items())}
        return self.outcome

    def _profile(self, h: AccountHistory) -> CreditProfile:
        return self.profiles.get(h.customer_id) or CreditProfile(h.customer_id)

    def _facts(self, h: AccountHistory, point: Point) -> rules.AccountFacts:
        return rules.AccountFacts(
            point.balance_fen, point.amount_due_fen, point.cause, point.closed_bill_month,
            oldest_due_month=point.oldest_due_month,
            credit_limit_fen=self._profile(h).limit_fen(h.star_level),
            deposit_fen=point.deposit_fen)

    def _tier(self, h: AccountHistory) -> Tier:
        return self._profile(h).decision_tier(h.tier)

    def _event(self, h: AccountHistory, point: Point) -> None:
        self.latest[h.account_id] = point
        # The point says what the account's money really was: the replay's own deductions
        # since the last one are not booked on top of it ("money moves as it did").
        self.taken.pop(h.account_id, None)
        profile, facts, tier = self._profile(h), self._facts(h, point), self._tier(h)
        self.facts[h.account_id] = facts
        table = self.month.table_at(point.at)
        star = profile.star(h.star_level)
        exempt = profile.suspension_exempt(point.at)
        # A reversal's deadline counts the notice from the day its SMS can first leave.
        sent_on = (first_sending_day(point.at, self.month.sending)
                   if point.cause is BalanceCause.REVERSAL else None)
        for pid, family in h.products:
            p = self.products.get(pid)
            if p is None:
                p = self.products[pid] = _Product(ProductCredit(
                    pid, h.account_id, family, ladder=Ladder(facts.oldest_due_month)), h)
            p.credit.reconcile(table, tier, facts.oldest_due_month, facts.owes, point.at)
            intent = rules.on_balance(
                table, facts, rules.ProductFacts(family, tier, p.credit.state,
                                                 p.credit.warning_level, star, exempt,
                                                 own_due_fen=point.product_due(pid)),
                business_date(point.at), event_key=f"at:{point.at.isoformat()}",
                sent_on=sent_on)
            if intent is not None and allowed_on_balance(intent.decision,
                                                         point.product_due(pid)):
                self._take(p, intent, point.at)

    def _sweep(self, at: datetime) -> None:
        table = self.month.table_at(at)
        today = business_date(at)
        sent_on = first_sending_day(at, self.month.sending)
        for pid in sorted(self.products):
            p = self.products[pid]
            point = self.latest.get(p.history.account_id)
            c = p.credit
            if point is None or c.state in IN_FLIGHT:
                continue
            facts = self.facts[p.history.account_id]
            if not facts.owes and c.state not in _RETAINED:
                continue  # nothing a calendar row could decide (a fast path, same answer)
            profile = self._profile(p.history)
            pf = rules.ProductFacts(c.family, self._tier(p.history), c.state, c.warning_level,
                                    profile.star(p.history.star_level),
                                    profile.suspension_exempt(at), c.suspended_on,
                                    c.ladder.month, c.ladder.suspension_warned_on,
                                    c.ladder.suspension_deadline,
                                    own_due_fen=point.product_due(pid))
            for intent in rules.on_calendar(table, self._deposit_left(facts, c, today), pf,
                                            today, sent_on=sent_on):
                if not allowed_in_sweep(intent.decision, point.product_due(pid)):
                    continue
                if self._take(p, intent, at):
                    c.ladder = rules.record(pf.ladder(facts.oldest_due_month), intent, today)

    def _deposit_left(self, facts: rules.AccountFacts, c: ProductCredit,
                      today: date) -> rules.AccountFacts:
        """The facts a product's deduction asks from: the deposit as billing left it after
        the replay's deductions of earlier days, less what the account's other products
        asked today (the sweep's SQL, `sweep_sql._deduction_shares`)."""
        day, asks = self.asked.get(c.account_id, (today, {}))
        others = sum(fen for pid, fen in asks.items() if pid != c.product_id)
        taken = self.taken.get(c.account_id)
        less = (others if day == today else 0) + (taken.before(today) if taken else 0)
        if not less:
            return facts
        return replace(facts, deposit_fen=max(0, facts.deposit_fen - less))

    def _collect(self, c: ProductCredit, intent: rules.Intent, day: date
                 ) -> tuple[tuple[str, int], ...]:
        """A deduction decided: its ask shares the day's deposit, and billing's answer is
        what it would collect of each product (collection.py)."""
        ask = intent.amount_fen or 0
        asked_day, asks = self.asked.get(c.account_id, (day, {}))
        if asked_day != day:
            asks = {}
        asks[c.product_id] = asks.get(c.product_id, 0) + ask
        self.asked[c.account_id] = (day, asks)
        point = self.latest[c.account_id]
        return collect(ask, point.deposit_fen, point.owing(),
                       self.taken.setdefault(c.account_id, Taken()), day)

    def _take(self, p: _Product, intent: rules.Intent, as_of: datetime) -> bool:
        c = p.credit
        proposal = c.propose(intent, as_of)
        if proposal is None or proposal.decision_id in p.taken:
            return False
        p.taken.add(proposal.decision_id)
        told = reminder_level(intent.warning_level, c.warning_level)  # before the move
        c.move(proposal)
        collected = (self._collect(c, intent, business_date(proposal.as_of))
                     if intent.decision is D.DEDUCTION else ())
        if c.state in IN_FLIGHT:  # the chain or the operator finishes at once (assumed)
            c.complete(ProvisioningAction.SUSPEND if c.state is S.SUSPEND_REQUESTED
                       else ProvisioningAction.RESTORE, proposal.as_of)
        day = business_date(proposal.as_of)
        if self.month.first <= day <= self.month.last:
            self.outcome.decisions.append(Decided(
                c.product_id, c.account_id, intent.decision, intent.rule_id, day,
                intent.warning_level, intent.amount_fen, collected, told))
        return True


def replay(histories: list[AccountHistory], profiles: dict[str, CreditProfile],
           month: Month) -> Outcome:
    return Replay(month, histories, profiles).run()
