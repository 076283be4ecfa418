"""The what-if replay (whatif/domain): a month built by hand, replayed under the current rule
table and under drafts, with the differences worked out by hand."""

from datetime import date, datetime, time

from hypothesis import given, settings
from hypothesis import strategies as st

from common.clock import BUSINESS_TZ
from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState, DecisionType
from common.contracts.snapshots import ProductFamily, Tier
from credit_control.credit.domain.profiles import CreditProfile, Exemption
from credit_control.credit.domain.rule_table import DEFAULT_RULES, RuleRow, RuleTable
from credit_control.whatif.domain.history import AccountHistory, Point
from credit_control.whatif.domain.replay import Month, replay
from credit_control.whatif.domain.report import compare, difference_json, templates

F, T, D = ProductFamily, Tier, DecisionType
MONTH = date(2026, 10, 1)  # 31 days: the default suspension is on the 31st
BILL_MONTH = "2026-09"
BILL_RUN = datetime(2026, 10, 1, 2, 0, tzinfo=BUSINESS_TZ)
WINDOW = datetime(2026, 7, 1, tzinfo=BUSINESS_TZ)  # three warm-up months


def at(day: int, hour: int = 12) -> datetime:
    return datetime.combine(date(2026, 10, day), time(hour), tzinfo=BUSINESS_TZ)


def account(n: int, tier: Tier, family: ProductFamily = F.ADC, bill_fen: int = 100_00,
            paid_on: int | None = None) -> AccountHistory:
    """One account with one product billed `bill_fen` for September, paid in full on
    `paid_on` (a day of October) or never."""
    pid = f"P{n}"
    points = [Point(WINDOW, None, 0, 0, None, 0, {pid: 0}),
              Point(BILL_RUN, BalanceCause.BILL_RUN, -bill_fen, bill_fen, date(2026, 9, 1), 0,
                    {pid: bill_fen}, BILL_MONTH)]
    if paid_on is not None:
        points.append(Point(at(paid_on), BalanceCause.PAYMENT, 0, 0, None, 0, {pid: 0}))
    return AccountHistory(f"A{n}", f"C{n}", tier, None, ((pid, family),), tuple(points))




def draft(**days: int | str) -> RuleTable:
    """The default table with some rows' day moved (rule id → day)."""
    rows = tuple(r.model_copy(update={"day": days[r.rule_id]}) if r.rule_id in days else r
                 for r in DEFAULT_RULES.rows)
    return RuleTable(version=2, rows=tuple(RuleRow.model_validate(r.model_dump())
                                           for r in rows))


def run(histories: list[AccountHistory], table: RuleTable,
        profiles: dict[str, CreditProfile] | None = None) -> dict:
    current = replay(histories, profiles or {}, Month(MONTH, DEFAULT_RULES, DEFAULT_RULES))
    changed = replay(histories, profiles or {}, Month(MONTH, DEFAULT_RULES, table))
    return difference_json(compare(current, changed, histories))


MONTH_DATA = [
    account(1, T.LOW),  # never pays
    account(2, T.LOW, paid_on=27),  # pays after the moved suspension, before the default
    account(3, T.LOW, paid_on=15),  # pays before any suspension warning
    account(4, T.MID),  # mid tier: its suspension is in month 2, untouched
    account(5, T.LOW, F.MAS),  # MAS rows untouched
    account(6, T.LOW, paid_on=20),  # pays between the moved warning and the moved suspension
]
# The low tier ADC's suspension a week earlier (31st → 24th); its warning moves with it
# (25th → 18th), since a suspension warning must come before the suspension.
WEEK_EARLIER = {"adc-suspension-warning-low": 18, "adc-suspend-low": 24}


def test_an_unchanged_table_makes_no_difference() -> None:
    got = run(MONTH_DATA, draft())
    assert got["same"] is True
    assert got["products"] == []
    assert got["current"] == got["draft"]
    # …and the month did something to compare: not two empty replays.
    assert got["current"]["sms_per_template"]["suspension_notice_contact"] == 2  # P1, P5
    assert got["current"]["suspended_per_day"] == {"2026-10-31": 2}


