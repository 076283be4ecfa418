"""credit_control.credit.domain.rules over the default rule table: every seed row × tier × family,
month ends, the 25th on any weekday, payments racing sweeps, exemptions, retention."""

import hashlib
import uuid
from datetime import date, timedelta

import pytest

from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleRow, RuleTable, Trigger
from credit_control.credit.domain.rules import (
    AccountFacts,
    ProductFacts,
    decision_id,
    deduction_shares,
    on_balance,
    on_calendar,
    sweep_plan,
)

S, D, F, T = CreditState, DecisionType, ProductFamily, Tier
OCT = date(2026, 10, 1)
OWING = AccountFacts(-12345, 12345, oldest_due_month=OCT, deposit_fen=50_000)


def product(family: F = F.ADC, tier: T = T.LOW, state: S = S.WARNED, **kw: object) -> ProductFacts:
    return ProductFacts(family, tier, state, **kw)  # type: ignore[arg-type]


def decisions(family: F, tier: T, today: date, state: S = S.WARNED,
              level: int = 0) -> list[tuple[DecisionType, int | None]]:
    got = on_calendar(DEFAULT_RULES, OWING, product(family, tier, state, warning_level=level),
                      today)
    return [(i.decision, i.warning_level) for i in got]


def timeline(family: F, tier: T) -> list[tuple[date, DecisionType, int | None]]:
    """Walk every day from the bill run to suspension, applying each decision's state."""
    state, level, seen, periods = S.WARNED, 0, [], set()
    warned_on: date | None = None
    deadline: date | None = None
    day = date(2026, 11, 1)
    while day < date(2027, 3, 1) and state is not S.SUSPENDED:
        for intent in on_calendar(DEFAULT_RULES, OWING, product(
                family, tier, state, warning_level=level, suspension_warned_on=warned_on,
                suspension_deadline=deadline), day):
            if intent.period in periods:
                continue  # the decision id already exists: a re-run decides nothing
            periods.add(intent.period)
            seen.append((day, intent.decision, intent.warning_level))
            if intent.decision is D.WARNING:
                level = intent.warning_level or 0
            elif intent.decision is D.SUSPENSION_WARNING:
                state, warned_on, deadline = S.SUSPENSION_WARNED, day, intent.deadline
            elif intent.decision is D.SUSPEND:
                state = S.SUSPENDED
            break
        day += timedelta(days=1)
    return seen


W, SW, SU, DE = D.WARNING, D.SUSPENSION_WARNING, D.SUSPEND, D.DEDUCTION


@pytest.mark.parametrize("family", [F.MAS, F.SMS_DIRECT, F.WORK_ORDER])
@pytest.mark.parametrize(("tier", "expected"), [
    (T.LOW, [(date(2026, 11, 10), W, 1), (date(2026, 11, 25), SW, None),
             (date(2026, 11, 30), SU, None)]),
    (T.MID, [(date(2026, 11, 10), W, 1), (date(2026, 12, 25), SW, None),
             (date(2026, 12, 31), SU, None)]),
    (T.HIGH, [(date(2026, 11, 10), W, 1), (date(2027, 1, 25), SW, None),
              (date(2027, 1, 31), SU, None)]),
])
def test_chain_and_manual_timelines(family: F, tier: T, expected: list[object]) -> None:
    assert timeline(family, tier) == expected


@pytest.mark.parametrize(("tier", "expected"), [
    (T.LOW, [(date(2026, 11, 10), W, 1), (date(2026, 11, 25), SW, None),
             (date(2026, 11, 30), SU, None)]),
    (T.MID, [(date(2026, 11, 10), W, 1), (date(2026, 12, 10), W, 2), (date(2026, 12, 15), DE, None),
             (date(2026, 12, 25), SW, None), (date(2026, 12, 31), SU, None)]),
    (T.HIGH, [(date(2026, 11, 10), W, 1), (date(2026, 12, 10), W, 2),
              (date(2026, 12, 15), DE, None), (date(2027, 1, 10), W, 3),
              (date(2027, 1, 15), DE, None), (date(2027, 1, 25), SW, None),
              (date(2027, 1, 31), SU, None)]),
])
def test_adc_timelines_the_twelve_seed_rules(tier: T, expected: list[object]) -> None:
    assert timeline(F.ADC, tier) == expected


