"""The arrears ladder under changing facts (issue 23 points 1–2, issue 15 point 4): the pure
domain (`rules.on_balance`, `rules.on_calendar`, `ladder.reconcile`) driven day by day the way
credit-control drives it — balance events as billing publishes them, then the day's sweep —
over charges, bill runs, payments (oldest bill month first), reversals, tier changes and
exemptions.

Table-driven: each numbered case of the issue, with its exact decisions and dates.
Property-based: whatever the sequence, every suspension is preceded in its arrears cycle (and
oldest owing month) by a suspension warning that named a date no later than the suspension,
decided at least the notice period earlier."""

from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain import ladder as ladders
from credit_control.credit.domain import rules
from credit_control.credit.domain.ladder import Ladder, reconcile
from credit_control.credit.domain.model import Action, action_for, can, next_state
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleTable, add_months

S, D, F, T = CreditState, DecisionType, ProductFamily, Tier
C = BalanceCause


@dataclass(frozen=True)
class Decided:
    day: date
    decision: DecisionType
    cycle: int
    month: date | None  # the oldest owing month when decided
    tier: Tier
    deadline: date | None = None
    level: int | None = None
    reason: str = ""


@dataclass
class Sim:
    """One product of one account, as credit-control sees it (chain commands confirm at once,
    as the invariant checker's replay assumes once quiet)."""

    family: F = F.ADC
    tier: T = T.MID
    table: RuleTable = DEFAULT_RULES
    exempt_until: date | None = None  # an emergency no-suspension, active before this day
    unbilled: dict[date, int] = field(default_factory=dict)
    dues: dict[date, int] = field(default_factory=dict)  # closed bill months still owing
    paid: list[dict[date, int]] = field(default_factory=list)  # allocations, for reversals
    state: CreditState = S.NORMAL
    ladder: Ladder = field(default_factory=Ladder)
    cycle: int = 0
    suspended_on: date | None = None
    taken: set[str] = field(default_factory=set)
    log: list[Decided] = field(default_factory=list)

    # --- billing -----------------------------------------------------------------------------
    def charge(self, day: date, fen: int) -> None:
        month = day.replace(day=1)
        self.unbilled[month] = self.unbilled.get(month, 0) + fen
        self._event(day, C.CHARGE)

    def bill_run(self, day: date) -> None:
        """Closes every month before `day`'s (the monthly 出账)."""
        closed = [m for m in self.unbilled if m < day.replace(day=1)]
        for m in closed:
            self.dues[m] = self.dues.get(m, 0) + self.unbilled.pop(m)
        last = max(closed) if closed else add_months(day.replace(day=1), -1)
        self._event(day, C.BILL_RUN, f"{last:%Y-%m}")

    def pay(self, day: date, fen: int) -> None:
        """Oldest bill month first, as billing allocates."""
        allocation: dict[date, int] = {}
        for m in sorted(self.dues):
            take = min(fen, self.dues[m])
            if take:
                allocation[m], fen = take, fen - take
                self.dues[m] -= take
        self.dues = {m: v for m, v in self.dues.items() if v}
        self.paid.append(allocation)
        self._event(day, C.PAYMENT)

    def reverse(self, day: date) -> None:
        """The newest payment bounced (退票/冲正): its allocation is owed again."""
        if not self.paid:
            return
        for m, v in self.paid.pop().items():
            self.dues[m] = self.dues.get(m, 0) + v
        self._event(day, C.REVERSAL)

    def set_tier(self, day: date, tier: Tier) -> None:
        self.tier = tier
        self._event(day, C.MASTER_DATA)

    # --- credit-control ------------------------------------------------------------------------
    def facts(self, cause: BalanceCause | None = None,
              closed: str | None = None) -> rules.AccountFacts:
        due = sum(self.dues.values())
        return rules.AccountFacts(-(due + sum(self.unbilled.values())), due, cause, closed,
                                  oldest_due_month=min(self.dues) if self.dues else None)

    def exempt(self, day: date) -> bool:
        return self.exempt_until is not None and day < self.exempt_until

    def product(self, day: date) -> rules.ProductFacts:
        lad = self.ladder
        return rules.ProductFacts(self.family, self.tier, self.state, lad.warning_level,
                                  exempt=self.exempt(day), suspended_on=self.suspended_on,
                                  ladder_month=lad.month,
                                  suspension_warned_on=lad.suspension_warned_on,
                                  suspension_deadline=lad.suspension_deadline)

    def _event(self, day: date, cause: BalanceCause, closed: str | None = None) -> None:
        facts = self.facts(cause, closed)
        now = reconcile(self.state, self.ladder, self.table, self.family, self.tier,
                        facts.oldest_due_month, facts.owes)
        self.state, self.ladder = now.state, now.ladder
        intent = rules.on_balance(self.table, facts, self.product(day), day,
                                  event_key=f"{day}:{len(self.log)}:{cause}")
        if intent is not None:
            self._take(day, intent, facts.oldest_due_month)

    def sweep(self, day: date) -> None:
        facts = self.facts()
        product = self.product(day)
        for intent in rules.on_calendar(self.table, facts, product, day):
            if self._take(day, intent, facts.oldest_due_month):
                self.ladder = rules.record(product.ladder(facts.oldest_due_month), intent, day)

    def _take(self, day: date, intent: rules.Intent, month: date | None) -> bool:
        action = action_for(intent.decision, self.family)
        key = rules.decision_id("P", intent.period, intent.decision, self.cycle)
        if not can(self.state, action) or key in self.taken:
            return False
        self.taken.add(key)
        self.log.append(Decided(day, intent.decision, self.cycle, month, self.tier,
                                intent.deadline, intent.warning_level, intent.reason))
        if action is Action.DEDUCT:
            return True
        self.state = next_state(self.state, action)
        if self.state is S.SUSPEND_REQUESTED:  # the chain confirms at once
            self.state = next_state(self.state, Action.CONFIRM_SUSPEND)
        if self.state is S.RESTORE_REQUESTED:
            self.state = next_state(self.state, Action.CONFIRM_RESTORE)
        if self.state is S.SUSPENDED:
            self.suspended_on = day
        if self.state is S.NORMAL:  # a new arrears cycle
            self.cycle += 1
            self.ladder = Ladder(self.ladder.month)
        if intent.warning_level is not None:
            self.ladder = self.ladder.warned(intent.warning_level)
        return True

    def timeline(self) -> list[tuple[date, DecisionType, int | None, date | None]]:
        return [(d.day, d.decision, d.level, d.deadline) for d in self.log]


