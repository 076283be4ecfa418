"""Per-product allocation (domain/allocation.py): table-driven cases of the stated rule, and
properties over random sequences of charges, payments, reversals, adjustments, write-offs
and deductions: products add up to the account, per month and in total, to the fen."""

from dataclasses import dataclass, field
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_events.domain.allocation import allocate, paid_by, product_positions
from billing_events.domain.model import MonthDue, position

JUL, AUG, SEP = date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1)


@pytest.mark.parametrize(("bills", "credits", "owed"), [
    # nothing paid: every bill owes itself
    ({(SEP, "P1"): 12345, (SEP, "P2"): 240725}, 0, {(SEP, "P1"): 12345, (SEP, "P2"): 240725}),
    # within a month: product id order, P1 in full before P2
    ({(SEP, "P1"): 10000, (SEP, "P2"): 5000}, 12000, {(SEP, "P1"): 0, (SEP, "P2"): 3000}),
    # oldest month first across the account, whatever the product ids
    ({(AUG, "P2"): 3000, (SEP, "P1"): 7000}, 4000, {(AUG, "P2"): 0, (SEP, "P1"): 6000}),
    # exactly a bill boundary: P1 cleared, P2 untouched
    ({(SEP, "P1"): 100, (SEP, "P2"): 200}, 100, {(SEP, "P1"): 0, (SEP, "P2"): 200}),
    # one fen short
    ({(SEP, "P1"): 100, (SEP, "P2"): 200}, 299, {(SEP, "P1"): 0, (SEP, "P2"): 1}),
    # over-payment: all clear, the rest is the account's credit (no product holds it)
    ({(SEP, "P1"): 100, (SEP, "P2"): 200}, 1000, {(SEP, "P1"): 0, (SEP, "P2"): 0}),
    # a zero bill (adjusted to nothing) takes nothing
    ({(SEP, "P0"): 0, (SEP, "P1"): 100}, 50, {(SEP, "P0"): 0, (SEP, "P1"): 50}),
    # ids sort as text: P10 before P2
    ({(SEP, "P2"): 100, (SEP, "P10"): 100}, 100, {(SEP, "P10"): 0, (SEP, "P2"): 100}),
])
def test_allocation_rule(bills: dict[tuple[date, str], int], credits: int,
                         owed: dict[tuple[date, str], int]) -> None:
    assert allocate(bills, credits) == owed


def test_positions_list_every_product_of_the_account() -> None:
    bills = {(AUG, "P1"): 10000, (SEP, "P1"): 10000, (SEP, "P2"): 5000}
    got = product_positions(bills, {"P2": 700}, 12000, ["P1", "P2", "P3"])
    assert [(p.product_id, p.billed_fen, p.credited_fen, p.amount_due_fen, p.unbilled_fen)
            for p in got] == [("P1", 20000, 12000, 8000, 0), ("P2", 5000, 0, 5000, 700),
                              ("P3", 0, 0, 0, 0)]
    assert got[0].dues == (MonthDue(SEP, 8000),)
    assert got[1].dues == (MonthDue(SEP, 5000),)


# --- properties -----------------------------------------------------------------------------

PRODUCTS = ["P1", "P2", "P3", "P10"]
MONTHS = [JUL, AUG, SEP]


@dataclass
class Account:
    """A tiny ledger run the way billing keeps it: bills per (month, product), credits."""

    bills: dict[tuple[date, str], int] = field(default_factory=dict)
    payments: list[int] = field(default_factory=list)  # deductions too (source=deposit)
    reversed: set[int] = field(default_factory=set)
    written_off: int = 0
    deposit: int = 0

    def credits(self) -> int:
        return (sum(p for i, p in enumerate(self.payments) if i not in self.reversed)
                + self.written_off)

    def due(self) -> int:
        return position(self._months(), 0, self.credits()).amount_due_fen

    def _months(self) -> dict[date, int]:
        months: dict[date, int] = {}
        for (m, _), v in self.bills.items():
            months[m] = months.get(m, 0) + v
        return months

    def apply(self, op: tuple[str, int, int, int]) -> None:
        kind, a, b, fen = op
        key = (MONTHS[a % len(MONTHS)], PRODUCTS[b % len(PRODUCTS)])
        if kind == "charge":
            self.bills[key] = self.bills.get(key, 0) + fen
        elif kind == "adjust":  # may credit, never below 0 for the product-month (422)
            delta = fen if a % 2 else -fen
            self.bills[key] = max(self.bills.get(key, 0) + delta, 0)
        elif kind == "pay":
            self.payments.append(fen)
        elif kind == "reverse" and self.payments:
            self.reversed.add(b % len(self.payments))
        elif kind == "write_off":  # at most what is owed (422 otherwise)
            self.written_off += min(fen, self.due())
        elif kind == "deposit":
            self.deposit += fen
        elif kind == "deduct":  # min(requested, deposit, due), a payment from the deposit
            taken = min(fen, self.deposit, self.due())
            self.deposit -= taken
            self.payments.append(taken)