@pytest.mark.parametrize(("deposit", "asked"), [
    (50_000, 12345),  # the deposit covers the amount due: all of it
    (5_000, 5_000),  # it covers part: what it holds
    (0, None),  # nothing to take: no deduction at all (and no SMS announcing one)
])
def test_a_deduction_asks_for_what_the_deposit_can_cover(deposit: int, asked: int | None) -> None:
    facts = AccountFacts(-12345, 12345, oldest_due_month=OCT, deposit_fen=deposit)
    due = [i for i in on_calendar(DEFAULT_RULES, facts, product(tier=T.MID), date(2026, 12, 15))
           if i.decision is D.DEDUCTION]
    assert [i.amount_fen for i in due] == ([] if asked is None else [asked])


def test_a_products_deduction_asks_at_most_its_own_amount_due() -> None:
    """The account owes 123.45 of which this product 20.00: its deduction never claims more."""
    facts = AccountFacts(-12345, 12345, oldest_due_month=OCT, deposit_fen=50_000)
    mine = product(tier=T.MID, own_due_fen=2_000)
    due = [i for i in on_calendar(DEFAULT_RULES, facts, mine, date(2026, 12, 15))
           if i.decision is D.DEDUCTION]
    assert [i.amount_fen for i in due] == [2_000]


@pytest.mark.parametrize(("deposit", "own", "shares"), [
    # one deposit of 20.00 and two products owing 100.00 and 50.00: 20.00 once, not twice
    (2_000, {"P2": 5_000, "P1": 10_000}, {"P1": 2_000}),
    (12_000, {"P2": 5_000, "P1": 10_000}, {"P1": 10_000, "P2": 2_000}),
    (90_000, {"P2": 5_000, "P1": 10_000}, {"P1": 10_000, "P2": 5_000}),
    (2_000, {"P1": 0, "P2": 5_000}, {"P2": 2_000}),
    (0, {"P1": 10_000}, {}),
])
def test_an_accounts_products_share_one_deposit(deposit: int, own: dict[str, int],
                                                shares: dict[str, int]) -> None:
    assert deduction_shares(deposit, own) == shares
    assert sum(shares.values()) <= deposit


def test_default_table_has_12_adc_and_9_chain_seed_rules_per_family() -> None:
    def seed_rows(family: F) -> list[RuleRow]:
        return [r for r in DEFAULT_RULES.rows if r.family is family and r.enabled
                and r.trigger is not Trigger.RETENTION]
    adc = {(r.decision, r.warning_level, r.arrears_month, r.tier) for r in seed_rows(F.ADC)}
    # bill notice ×3, warning 1 ×3, suspension warning ×3, suspend ×3, restore ×3,
    # 2nd warning mid+high, 3rd warning high, deduction m2 mid+high, deduction m3 high
    assert len(adc) == 15 + 2 + 1 + 2 + 1
    for family in (F.MAS, F.SMS_DIRECT):
        assert len(seed_rows(family)) == 15


@pytest.mark.parametrize(("month_end", "not_yet"), [
    (date(2027, 2, 28), date(2027, 2, 27)), (date(2028, 2, 29), date(2028, 2, 28)),
    (date(2026, 4, 30), date(2026, 4, 29)), (date(2026, 12, 31), date(2026, 12, 30)),
])
@pytest.mark.parametrize("family", list(F))
def test_suspension_on_the_last_day_of_every_month_length(
    month_end: date, not_yet: date, family: F
) -> None:
    facts = AccountFacts(-1, 1, oldest_due_month=(month_end.replace(day=1) - timedelta(days=1))
                         .replace(day=1))
    p = product(family, T.LOW, S.SUSPENSION_WARNED, suspension_warned_on=month_end.replace(day=25),
                suspension_deadline=month_end)
    assert [i.decision for i in on_calendar(DEFAULT_RULES, facts, p, month_end)] == [SU]
    assert on_calendar(DEFAULT_RULES, facts, p, not_yet) == []


@pytest.mark.parametrize("month_number", range(1, 13))
def test_suspension_warning_on_the_25th_whatever_the_weekday(month_number: int) -> None:
    month = date(2026, month_number, 1)
    facts = AccountFacts(-1, 1, oldest_due_month=(month - timedelta(days=1)).replace(day=1))
    day = month.replace(day=25)
    got = on_calendar(DEFAULT_RULES, facts, product(level := F.ADC, T.LOW, S.WARNED,
                                                     warning_level=1), day)
    assert level is F.ADC
    assert [(i.decision, i.deadline) for i in got] == [
        (SW, (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))]


def test_the_25th_falls_on_every_weekday_in_the_tested_months() -> None:
    assert {date(2026, m, 25).weekday() for m in range(1, 13)} == set(range(7))


