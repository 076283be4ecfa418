"""credit_control.domain.rules: the balance-event rules and the calendar (sweep) rules."""

from datetime import date, timedelta

import pytest

from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily
from credit_control.domain.model import action_for, can
from credit_control.domain.rules import AccountFacts, Intent, on_balance, on_sweep

S = CreditState
OWING = AccountFacts(balance_fen=-12345, amount_due_fen=12345)
PAID = AccountFacts(balance_fen=0, amount_due_fen=0)


def bill_run(balance: int = -12345, due: int = 12345, month: str = "2026-10") -> AccountFacts:
    return AccountFacts(balance_fen=balance, amount_due_fen=due, cause=BalanceCause.BILL_RUN,
                        closed_bill_month=month)


# --- on_balance: bill notice -------------------------------------------------------------

@pytest.mark.parametrize(
    ("today", "deadline"),
    [
        (date(2026, 11, 1), date(2026, 11, 25)),
        (date(2026, 11, 3), date(2026, 11, 25)),
        (date(2026, 11, 24), date(2026, 11, 25)),
        # from the 25th on there is no "before the 25th" left: the month's last day
        (date(2026, 11, 25), date(2026, 11, 30)),
        (date(2026, 11, 26), date(2026, 11, 30)),
        (date(2026, 11, 30), date(2026, 11, 30)),
        (date(2026, 12, 27), date(2026, 12, 31)),
        (date(2027, 2, 26), date(2027, 2, 28)),
        (date(2028, 2, 26), date(2028, 2, 29)),
    ],
)
@pytest.mark.parametrize("state", [S.NORMAL, S.WARNED])
def test_bill_notice_after_bill_run_with_negative_balance(
    today: date, deadline: date, state: CreditState
) -> None:
    intent = on_balance(bill_run(), state, today, event_key="acct-1:7")
    assert intent == Intent(
        DecisionType.BILL_NOTICE, "bill-notice",
        "balance -12345 fen < 0 after the bill run of 2026-10",
        period="bill:2026-10", deadline=deadline,
    )


def test_bill_notice_period_is_the_closed_month_not_the_event() -> None:
    a = on_balance(bill_run(month="2026-10"), S.NORMAL, date(2026, 11, 1), "acct-1:7")
    b = on_balance(bill_run(month="2026-10"), S.NORMAL, date(2026, 11, 2), "acct-1:9")
    c = on_balance(bill_run(month="2026-11"), S.NORMAL, date(2026, 12, 1), "acct-1:12")
    assert a is not None and b is not None and c is not None
    assert a.period == b.period == "bill:2026-10"
    assert c.period == "bill:2026-11"


@pytest.mark.parametrize(
    "cause", [c for c in BalanceCause if c is not BalanceCause.BILL_RUN], ids=str
)
def test_no_bill_notice_unless_the_cause_is_a_bill_run(cause: BalanceCause) -> None:
    facts = AccountFacts(balance_fen=-12345, amount_due_fen=12345, cause=cause,
                         closed_bill_month="2026-10")
    assert on_balance(facts, S.NORMAL, date(2026, 11, 3), "k") is None


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        pytest.param(AccountFacts(-12345, 12345), S.NORMAL, id="no-cause"),
        pytest.param(bill_run(balance=0, due=0), S.NORMAL, id="balance-zero"),
        pytest.param(bill_run(balance=500, due=0), S.NORMAL, id="in-credit"),
        pytest.param(bill_run(balance=-300, due=0), S.NORMAL, id="only-unbilled-owing"),
        pytest.param(bill_run(), S.SUSPENSION_WARNED, id="already-suspension-warned"),
        pytest.param(bill_run(), S.SUSPEND_REQUESTED, id="suspend-requested"),
        pytest.param(bill_run(), S.SUSPENDED, id="suspended"),
        pytest.param(bill_run(), S.RESTORE_REQUESTED, id="restore-requested"),
        pytest.param(bill_run(), S.PRE_CANCEL, id="pre-cancel"),
    ],
)
def test_no_bill_notice(facts: AccountFacts, state: CreditState) -> None:
    assert on_balance(facts, state, date(2026, 11, 3), "k") is None