def run(sim: Sim, start: date, end: date,
        actions: dict[date, list[tuple[str, object]]]) -> Sim:
    """Each day: the day's billing events (in order), then the day's sweep."""
    day = start
    while day <= end:
        for verb, arg in actions.get(day, []):
            if verb == "exempt_until":
                sim.exempt_until = arg  # type: ignore[assignment]
            elif arg is None:
                getattr(sim, verb)(day)
            else:
                getattr(sim, verb)(day, arg)
        sim.sweep(day)
        day += timedelta(days=1)
    return sim


def notices_before_suspensions(sim: Sim) -> list[str]:
    """The invariant: each suspension has a suspension warning of its cycle and month that
    named a date no later than the suspension, decided at least the notice period earlier."""
    problems = []
    for s in (d for d in sim.log if d.decision is D.SUSPEND):
        warnings = [w for w in sim.log if w.decision is D.SUSPENSION_WARNING
                    and w.cycle == s.cycle and w.month == s.month and w.day <= s.day]
        ok = [w for w in warnings if w.deadline is not None and w.deadline <= s.day
              and (s.day - w.day).days >= sim.table.notice_days(sim.family, w.tier, w.day)]
        if not ok:
            problems.append(f"suspension on {s.day} (cycle {s.cycle}, month {s.month}) "
                            f"without notice: {warnings}")
    return problems


def d(month: int, day: int, year: int = 2023) -> date:
    return date(year, month, day)


W, SW, SU, RS, RV, BN = (D.WARNING, D.SUSPENSION_WARNING, D.SUSPEND, D.RESTORE,
                         D.PAYMENT_REVERSED, D.BILL_NOTICE)


# --- issue 23, point 1: the ladder belongs to the oldest owing month ---------------------------