def test_a_late_sweep_warns_first_then_suspends_after_the_notice_period() -> None:
    """No suspension without notice: the first sweep after the day decides the suspension
    warning (deadline today + the seed's span in December, 25th → 31st = 6 days), no stale
    warning, and the suspension comes on that deadline, recorded as late."""
    p = product(F.ADC, T.LOW, S.WARNED, warning_level=1)
    got = on_calendar(DEFAULT_RULES, OWING, p, date(2026, 12, 2))
    assert [(i.decision, i.deadline) for i in got] == [(SW, date(2026, 12, 8))]
    warned = product(F.ADC, T.LOW, S.SUSPENSION_WARNED, warning_level=1,
                     suspension_warned_on=date(2026, 12, 2), suspension_deadline=date(2026, 12, 8))
    assert on_calendar(DEFAULT_RULES, OWING, warned, date(2026, 12, 7)) == []
    [suspend] = on_calendar(DEFAULT_RULES, OWING, warned, date(2026, 12, 8))
    assert suspend.decision is SU
    assert suspend.reason.endswith("; late: suspension warning of 2026-12-02 named 2026-12-08")


def test_re_running_a_day_decides_the_same_ids() -> None:
    a = on_calendar(DEFAULT_RULES, OWING, product(), date(2026, 11, 10))
    b = on_calendar(DEFAULT_RULES, OWING, product(), date(2026, 11, 10))
    assert a == b and a[0].period == "adc-warning-1-low:2026-10"
    assert decision_id("P1", a[0].period, W, 0) == decision_id("P1", b[0].period, W, 0)
    assert decision_id("P1", a[0].period, W, 0) != decision_id("P1", a[0].period, W, 1)


def test_warning_already_sent_is_not_sent_again() -> None:
    assert decisions(F.ADC, T.LOW, date(2026, 11, 10), level=1) == []


@pytest.mark.parametrize("family", list(F))
def test_red_list_or_emergency_stops_suspension_not_reminders(family: F) -> None:
    p = product(family, T.LOW, S.SUSPENSION_WARNED, exempt=True)
    assert on_calendar(DEFAULT_RULES, OWING, p, date(2026, 11, 30)) == []
    # No threat of suspension to an exempt product (seed 000; INTERFACES §2) ...
    p = product(family, T.LOW, S.WARNED, warning_level=1, exempt=True)
    assert on_calendar(DEFAULT_RULES, OWING, p, date(2026, 11, 25)) == []
    # ... but the reminders still go out.
    p = product(family, T.LOW, S.WARNED, exempt=True)
    assert [i.decision for i in on_calendar(DEFAULT_RULES, OWING, p, date(2026, 11, 10))] == [W]


def test_credit_limit_lets_the_account_owe_that_much() -> None:
    within = AccountFacts(-5000, 5000, oldest_due_month=OCT, credit_limit_fen=5000)
    p = product(F.ADC, T.LOW, S.SUSPENSION_WARNED, suspension_warned_on=date(2026, 11, 25),
                suspension_deadline=date(2026, 11, 30))
    assert on_calendar(DEFAULT_RULES, within, p, date(2026, 11, 30)) == []
    over = AccountFacts(-5001, 5001, oldest_due_month=OCT, credit_limit_fen=5000)
    assert [i.decision for i in on_calendar(DEFAULT_RULES, over, p, date(2026, 11, 30))] == [SU]


@pytest.mark.parametrize(("star", "days"), [(5, 120), (4, 120), (3, 90), (0, 90), (None, 90)])
def test_retention_then_pre_cancel(star: int | None, days: int) -> None:
    paid = AccountFacts(-1, 1, oldest_due_month=OCT)
    suspended_on = date(2026, 11, 30)
    p = product(F.MAS, T.MID, S.SUSPENDED, star_level=star, suspended_on=suspended_on)
    last_kept = suspended_on + timedelta(days=days - 1)
    assert [i.decision for i in on_calendar(DEFAULT_RULES, paid, p, last_kept)
            if i.decision is D.PRE_CANCEL] == []
    got = on_calendar(DEFAULT_RULES, paid, p, last_kept + timedelta(days=1))
    assert [i.decision for i in got] == [D.PRE_CANCEL]


@pytest.mark.parametrize("family", list(F))
def test_exempt_products_are_not_pre_cancelled(family: F) -> None:
    """The red list and emergency no-suspension cover every automatic sanction."""
    suspended_on = date(2026, 11, 30)
    p = product(family, T.LOW, S.SUSPENDED, suspended_on=suspended_on, exempt=True)
    assert on_calendar(DEFAULT_RULES, OWING, p, suspended_on + timedelta(days=200)) == []
    steps = [s for s in sweep_plan(DEFAULT_RULES, date(2027, 3, 1))
             if s.row.decision is D.PRE_CANCEL]
    assert steps and all(s.skip_exempt for s in steps)