def test_the_suspension_a_week_earlier_changes_exactly_the_products_expected() -> None:
    got = run(MONTH_DATA, draft(**WEEK_EARLIER))
    assert got["same"] is False
    changes = {(c["product_id"], c["milestone"], c["change"], c["current"], c["draft"])
               for c in got["products"]}
    assert changes == {
        ("P1", "suspension_warned", "earlier", "2026-10-25", "2026-10-18"),
        ("P1", "suspended", "earlier", "2026-10-31", "2026-10-24"),
        ("P2", "suspension_warned", "earlier", "2026-10-25", "2026-10-18"),
        ("P2", "suspended", "only_draft", None, "2026-10-24"),
        ("P6", "suspension_warned", "only_draft", None, "2026-10-18"),
    }
    assert got["current"]["suspended_per_day"] == {"2026-10-31": 2}  # P1, P5
    assert got["draft"]["suspended_per_day"] == {"2026-10-24": 2, "2026-10-31": 1}
    # P2 is suspended on the 24th and restored by its payment of the 27th.
    assert got["draft"]["sms_per_template"]["restore_notice"] == 1
    assert "restore_notice" not in got["current"]["sms_per_template"]
    # Payments came as they did: the same arrears at month end, P1's and P5's.
    assert got["current"]["arrears_at_month_end_fen"] == got["draft"][
        "arrears_at_month_end_fen"] == 300_00
    assert got["draft"]["suspended_arrears_at_month_end_fen"] == 200_00


def test_a_suspension_moved_into_the_next_month_is_not_made_this_month() -> None:
    # 31st → the 7th of arrears month 2: a week later, outside the replayed month.
    rows = tuple(r.model_copy(update={"arrears_month": 2, "day": 7})
                 if r.rule_id == "adc-suspend-low" else r for r in DEFAULT_RULES.rows)
    table = RuleTable(version=2, rows=tuple(RuleRow.model_validate(r.model_dump())
                                            for r in rows))
    got = run(MONTH_DATA, table)
    assert {(c["product_id"], c["milestone"], c["change"]) for c in got["products"]} == {
        ("P1", "suspended", "only_current")}
    assert got["draft"]["suspended_per_day"] == {"2026-10-31": 1}  # P5 (MAS) only


def test_an_exempt_customer_is_suspended_under_neither_table() -> None:
    red = {"C1": CreditProfile("C1", exemptions=(Exemption("red_list", "vip", "admin", None),))}
    got = run([account(1, T.LOW)], draft(**WEEK_EARLIER), red)
    assert got["current"]["suspended_per_day"] == got["draft"]["suspended_per_day"] == {}
    assert [c["milestone"] for c in got["products"]] == []


def test_the_states_at_month_end_follow_the_decisions() -> None:
    outcome = replay(MONTH_DATA, {}, Month(MONTH, DEFAULT_RULES, draft(**WEEK_EARLIER)))
    assert outcome.states["P1"] is CreditState.SUSPENDED
    assert outcome.states["P2"] is CreditState.NORMAL  # restored by its payment
    assert outcome.states["P3"] is CreditState.NORMAL
    assert outcome.states["P5"] is CreditState.SUSPENDED  # MAS: the chain, completed at once
    assert all(d.day.month == 10 for d in outcome.decisions)  # the warm-up is not reported


def test_templates_follow_the_notifier_names() -> None:
    from credit_control.whatif.domain.replay import Decided
    d = Decided("P", "A", D.WARNING, "r", MONTH, warning_level=2)
    assert templates(d) == ("warning_2",)
    # Warning 2's day with no warning 1 in its ladder: sent with the first warning's text.
    skipped = Decided("P", "A", D.WARNING, "r", MONTH, warning_level=2, reminder_level=1)
    assert templates(skipped) == ("warning_1",)
    assert templates(Decided("P", "A", D.SUSPEND, "r", MONTH)) == (
        "suspension_notice_contact", "suspension_notice_manager")
    assert templates(Decided("P", "A", D.ARREARS_CLEARED, "r", MONTH)) == ()


# --- deductions: the notices billing's collections would make ---------------------------------

AUG, SEP = date(2026, 8, 1), date(2026, 9, 1)
DEPOSIT_DAY = datetime(2026, 8, 20, 10, 0, tzinfo=BUSINESS_TZ)
AUG_RUN = datetime(2026, 9, 1, 2, 0, tzinfo=BUSINESS_TZ)
DEDUCTION_DAY = date(2026, 10, 15)  # mid tier: day 15 of arrears month 2 of August


def two_products(n: int, aug: dict[str, int], sep: dict[str, int], deposit: int
                 ) -> AccountHistory:
    """A mid tier account of two ADC products, a deposit held since August, August's bills
    (billed 1 September) and September's (1 October) never paid."""
    a, b = f"P{n}a", f"P{n}b"
    bills = [(AUG, pid, fen) for pid, fen in aug.items() if fen]
    after_aug = {pid: aug.get(pid, 0) for pid in (a, b)}
    bills_sep = bills + [(SEP, pid, fen) for pid, fen in sep.items() if fen]
    after_sep = {pid: after_aug[pid] + sep.get(pid, 0) for pid in (a, b)}
    due_aug, due_sep = sum(after_aug.values()), sum(after_sep.values())
    oldest = AUG if due_aug else SEP
    points = (Point(WINDOW, None, 0, 0, None, 0, {a: 0, b: 0}),
              Point(DEPOSIT_DAY, BalanceCause.DEPOSIT, 0, 0, None, deposit, {a: 0, b: 0}),
              Point(AUG_RUN, BalanceCause.BILL_RUN, -due_aug, due_aug,
                    AUG if due_aug else None, deposit, after_aug, "2026-08", tuple(bills)),
              Point(BILL_RUN, BalanceCause.BILL_RUN, -due_sep, due_sep, oldest, deposit,
                    after_sep, BILL_MONTH, tuple(sorted(bills_sep))))
    return AccountHistory(f"A{n}", f"C{n}", T.MID, None, ((a, F.ADC), (b, F.ADC)), points)