# --- on_balance: after payment -------------------------------------------------------------

@pytest.mark.parametrize("state", [S.SUSPENDED, S.SUSPEND_REQUESTED])
@pytest.mark.parametrize("facts", [PAID, AccountFacts(5000, 0, BalanceCause.PAYMENT),
                                   AccountFacts(-300, 0, BalanceCause.PAYMENT)])
def test_restore_when_nothing_is_due(facts: AccountFacts, state: CreditState) -> None:
    intent = on_balance(facts, state, date(2026, 12, 3), event_key="acct-1:42")
    assert intent == Intent(DecisionType.RESTORE, "restore-on-payment",
                            "amount due is 0 after payment", period="acct-1:42")


@pytest.mark.parametrize("state", [S.WARNED, S.SUSPENSION_WARNED])
def test_arrears_cleared_when_warned_and_nothing_due(state: CreditState) -> None:
    facts = AccountFacts(0, 0, BalanceCause.PAYMENT)
    intent = on_balance(facts, state, date(2026, 11, 27), event_key="acct-1:43")
    assert intent == Intent(DecisionType.ARREARS_CLEARED, "clear-on-payment",
                            "amount due is 0 before suspension", period="acct-1:43")


@pytest.mark.parametrize("state", [S.NORMAL, S.RESTORE_REQUESTED, S.PRE_CANCEL])
def test_nothing_to_do_when_nothing_due_in_other_states(state: CreditState) -> None:
    assert on_balance(AccountFacts(0, 0, BalanceCause.PAYMENT), state, date(2026, 11, 3),
                      "k") is None


@pytest.mark.parametrize("state", list(CreditState))
def test_partial_payment_changes_nothing(state: CreditState) -> None:
    facts = AccountFacts(-2345, 2345, BalanceCause.PAYMENT)
    assert on_balance(facts, state, date(2026, 11, 27), "k") is None


# --- on_sweep: the 25th and the month's last day --------------------------------------------

@pytest.mark.parametrize(
    ("today", "deadline"),
    [
        (date(2026, 1, 25), date(2026, 1, 31)),
        (date(2027, 2, 25), date(2027, 2, 28)),  # non-leap February
        (date(2028, 2, 25), date(2028, 2, 29)),  # leap February
        (date(2100, 2, 25), date(2100, 2, 28)),  # century, not leap
        (date(2000, 2, 25), date(2000, 2, 29)),  # 400-year leap
        (date(2026, 4, 25), date(2026, 4, 30)),
        (date(2026, 11, 25), date(2026, 11, 30)),
        (date(2026, 12, 25), date(2026, 12, 31)),
    ],
)
@pytest.mark.parametrize("state", [S.NORMAL, S.WARNED])
def test_suspension_warning_on_the_25th(today: date, deadline: date, state: CreditState) -> None:
    intent = on_sweep(OWING, state, today)
    assert intent == Intent(DecisionType.SUSPENSION_WARNING, "suspension-warning-25th",
                            "amount due 12345 fen on the 25th",
                            period=today.strftime("%Y-%m"), deadline=deadline)


@pytest.mark.parametrize(
    "today",
    [date(2026, 1, 31), date(2027, 2, 28), date(2028, 2, 29), date(2026, 4, 30),
     date(2026, 11, 30), date(2026, 12, 31)],
)
@pytest.mark.parametrize("state", [S.NORMAL, S.WARNED, S.SUSPENSION_WARNED])
def test_suspend_on_the_last_day_of_the_month(today: date, state: CreditState) -> None:
    intent = on_sweep(OWING, state, today)
    assert intent == Intent(DecisionType.SUSPEND, "suspend-month-end",
                            "amount due 12345 fen on the month's last day",
                            period=today.strftime("%Y-%m"))