def test_mid_tier_paying_the_oldest_month_restarts_the_ladder() -> None:
    """Mid tier, ADC: March 100 yuan, April 200 yuan, bill runs 04-01 and 05-01. The 05-25
    suspension warning names 05-31; paying March on 05-27 restarts the ladder for April:
    warning 1 at the day's sweep (still May, its month), warning 2 on 06-10, a suspension warning on
    06-25 naming 06-30, the suspension on 06-30 — never a suspension without a new warning."""
    sim = run(Sim(tier=T.MID), d(3, 1), d(7, 5), {
        d(3, 5): [("charge", 10_000)], d(4, 1): [("bill_run", None)],
        d(4, 5): [("charge", 20_000)], d(5, 1): [("bill_run", None)],
        d(5, 27): [("pay", 10_000)]})
    assert sim.timeline() == [
        (d(4, 1), BN, None, d(4, 25)),
        (d(4, 10), W, 1, d(5, 31)),
        (d(5, 1), BN, None, d(5, 25)),
        (d(5, 10), W, 2, d(5, 31)),
        (d(5, 25), SW, None, d(5, 31)),
        (d(5, 27), W, 1, d(6, 30)),  # the ladder of April: its first warning is still due
        (d(6, 10), W, 2, d(6, 30)),
        (d(6, 25), SW, None, d(6, 30)),
        (d(6, 30), SU, None, None),
    ]
    assert sim.state is S.SUSPENDED and notices_before_suspensions(sim) == []


def test_paying_the_oldest_month_after_the_second_warning_gives_the_new_month_its_warnings(
) -> None:
    """High tier: January and February owing; the 2nd warning for January on 03-10; January
    paid on 03-12. February's ladder: its 1st warning (due in March) at once, the 2nd on
    04-10, the 3rd on 05-10, the suspension warning on 05-25 and the suspension on 05-31."""
    sim = run(Sim(tier=T.HIGH), d(1, 1, 2024), d(6, 5, 2024), {
        d(1, 5, 2024): [("charge", 10_000)], d(2, 1, 2024): [("bill_run", None)],
        d(2, 5, 2024): [("charge", 10_000)], d(3, 1, 2024): [("bill_run", None)],
        d(3, 12, 2024): [("pay", 10_000)]})
    after = [(t, dec, lv) for t, dec, lv, _ in sim.timeline() if t >= d(3, 12, 2024)]
    assert after == [(d(3, 12, 2024), W, 1), (d(4, 10, 2024), W, 2), (d(5, 10, 2024), W, 3),
                     (d(5, 25, 2024), SW, None), (d(5, 31, 2024), SU, None)]
    assert notices_before_suspensions(sim) == []


# --- issue 23, point 2: changes that re-open arrears give notice --------------------------------

def test_downgrade_after_the_low_tiers_suspension_day_warns_then_suspends_late() -> None:
    """High → low on 03-05, after low's suspension day (02-29): a suspension warning that
    day naming 03-11 (the seed's span in March: 25th → 31st, 6 days), the suspension on 03-11,
    recorded as late."""
    sim = run(Sim(tier=T.HIGH), d(1, 1, 2024), d(3, 20, 2024), {
        d(1, 5, 2024): [("charge", 10_000)], d(2, 1, 2024): [("bill_run", None)],
        d(3, 5, 2024): [("set_tier", T.LOW)]})
    assert sim.timeline() == [
        (d(2, 1, 2024), BN, None, d(2, 25, 2024)),
        (d(2, 10, 2024), W, 1, d(4, 30, 2024)),
        (d(3, 5, 2024), SW, None, d(3, 11, 2024)),
        (d(3, 11, 2024), SU, None, None),
    ]
    assert "late: suspension warning of 2024-03-05 named 2024-03-11" in sim.log[-1].reason
    assert notices_before_suspensions(sim) == []