def deductions(histories: list[AccountHistory]) -> list[tuple[str, int | None, tuple]]:
    outcome = replay(histories, {}, Month(MONTH, DEFAULT_RULES, DEFAULT_RULES))
    return [(d.product_id, d.amount_fen, d.collected) for d in outcome.decisions
            if d.decision is D.DEDUCTION]


def test_a_deduction_notice_per_product_the_collected_money_pays() -> None:
    """P7b owes August's 50 yuan, P7a September's 80; the deposit holds 100. The sweep of the
    15th asks 80 for P7a and the 20 left for P7b (the deposit shared in product id order);
    billing pays the oldest bill first: P7a's 80 pays P7b's August 50 and 30 of P7a's, P7b's
    20 pays P7a's. Three notices (P7a twice, P7b once), 100 yuan collected. Before, each
    deduction asked the whole deposit (200 yuan of a 100 deposit) and counted one notice
    per decision, two, one of them for money billing never had."""
    history = [two_products(7, {"P7b": 50_00}, {"P7a": 80_00}, 100_00)]
    assert deductions(history) == [
        ("P7a", 80_00, (("P7a", 30_00), ("P7b", 50_00))),
        ("P7b", 20_00, (("P7a", 20_00),))]
    got = run(history, draft())["current"]
    assert got["decisions"]["deduction"] == 2
    assert got["sms_per_template"]["deduction_notice"] == 3
    assert got["deductions_fen"] == 100_00


def test_no_deduction_and_no_notice_for_a_product_owing_nothing_of_its_own() -> None:
    """P8a owes August's 50 yuan, P8b nothing: only P8a is deducted, one notice. Before, P8b
    asked the account's 50 too and counted a notice of a deduction that never happens."""
    history = [two_products(8, {"P8a": 50_00}, {}, 100_00)]
    assert deductions(history) == [("P8a", 50_00, (("P8a", 50_00),))]
    got = run(history, draft())["current"]
    assert got["sms_per_template"]["deduction_notice"] == 1
    assert got["deductions_fen"] == 50_00


def test_a_deposit_too_small_for_both_products_makes_one_deduction() -> None:
    history = [two_products(9, {"P9a": 50_00, "P9b": 50_00}, {}, 30_00)]
    assert deductions(history) == [("P9a", 30_00, (("P9a", 30_00),))]
    assert run(history, draft())["current"]["sms_per_template"]["deduction_notice"] == 1


def test_a_deduction_collecting_nothing_sends_no_notice() -> None:
    from credit_control.whatif.domain.replay import Decided
    nothing = Decided("P", "A", D.DEDUCTION, "r", DEDUCTION_DAY, amount_fen=10_00)
    assert templates(nothing) == ()
    two = Decided("P", "A", D.DEDUCTION, "r", DEDUCTION_DAY, amount_fen=10_00,
                  collected=(("P", 4_00), ("Q", 6_00)))
    assert templates(two) == ("deduction_notice", "deduction_notice")


# --- properties over random months ----------------------------------------------------------

an_account = st.tuples(st.sampled_from(list(T)), st.sampled_from(list(F)),
                       st.integers(1, 500_00), st.none() | st.integers(1, 31))


@st.composite
def months(draw: st.DrawFn) -> list[AccountHistory]:
    found = draw(st.lists(an_account, min_size=1, max_size=8))
    return [account(n, tier, family, fen, paid) for n, (tier, family, fen, paid)
            in enumerate(found, 1)]


@settings(max_examples=40, deadline=None)
@given(months())
def test_the_same_table_never_differs(histories: list[AccountHistory]) -> None:
    assert run(histories, draft())["same"] is True


@settings(max_examples=40, deadline=None)
@given(months())
def test_only_the_products_of_the_changed_rows_change(histories: list[AccountHistory]) -> None:
    got = run(histories, draft(**WEEK_EARLIER))
    families = {pid: (h.tier, fam) for h in histories for pid, fam in h.products}
    assert {families[c["product_id"]] for c in got["products"]} <= {(T.LOW, F.ADC)}
    # A suspension a week earlier is never later, and never dropped while the debt stays.
    for c in got["products"]:
        assert c["change"] in ("earlier", "only_draft"), c