@pytest.mark.parametrize("family", list(F))
def test_products_held_by_an_association_are_not_pre_cancelled(family: F) -> None:
    """Suspended by association for a collections case (关联停机): held for another account's
    arrears, never pre-cancelled by its retention (QA pass 31); the same product not held is."""
    suspended_on = date(2026, 11, 30)
    later = suspended_on + timedelta(days=200)
    held = product(family, T.LOW, S.SUSPENDED, suspended_on=suspended_on, held=True)
    assert on_calendar(DEFAULT_RULES, OWING, held, later) == []
    alone = product(family, T.LOW, S.SUSPENDED, suspended_on=suspended_on)
    assert [i.decision for i in on_calendar(DEFAULT_RULES, OWING, alone, later)] == [
        D.PRE_CANCEL]


# --- balance events --------------------------------------------------------------------------

def bill_run(due: int = 12345) -> AccountFacts:
    return AccountFacts(-due, due, BalanceCause.BILL_RUN, "2026-10", oldest_due_month=OCT)


@pytest.mark.parametrize("family", list(F))
@pytest.mark.parametrize("tier", list(T))
def test_bill_notice_after_the_bill_run(family: F, tier: T) -> None:
    intent = on_balance(DEFAULT_RULES, bill_run(), product(family, tier, S.NORMAL),
                        date(2026, 11, 2), "seq:7")
    assert intent is not None and intent.decision is D.BILL_NOTICE
    assert intent.deadline == date(2026, 11, 25) and intent.period == "bill:2026-10"


@pytest.mark.parametrize("state", [S.SUSPENDED, S.SUSPEND_REQUESTED, S.PRE_CANCEL])
@pytest.mark.parametrize("family", list(F))
def test_payment_restores_and_wins_over_a_suspension_in_flight(state: S, family: F) -> None:
    paid = AccountFacts(0, 0, BalanceCause.PAYMENT)
    intent = on_balance(DEFAULT_RULES, paid, product(family, T.MID, state), date(2026, 12, 1),
                        "seq:9")
    assert intent is not None and intent.decision is D.RESTORE
    assert intent.rule_id.endswith("-restore-mid")
    lifted = "; pre-cancellation lifted" if state is S.PRE_CANCEL else ""
    assert intent.reason == f"amount due 0 fen ≤ limit 0 fen after payment{lifted}"


@pytest.mark.parametrize(("cause", "words"), [
    (BalanceCause.PAYMENT, "payment"), (BalanceCause.WRITE_OFF, "write-off"),
    (BalanceCause.ADJUSTMENT, "adjustment"), (BalanceCause.DEDUCTION, "deduction"),
])
def test_a_restore_or_clearance_names_its_real_cause(cause: BalanceCause, words: str) -> None:
    cleared = AccountFacts(0, 0, cause)
    restore = on_balance(DEFAULT_RULES, cleared, product(F.ADC, T.LOW, S.SUSPENDED),
                         date(2026, 12, 1), "seq:3")
    assert restore is not None and restore.reason.endswith(f"after {words}")
    assert ("payment" in restore.reason) is (cause is BalanceCause.PAYMENT)
    clear = on_balance(DEFAULT_RULES, cleared, product(F.ADC, T.LOW, S.WARNED),
                       date(2026, 12, 1), "seq:3")
    assert clear is not None and clear.decision is D.ARREARS_CLEARED
    assert clear.reason == f"amount due cleared by {words} before any suspension"


@pytest.mark.parametrize("state", [S.WARNED, S.SUSPENSION_WARNED])
def test_a_product_whose_own_debt_is_paid_leaves_the_ladder_while_the_account_owes(
    state: S
) -> None:
    """A partial payment cleared this product's own amount; the account still owes for
    another: the product is back to normal, so a reminder still waiting for it (a bill
    notice held overnight, a suspension warning's 将停用) never leaves."""
    part = AccountFacts(-15_000, 15_000, BalanceCause.PAYMENT, oldest_due_month=OCT)
    clear = on_balance(DEFAULT_RULES, part, product(F.ADC, T.LOW, state, own_due_fen=0),
                       date(2026, 12, 5), "seq:4")
    assert clear is not None and clear.decision is D.ARREARS_CLEARED
    assert clear.reason == ("the product's own amount due cleared by payment before any "
                            "suspension (the account still owes 15000 fen for other products)")