def test_upgrade_low_to_high_gives_the_high_tiers_warnings_and_its_own_suspension_warning(
) -> None:
    """Low tier, November owing: warning 12-10, suspension warning 12-25 naming 12-31.
    Upgraded to high on 12-28: that warning no longer announces the suspension (now
    2024-02-29), so warnings 2 and 3 and a suspension warning naming 02-29 come first."""
    sim = run(Sim(tier=T.LOW), d(11, 1), d(3, 5, 2024), {
        d(11, 5): [("charge", 10_000)], d(12, 1): [("bill_run", None)],
        d(12, 28): [("set_tier", T.HIGH)]})
    assert sim.timeline() == [
        (d(12, 1), BN, None, d(12, 25)),
        (d(12, 10), W, 1, d(12, 31)),
        (d(12, 25), SW, None, d(12, 31)),
        (d(1, 10, 2024), W, 2, d(2, 29, 2024)),
        (d(2, 10, 2024), W, 3, d(2, 29, 2024)),
        (d(2, 25, 2024), SW, None, d(2, 29, 2024)),
        (d(2, 29, 2024), SU, None, None),
    ]
    assert notices_before_suspensions(sim) == []


def test_a_reversal_after_restore_gives_its_own_notice_then_a_suspension_warning() -> None:
    """Low tier, January owing: suspended 02-28, paid and restored 03-01, the payment reversed
    03-02: PAYMENT_REVERSED (pay by 03-08), the same day's sweep a suspension warning naming
    03-08 (today + March's 6 days), the suspension on 03-08 — not at the next sweep."""
    sim = run(Sim(tier=T.LOW), d(1, 1), d(3, 15), {
        d(1, 5): [("charge", 10_000)], d(2, 1): [("bill_run", None)],
        d(3, 1): [("pay", 10_000)], d(3, 2): [("reverse", None)]})
    assert sim.timeline()[3:] == [
        (d(2, 28), SU, None, None),
        (d(3, 1), RS, None, None),
        (d(3, 2), RV, None, d(3, 8)),
        (d(3, 2), SW, None, d(3, 8)),
        (d(3, 8), SU, None, None),
    ]
    assert notices_before_suspensions(sim) == []


def test_upgrade_then_downgrade_back_gives_a_new_suspension_warning() -> None:
    """Low → high on 12-28 drops the 12-25 warning; back to low on 01-03: a new suspension
    warning (its own id: the deadline is part of it) naming 01-09, suspended on 01-09."""
    sim = run(Sim(tier=T.LOW), d(11, 1), d(1, 20, 2024), {
        d(11, 5): [("charge", 10_000)], d(12, 1): [("bill_run", None)],
        d(12, 28): [("set_tier", T.HIGH)], d(1, 3, 2024): [("set_tier", T.LOW)]})
    assert sim.timeline()[-2:] == [(d(1, 3, 2024), SW, None, d(1, 9, 2024)),
                                   (d(1, 9, 2024), SU, None, None)]
    assert notices_before_suspensions(sim) == []


def test_an_emergency_no_suspension_that_ends_gives_notice_first() -> None:
    """Low tier, exempt until 03-03: the warning still goes out, no suspension warning (no
    threat to an exempt customer) and no suspension; when it ends, a suspension warning
    naming 03-09 and the suspension on 03-09."""
    sim = run(Sim(tier=T.LOW, exempt_until=d(3, 3)), d(1, 1), d(3, 15), {
        d(1, 5): [("charge", 10_000)], d(2, 1): [("bill_run", None)]})
    assert sim.timeline() == [
        (d(2, 1), BN, None, d(2, 25)),
        (d(2, 10), W, 1, d(2, 28)),
        (d(3, 3), SW, None, d(3, 9)),
        (d(3, 9), SU, None, None),
    ]
    assert notices_before_suspensions(sim) == []


def test_a_product_billed_late_is_warned_then_suspended_after_the_notice_period() -> None:
    """The bill run (and so the arrears) arrive on 03-03, after low's suspension day."""
    sim = run(Sim(tier=T.LOW), d(1, 1), d(3, 15), {
        d(1, 5): [("charge", 10_000)], d(3, 3): [("bill_run", None)]})
    assert [(t, dec) for t, dec, _, _ in sim.timeline()] == [
        (d(3, 3), BN), (d(3, 3), SW), (d(3, 9), SU)]


@pytest.mark.parametrize(("warned_on", "notice"), [
    (d(2, 25), 3), (d(2, 25, 2024), 4), (d(4, 25), 5), (d(5, 25), 6), (d(6, 2), 5)])