OPS = st.lists(st.tuples(
    st.sampled_from(["charge", "charge", "adjust", "pay", "reverse", "write_off", "deposit",
                     "deduct"]),
    st.integers(0, 5), st.integers(0, 7), st.integers(1, 500_000)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_products_add_up_to_the_account(ops: list[tuple[str, int, int, int]]) -> None:
    acct = Account()
    for op in ops:
        acct.apply(op)
        months = acct._months()
        pos = position(months, 0, acct.credits())
        products = product_positions(acct.bills, {}, acct.credits(), PRODUCTS)
        # per account
        assert sum(p.amount_due_fen for p in products) == pos.amount_due_fen
        # per month
        per_month: dict[date, int] = {}
        for p in products:
            for d in p.dues:
                per_month[d.bill_month] = per_month.get(d.bill_month, 0) + d.amount_due_fen
        assert per_month == {d.bill_month: d.amount_due_fen for d in pos.dues}
        # per product: billed = credited + due, each bill owes between 0 and itself
        for p in products:
            assert p.billed_fen == p.credited_fen + p.amount_due_fen
            assert 0 <= p.amount_due_fen <= p.billed_fen
        # credits allocated never exceed the credits (the rest is the account's credit)
        assert sum(p.credited_fen for p in products) == min(acct.credits(), sum(months.values()))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(MONTHS), st.sampled_from(PRODUCTS)),
                       st.integers(0, 100_000), max_size=12),
       st.integers(0, 1_000_000), st.integers(0, 1_000_000))
def test_more_credit_never_raises_a_products_due(
        bills: dict[tuple[date, str], int], credits: int, more: int) -> None:
    """And a reversal (less credit) re-opens exactly what the credit had covered: the
    allocation depends on the totals only, never on the order things happened in."""
    before = allocate(bills, credits)
    after = allocate(bills, credits + more)
    assert all(after[b] <= before[b] for b in bills)
    assert sum(before.values()) - sum(after.values()) == min(
        more, max(sum(bills.values()) - credits, 0))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(MONTHS), st.sampled_from(PRODUCTS)),
                       st.integers(0, 100_000), max_size=12),
       st.integers(0, 1_000_000), st.integers(0, 300_000))
def test_what_a_new_credit_pays_of_each_product_is_what_its_due_falls_by(
        bills: dict[tuple[date, str], int], credits: int, more: int) -> None:
    """A deduction's notice quotes `paid_by`: it must be exactly each product's fall in
    amount due when the credit is added to the totals (the allocation, recomputed)."""
    before = product_positions(bills, {}, credits)
    after = {p.product_id: p.amount_due_fen for p in product_positions(bills, {}, credits + more)}
    falls = [(p.product_id, p.amount_due_fen - after[p.product_id]) for p in before
             if p.amount_due_fen > after[p.product_id]]
    assert paid_by(before, more) == falls
    assert sum(f for _, f in falls) == min(more, sum(p.amount_due_fen for p in before))


def test_a_deduction_pays_the_oldest_bill_whichever_product_it_was_asked_for() -> None:
    # P-2's April bill is older than P-1's May bill: 30.00 pays P-2's 20.00 first.
    bills = {(date(2026, 4, 1), "P-2"): 2000, (date(2026, 5, 1), "P-1"): 5000}
    assert paid_by(product_positions(bills, {}, 0), 3000) == [("P-1", 1000), ("P-2", 2000)]
    assert paid_by(product_positions(bills, {}, 0), 0) == []


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(MONTHS), st.sampled_from(PRODUCTS)),
                       st.integers(0, 100_000), max_size=12),
       st.integers(0, 1_000_000))
def test_an_older_bill_is_cleared_before_a_newer_one_is_touched(
        bills: dict[tuple[date, str], int], credits: int) -> None:
    owed = allocate(bills, credits)
    order = sorted(bills)
    for i, bill in enumerate(order):
        if owed[bill] > 0:  # still owing: nothing after it got a fen
            assert all(owed[later] == bills[later] for later in order[i + 1:])


def test_the_balance_event_carries_each_products_dues() -> None:
    """From the ledger (as adapters/ledger.fill reads it) to the contract: the event
    parses as BalanceChanged and its product_dues add up to the account's figures."""
    from datetime import UTC, datetime

    import msgspec
    import orjson

    from billing_events.adapters.ledger import Ledger
    from billing_events.service_layer.balances import balance_payload, state_of
    from common.contracts.billing import BalanceCause, BalanceChanged
    from common.envelope import encode

    ledger = Ledger("A1", "G1", 3, bills={(AUG, "P2"): 3_000, (SEP, "P1"): 12_345,
                                          (SEP, "P2"): 200_000, (date(2026, 10, 1), "P1"): 999},
                    credits_fen=10_000, product_ids=["P1", "P2", "P3"])
    state = state_of(ledger, closed={AUG, SEP})
    customer = {"customer_id": "G1", "name": "某某集团", "tier": "low", "star_level": None,
                "account_manager": {"name": "周经理", "phone": "13900000001"},
                "contacts": [{"name": "联系人", "phone": "13800000001"}]}
    products = [{"product_id": p, "cpno": f"CP{p}", "name": "企信通", "family": "ADC",
                 "vendor": None, "channel": None} for p in ("P1", "P2", "P3")]
    at = datetime(2026, 10, 5, 2, tzinfo=UTC)
    # the snapshots as JSON, as PostgreSQL hands them over (adapters/ledger.py)
    built = balance_payload(state, BalanceCause.PAYMENT, at, msgspec.Raw(orjson.dumps(customer)),
                            msgspec.Raw(orjson.dumps(products)), {})
    event = msgspec.json.decode(encode(built), type=BalanceChanged)
    got = [(p.product_id, p.amount_due_fen, [(d.bill_month, d.amount_due_fen) for d in p.dues],
            p.unbilled_fen) for p in event.product_dues]
    # 100.00 paid: August's P2 bill (30.00) first, then September's P1 (123.45) in part
    assert got == [("P1", 5_345, [("2026-09", 5_345)], 999),
                   ("P2", 200_000, [("2026-09", 200_000)], 0), ("P3", 0, [], 0)]
    assert event.amount_due_fen == 205_345 and event.unbilled_fen == 999