@pytest.mark.parametrize(
    "today",
    [date(2026, 11, 1), date(2026, 11, 15), date(2026, 11, 24), date(2026, 11, 26),
     date(2026, 11, 29), date(2026, 12, 30), date(2028, 2, 28), date(2027, 2, 27)],
)
@pytest.mark.parametrize("state", list(CreditState))
def test_nothing_on_other_days(today: date, state: CreditState) -> None:
    assert on_sweep(OWING, state, today) is None


@pytest.mark.parametrize("today", [date(2026, 11, 25), date(2026, 11, 30), date(2026, 11, 3)])
@pytest.mark.parametrize("state", list(CreditState))
@pytest.mark.parametrize("facts", [PAID, AccountFacts(500, 0), AccountFacts(-300, 0)])
def test_nothing_when_nothing_is_due(
    facts: AccountFacts, state: CreditState, today: date
) -> None:
    assert on_sweep(facts, state, today) is None


@pytest.mark.parametrize(
    "state", [S.SUSPEND_REQUESTED, S.SUSPENDED, S.RESTORE_REQUESTED, S.PRE_CANCEL]
)
def test_no_second_suspension_on_the_last_day(state: CreditState) -> None:
    assert on_sweep(OWING, state, date(2026, 11, 30)) is None


@pytest.mark.parametrize(
    "state", [S.SUSPENSION_WARNED, S.SUSPEND_REQUESTED, S.SUSPENDED, S.RESTORE_REQUESTED,
              S.PRE_CANCEL]
)
def test_no_suspension_warning_once_warned_or_suspended(state: CreditState) -> None:
    assert on_sweep(OWING, state, date(2026, 11, 25)) is None


def test_one_month_of_sweeps_for_an_owing_product() -> None:
    """Walk November 2026 day by day: one warning on the 25th, one suspension on the 30th."""
    state = S.NORMAL
    seen: list[tuple[date, DecisionType]] = []
    day = date(2026, 11, 1)
    while day.month == 11:
        intent = on_sweep(OWING, state, day)
        if intent is not None:
            seen.append((day, intent.decision))
            state = {DecisionType.SUSPENSION_WARNING: S.SUSPENSION_WARNED,
                     DecisionType.SUSPEND: S.SUSPENDED}[intent.decision]
        day += timedelta(days=1)
    assert seen == [(date(2026, 11, 25), DecisionType.SUSPENSION_WARNING),
                    (date(2026, 11, 30), DecisionType.SUSPEND)]


# --- the rules only ask for moves the state machine allows ----------------------------------

ADC_STATES = [S.NORMAL, S.WARNED, S.SUSPENSION_WARNED, S.SUSPENDED, S.PRE_CANCEL]
FAMILY_STATES = [(ProductFamily.ADC, s) for s in ADC_STATES] + [
    (f, s) for f in (ProductFamily.MAS, ProductFamily.SMS_DIRECT, ProductFamily.WORK_ORDER)
    for s in CreditState
]
FACTS = [OWING, PAID, bill_run(), AccountFacts(0, 0, BalanceCause.PAYMENT),
         AccountFacts(-100, 100, BalanceCause.PAYMENT), bill_run(balance=-5, due=0)]


@pytest.mark.parametrize(("family", "state"), FAMILY_STATES, ids=str)
def test_every_intent_is_a_legal_move(family: ProductFamily, state: CreditState) -> None:
    days = [date(2028, 1, 1) + timedelta(days=n) for n in range(366)]
    for facts in FACTS:
        for day in days:
            for intent in (on_sweep(facts, state, day), on_balance(facts, state, day, "k")):
                if intent is not None:
                    action = action_for(intent.decision, family)
                    assert can(state, action), (facts, day, intent)