def test_the_default_notice_period_is_the_seeds_span_of_that_month(warned_on: date,
                                                                    notice: int) -> None:
    assert DEFAULT_RULES.notice_days(F.ADC, T.LOW, warned_on) == notice
    assert DEFAULT_RULES.notice_days(F.MAS, T.HIGH, warned_on) == notice


def test_a_fixed_notice_period_from_the_rule_table() -> None:
    rows = tuple(r.model_copy(update={"notice_days": 10})
                 if r.rule_id == "adc-suspend-low" else r for r in DEFAULT_RULES.rows)
    table = RuleTable(version=2, rows=rows)
    assert table.notice_days(F.ADC, T.LOW, d(3, 5)) == 10
    # An on-time warning names the later of the suspension day and today + the period.
    assert ladders.suspension_deadline(table, F.ADC, T.LOW, d(2, 1), d(3, 25)) == d(4, 4)
    sim = run(Sim(tier=T.LOW, table=table), d(1, 1), d(3, 20), {
        d(1, 5): [("charge", 10_000)], d(2, 1): [("bill_run", None)]})
    assert [(t, dec, dl) for t, dec, _, dl in sim.timeline()][-2:] == [
        (d(2, 25), SW, d(3, 7)), (d(3, 7), SU, None)]


def test_the_rule_table_refuses_notice_days_off_a_suspension_row_and_a_missing_warning(
) -> None:
    with pytest.raises(ValueError, match="notice_days is set only"):
        next(r for r in DEFAULT_RULES.rows if r.rule_id == "adc-warning-1-low").model_validate(
            {**next(r for r in DEFAULT_RULES.rows
                    if r.rule_id == "adc-warning-1-low").model_dump(), "notice_days": 3})
    rows = tuple(r.model_copy(update={"enabled": False})
                 if r.rule_id == "mas-suspension-warning-mid" else r for r in DEFAULT_RULES.rows)
    with pytest.raises(ValueError, match="suspension warning row"):
        RuleTable(version=2, rows=rows)


# --- property: no suspension without notice ------------------------------------------------------

START = d(1, 1)
DAYS = 240
VERBS = st.one_of(
    st.tuples(st.just("charge"), st.integers(1, 50_000)),
    st.tuples(st.just("bill_run"), st.none()),
    st.tuples(st.just("pay"), st.integers(1, 60_000)),
    st.tuples(st.just("reverse"), st.none()),
    st.tuples(st.just("set_tier"), st.sampled_from(list(T))),
    st.tuples(st.just("exempt_until"), st.integers(0, DAYS).map(
        lambda n: START + timedelta(days=n))),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(list(F)), tier=st.sampled_from(list(T)),
       steps=st.lists(st.tuples(st.integers(0, DAYS), VERBS), max_size=25),
       skipped=st.sets(st.integers(0, DAYS), max_size=DAYS // 2))
def test_every_suspension_is_preceded_by_a_suspension_warning_with_notice(
    family: F, tier: T, steps: list[tuple[int, tuple[str, object]]], skipped: set[int]
) -> None:
    """Any charges, bill runs, payments, reversals, tier changes and exemptions, with sweeps
    on any subset of days (late and catch-up sweeps included): no suspension without a
    suspension warning of its cycle and month, naming a date no later than the suspension,
    at least the notice period earlier; and no suspension warning to an exempt product."""
    sim = Sim(family=family, tier=tier)
    actions: dict[date, list[tuple[str, object]]] = {}
    for offset, verb in sorted(steps, key=lambda s: s[0]):
        actions.setdefault(START + timedelta(days=offset), []).append(verb)
    day = START
    for n in range(DAYS + 100):
        for verb, arg in actions.get(day, []):
            if verb == "exempt_until":
                sim.exempt_until = arg  # type: ignore[assignment]
            elif arg is None:
                getattr(sim, verb)(day)
            else:
                getattr(sim, verb)(day, arg)
        if n not in skipped:
            sim.sweep(day)
            assert not any(x.decision is SW and x.day == day for x in sim.log) or not sim.exempt(
                day)
        day += timedelta(days=1)
    assert notices_before_suspensions(sim) == []
