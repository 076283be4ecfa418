"""Scoped emergency freezes, pure (credit/domain/freezes.py): which products a freeze covers
and when, what a new freeze may not be, the balance path's threshold suspension held back
(in-memory store), and the warning given again once a freeze is over."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from common.contracts.billing import BalanceCause
from common.contracts.credit_control import CreditState
from common.contracts.snapshots import ProductFamily, Tier
from common.envelope import wrap
from credit_control.credit.adapters.memory import InMemoryBalanceStore
from credit_control.credit.domain.freezes import Covered, Freeze, Scope, frozen, problems
from credit_control.credit.domain.ladder import Ladder
from credit_control.credit.domain.product_credit import ProductCredit
from credit_control.credit.service_layer.balance_events import apply_balance_events

from .test_balance_use_cases import T0, _event, _product, _thresholds_on

MAS = Covered(ProductFamily.MAS, Tier.MID, 3, "huawei", "渠道A", "C1", "南城")


def _freeze(scope: Scope, value: str | None, warnings: bool = False,
            ended: datetime | None = None) -> Freeze:
    return Freeze("F1", scope, value, warnings, T0 - timedelta(days=1), T0 + timedelta(days=1),
                  ended)


@pytest.mark.parametrize("scope, value, covered", [
    (Scope.ALL, None, True),
    (Scope.FAMILY, "MAS", True), (Scope.FAMILY, "ADC", False),
    (Scope.TIER, "mid", True), (Scope.TIER, "high", False),
    (Scope.STAR_LEVEL, "3", True), (Scope.STAR_LEVEL, "4", False),
    (Scope.VENDOR, "huawei", True), (Scope.VENDOR, "jiaxun", False),
    (Scope.CHANNEL, "渠道A", True), (Scope.CHANNEL, "渠道B", False),
    (Scope.CUSTOMER, "C1", True), (Scope.CUSTOMER, "C2", False),
    (Scope.REGION, "南城", True), (Scope.REGION, "虎门", False),
])
def test_a_freeze_covers_its_scope_only(scope: Scope, value: str | None, covered: bool) -> None:
    assert _freeze(scope, value).covers(MAS) is covered


def test_a_product_without_the_scopes_fact_is_not_covered() -> None:
    bare = Covered(ProductFamily.ADC, Tier.LOW, None, None, None, "C1")
    assert not _freeze(Scope.VENDOR, "huawei").covers(bare)
    assert not _freeze(Scope.STAR_LEVEL, "0").covers(bare)
    assert not _freeze(Scope.REGION, "南城").covers(bare)  # a customer without a region


def test_a_freeze_is_in_force_from_its_start_until_its_end_or_expiry() -> None:
    f = _freeze(Scope.ALL, None)
    assert not f.active(f.starts_at - timedelta(seconds=1))
    assert f.active(f.starts_at) and f.active(f.until - timedelta(seconds=1))
    assert not f.active(f.until)
    assert not _freeze(Scope.ALL, None, ended=T0).active(T0)


def test_suspension_warnings_wait_only_for_a_freeze_that_covers_them() -> None:
    assert frozen([_freeze(Scope.ALL, None)], MAS, T0)
    assert not frozen([_freeze(Scope.ALL, None)], MAS, T0, warnings=True)
    assert frozen([_freeze(Scope.ALL, None, warnings=True)], MAS, T0, warnings=True)
    assert not frozen([], MAS, T0)


@pytest.mark.parametrize("change, field", [
    ({"scope": Scope.ALL, "value": "x"}, "value"),
    ({"scope": Scope.FAMILY, "value": None}, "value"),
    ({"scope": Scope.FAMILY, "value": "XYZ"}, "value"),
    ({"scope": Scope.TIER, "value": "top"}, "value"),
    ({"scope": Scope.STAR_LEVEL, "value": "6"}, "value"),
    ({"scope": Scope.REGION, "value": None}, "value"),
    ({"scope": Scope.REGION, "value": "  "}, "value"),
    ({"reason": "故障"}, "reason"),
    ({"approver": "zhang.wei"}, "approver"),
    ({"until": T0}, "until"),
    ({"until": T0 + timedelta(days=31, seconds=1)}, "until"),
])
def test_a_bad_freeze_says_why(change: dict[str, object], field: str) -> None:
    good: dict[str, object] = {"scope": Scope.CUSTOMER, "value": "C1",
                               "reason": "网络故障造成欠费", "approver": "主管张三",
                               "created_by": "zhang.wei", "starts_at": T0,
                               "until": T0 + timedelta(days=31)}
    assert problems(**good) == {}  # type: ignore[arg-type]
    assert field in problems(**(good | change))  # type: ignore[arg-type]


async def test_a_freeze_holds_the_balance_paths_threshold_suspension_back() -> None:
    mas = _product(ProductFamily.MAS)
    store = InMemoryBalanceStore(T0, table=_thresholds_on())
    store.freezes = [Freeze("F1", Scope.VENDOR, "huawei", False, T0, T0 + timedelta(days=5))]
    await apply_balance_events(store, [_event(1, BalanceCause.CHARGE, 5_000,
                                              balance=-10_000_000, product=mas)])
    assert store.products.products["P1"].state is CreditState.NORMAL
    assert "suspend" not in [d["decision"] for d in store.decisions.values()]
    # Ended: the next event below the limit suspends.
    store.freezes = [Freeze("F1", Scope.VENDOR, "huawei", False, T0, T0 + timedelta(days=5),
                            ended_at=T0 + timedelta(hours=1))]
    await apply_balance_events(store, [_event(2, BalanceCause.CHARGE, 6_000,
                                              balance=-10_000_001, product=mas)])
    assert store.products.products["P1"].state is CreditState.SUSPEND_REQUESTED


async def test_a_region_freeze_holds_the_threshold_suspension_of_that_region_only() -> None:
    # The region comes with billing's customer snapshot (CustomerSnapshot.region).
    held, other = InMemoryBalanceStore(T0, table=_thresholds_on()), InMemoryBalanceStore(
        T0, table=_thresholds_on())
    for store in (held, other):
        store.freezes = [Freeze("F1", Scope.REGION, "南城", False, T0, T0 + timedelta(days=5))]
    for store, region in ((held, "南城"), (other, "虎门")):
        _, event = _event(1, BalanceCause.CHARGE, 5_000, balance=-10_000_000)
        event = msgspec.structs.replace(
            event, customer=msgspec.structs.replace(event.customer, region=region))
        await apply_balance_events(store, [(wrap(event, key="A1", source="test",
                                                 occurred_at=event.as_of), event)])
    assert held.products.products["P1"].state is CreditState.NORMAL
    assert "suspend" not in [d["decision"] for d in held.decisions.values()]
    assert "suspend" in [d["decision"] for d in other.decisions.values()]
    assert other.products.products["P1"].state is CreditState.SUSPENDED  # ADC: at once


def test_a_held_back_product_is_warned_again_and_one_never_warned_is_left_alone() -> None:
    at = datetime(2200, 6, 2, 1, tzinfo=UTC)
    warned = ProductCredit("P1", "A1", ProductFamily.ADC, CreditState.SUSPENSION_WARNED,
                           ladder=Ladder(None, 3, at.date(), at.date()))
    change = warned.warn_again(at, "freeze F1 over")
    assert change is not None and (change.before, change.after) == (
        CreditState.SUSPENSION_WARNED, CreditState.WARNED)
    assert warned.state is CreditState.WARNED and warned.dirty
    assert warned.ladder.suspension_deadline is None and warned.ladder.warning_level == 3
    only_warned = ProductCredit("P2", "A1", ProductFamily.ADC, CreditState.WARNED)
    assert only_warned.warn_again(at, "freeze F1 over") is None
    assert not only_warned.dirty
