"""A whole billing cycle replayed through real Kafka and PostgreSQL, for a low-, mid- and
high-tier customer of every family: bill run → bill notice → warnings (and deductions) → the
25th's suspension warning → month-end suspension → payment → restore.

The cycle runs once for all twelve products (a sweep is set-based: one sweep serves them all);
each (family, tier) then checks its own exact sequence of decisions and dates. MAS and
SMS-direct go through the real gateway-adapter; WORK_ORDER products through work orders done
in the API."""

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from common.contracts.snapshots import ProductFamily, Tier

from .helpers import CHAIN, CreditApi, Ledger, at, ledger, month_end, new_uid

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

F, T = ProductFamily, Tier
BILL_FEN = 12_345
FINAL_MONTH = {T.LOW: 2, T.MID: 3, T.HIGH: 4}  # the calendar month of the tier's suspension
# ADC deductions (mid, high) take from the deposit: part of the amount due, or all of it.
DEPOSIT_FEN = {T.MID: 5_000, T.HIGH: 100_000}


@dataclass
class Cycle:
    year: int
    ledgers: dict[tuple[ProductFamily, Tier], Ledger]
    rule_version: int


def sweep_days(year: int) -> list[date]:
    """Every day a default rule fires in arrears months 1–3 of a January bill."""
    return [d for m in (2, 3, 4) for d in (date(year, m, 10), date(year, m, 15),
                                            date(year, m, 25), month_end(year, m))]


@pytest.fixture(scope="module")
async def cycle(api: CreditApi, test_year: int) -> Cycle:
    y, uid = test_year, new_uid()
    ledgers = {(f, t): ledger(uid, f"cyc{f.value[:3]}{t.value}", f, t) for f in F for t in T}
    every = list(ledgers.values())
    for tier, deposit in DEPOSIT_FEN.items():
        ledgers[(F.ADC, tier)].deposit_fen = deposit
    await api.deliver(*((lg, lg.bill_run(f"{y}-01", BILL_FEN, at(date(y, 2, 2), 9)))
                        for lg in every))
    for n, day in enumerate(sweep_days(y)):
        await api.sweep(day, f"cycle-{uid}-{n}")
        await api.settled(*every)
        await api.complete_work_orders(*every)
        await api.settled(*every)
        paying = [lg for (_, tier), lg in ledgers.items()
                  if day == month_end(y, FINAL_MONTH[tier])]
        if paying:  # the group pays the morning after its suspension
            await api.deliver(*((lg, lg.payment(at(day + timedelta(days=1), 10)))
                                for lg in paying))
            await api.settled(*paying)
            await api.complete_work_orders(*paying)
            await api.settled(*paying)
    version = (await api.http.get("/v1/rules")).json()["version"]
    return Cycle(y, ledgers, version)


def expected_decisions(
    family: ProductFamily, tier: Tier, y: int
) -> list[tuple[str, int | None, date]]:
    final = FINAL_MONTH[tier]
    steps: list[tuple[str, int | None, date]] = [
        ("bill_notice", None, date(y, 2, 2)), ("warning", 1, date(y, 2, 10))]
    if family is F.ADC and tier is not T.LOW:  # seed ADC #9, #11 (mid, high)
        steps += [("warning", 2, date(y, 3, 10)), ("deduction", None, date(y, 3, 15))]
    if family is F.ADC and tier is T.HIGH:  # seed ADC #10, #12 (high)
        steps += [("warning", 3, date(y, 4, 10)), ("deduction", None, date(y, 4, 15))]
    return [*steps, ("suspension_warning", None, date(y, final, 25)),
            ("suspend", None, month_end(y, final)),
            ("restore", None, month_end(y, final) + timedelta(days=1))]


def expected_states(family: ProductFamily, tier: Tier) -> list[str]:
    warned = ["warned"] * (3 if family is F.ADC and tier is T.HIGH else
                           2 if family is F.ADC and tier is T.MID else 1)
    moves = (["suspended", "normal"] if family is F.ADC
             else ["suspend_requested", "suspended", "restore_requested", "normal"])
    return ["warned", *warned, "suspension_warned", *moves]


CASES = [pytest.param(f, t, id=f"{f.value}-{t.value}") for f in F for t in T]


@pytest.mark.parametrize(("family", "tier"), CASES)
async def test_the_exact_decisions_and_dates_of_a_whole_cycle(
    cycle: Cycle, api: CreditApi, family: ProductFamily, tier: Tier
) -> None:
    lg = cycle.ledgers[(family, tier)]
    assert await api.decisions(lg.product_id) == expected_decisions(family, tier, cycle.year)
    credit = await api.credit(lg.product_id)
    assert credit["state"] == "normal"
    assert [h["state_after"] for h in credit["state_history"]] == expected_states(family, tier)
    for d in credit["decisions"]:
        assert d["rule_version"] == cycle.rule_version
        assert d["context"]["amount_due_fen"] == (0 if d["decision"] == "restore" else BILL_FEN)
        if d["decision"] != "restore":
            slug = family.value.lower().replace("_", "-")
            assert d["rule_id"].startswith(slug) and d["rule_id"].endswith(tier.value)


@pytest.mark.parametrize("tier", [T.MID, T.HIGH])
async def test_deductions_ask_for_what_the_deposit_covers_on_the_15th(
    cycle: Cycle, api: CreditApi, tier: Tier
) -> None:
    lg = cycle.ledgers[(F.ADC, tier)]
    published = [d for d in await api.outbox(lg.account_id, "credit.decisions.v1")
                 if d.get("decision") == "deduction"]
    months = [3] if tier is T.MID else [3, 4]
    assert [(d["amount_fen"], d["as_of"][:10], d["state_before"] == d["state_after"])
            for d in published] == [(min(BILL_FEN, DEPOSIT_FEN[tier]), f"{cycle.year}-{m:02d}-15",
                                      True) for m in months]


@pytest.mark.parametrize("family", CHAIN)
@pytest.mark.parametrize("tier", list(T))
async def test_chain_products_get_one_suspend_and_one_restore_command(
    cycle: Cycle, api: CreditApi, family: ProductFamily, tier: Tier
) -> None:
    lg = cycle.ledgers[(family, tier)]
    commands = await api.outbox(lg.product_id, "provisioning.commands.v1")
    assert [(c["action"], c["sequence"], c["attempt"], c["vendor"]) for c in commands] == [
        ("suspend", 1, 1, lg.products[0].vendor), ("restore", 2, 1, lg.products[0].vendor)]
    changes = [(e["state_before"], e["state_after"])
               for e in await api.outbox(lg.account_id, "credit.decisions.v1")
               if "decision" not in e]
    assert changes == [("suspend_requested", "suspended"), ("restore_requested", "normal")]


@pytest.mark.parametrize("tier", list(T))
async def test_work_order_products_are_suspended_and_restored_by_work_orders(
    cycle: Cycle, api: CreditApi, tier: Tier
) -> None:
    lg = cycle.ledgers[(F.WORK_ORDER, tier)]
    orders = await api.work_orders(product_id=lg.product_id)
    assert [(o["action"], o["status"], o["assignee"]) for o in orders] == [
        ("suspend", "done", "operator-1"), ("restore", "done", "operator-1")]
    for o in orders:
        assert [s["status"] for s in o["steps"]] == ["created", "assigned", "done"]
        assert all(s["at"] and s["by"] for s in o["steps"])
    assert await api.outbox(lg.product_id, "provisioning.commands.v1") == []