@pytest.mark.parametrize(("state", "own"), [
    (S.WARNED, 5_000),  # it still owes itself
    (S.WARNED, None),  # its own amount not known to the caller: the account's facts decide
    (S.SUSPENDED, 0),  # a restore waits for the account (docs/credit-control.md)
    (S.SUSPEND_REQUESTED, 0),
    (S.NORMAL, 0),
])
def test_only_a_reminded_product_with_nothing_of_its_own_owing_is_cleared_alone(
    state: S, own: int | None
) -> None:
    part = AccountFacts(-15_000, 15_000, BalanceCause.PAYMENT, oldest_due_month=OCT)
    assert on_balance(DEFAULT_RULES, part, product(F.ADC, T.LOW, state, own_due_fen=own),
                      date(2026, 12, 5), "seq:4") is None


def test_a_pre_cancelled_product_still_owing_stays_pre_cancelled() -> None:
    part = AccountFacts(-100, 100, BalanceCause.PAYMENT, oldest_due_month=OCT)
    assert on_balance(DEFAULT_RULES, part, product(F.MAS, T.LOW, S.PRE_CANCEL),
                      date(2027, 3, 1), "seq:4") is None


def test_payment_before_the_sweep_means_the_sweep_finds_nothing() -> None:
    paid = AccountFacts(0, 0, BalanceCause.PAYMENT, oldest_due_month=None)
    assert on_calendar(DEFAULT_RULES, paid, product(state=S.SUSPENSION_WARNED),
                       date(2026, 11, 30)) == []


def test_threshold_suspension_is_opt_in_and_respects_the_limit() -> None:
    rows = tuple(r.model_copy(update={"enabled": True}) if r.trigger is Trigger.THRESHOLD
                 else r for r in DEFAULT_RULES.rows)
    table = RuleTable(version=2, rows=rows)
    p = product(F.ADC, T.LOW, S.NORMAL, star_level=3)
    inside = AccountFacts(-4000, 0, BalanceCause.CHARGE, credit_limit_fen=5000)
    beyond = AccountFacts(-5001, 0, BalanceCause.CHARGE, credit_limit_fen=5000)
    assert on_balance(table, inside, p, date(2026, 11, 3), "seq:1") is None
    assert on_balance(DEFAULT_RULES, beyond, p, date(2026, 11, 3), "seq:1") is None
    got = on_balance(table, beyond, p, date(2026, 11, 3), "seq:1")
    assert got is not None and got.decision is SU


# --- validation and the sweep plan ---------------------------------------------------------

def test_a_table_without_a_suspension_row_is_refused() -> None:
    rows = tuple(r for r in DEFAULT_RULES.rows if r.rule_id != "adc-suspend-low")
    with pytest.raises(ValueError, match="ADC/low: needs exactly one enabled calendar suspension"):
        RuleTable(version=2, rows=rows)


def test_a_warning_after_the_suspension_is_refused() -> None:
    rows = tuple(r.model_copy(update={"arrears_month": 2}) if r.rule_id == "mas-warning-1-low"
                 else r for r in DEFAULT_RULES.rows)
    with pytest.raises(ValueError, match="falls after the suspension"):
        RuleTable(version=2, rows=rows)


def test_day_29_is_refused_because_february_lacks_it() -> None:
    with pytest.raises(ValueError):
        RuleRow(rule_id="x", family=F.ADC, tier=T.LOW, trigger=Trigger.CALENDAR,
                decision=W, warning_level=1, arrears_month=1, day=29)


def test_sweep_plan_on_month_end_suspends_first() -> None:
    plan = sweep_plan(DEFAULT_RULES, date(2026, 11, 30))
    first = plan[0]
    assert first.row.decision is SU and first.cutoff is not None
    low = next(s for s in plan if s.row.rule_id == "adc-suspend-low")
    assert low.cutoff == date(2026, 10, 1)
    assert S.SUSPEND_REQUESTED not in low.from_states
    high = next(s for s in plan if s.row.rule_id == "adc-suspend-high")
    assert high.cutoff == date(2026, 8, 1)


def test_a_decision_id_is_the_md5_of_its_key_as_a_uuid() -> None:
    # The sweep computes the same ids in SQL (md5(key)::uuid): the text must match it.
    for product_id, period, cycle in [("P1", "seq:7", 0), ("产品-9", "bill:2026-10", 3)]:
        key = f"{product_id}|{W.value}|{period}|{cycle}"
        expected = str(uuid.UUID(hashlib.md5(key.encode()).hexdigest()))
        assert decision_id(product_id, period, W, cycle) == expected
