"""gateway_adapter.domain.chain: BOSS → EMOS → gateway per attempt, newest sequence wins, faults."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from gateway_adapter.adapters.vendors import ADAPTERS
from gateway_adapter.domain.chain import (
    Attempt,
    BossStatus,
    CommandRecord,
    EmosOrder,
    OrderStatus,
    ProductChain,
    Verdict,
    advance,
    judge,
    schedule,
    supersede,
)
from gateway_adapter.domain.faults import Faults, Latency, StageFaults, Step, draw

SUSPEND, RESTORE = ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def product(last: int = 1) -> ProductChain:
    return ProductChain("P1", last, BossStatus.ACTIVE, 0, T0, False, 0, T0)


def attempt(action: ProvisioningAction = SUSPEND, seq: int = 1, n: int = 1,
            vendor: str = "huawei", family: str = "MAS") -> Attempt:
    return Attempt(command_id="C1", attempt=n, product_id="P1", customer_id="G1", cpno="CP1",
                   family=family, vendor=vendor, action=action, sequence=seq, received_at=T0)


def run(a: Attempt, p: ProductChain, faults: Faults, now: datetime,
        vendor: str | None = "huawei", order: EmosOrder | None = None,
        ) -> tuple[list[tuple[ChainStage, StageOutcome, bool]], EmosOrder | None]:
    moved = advance(a, p, order, faults, ADAPTERS.get(vendor or ""), now, "emos-1")
    return [(r.stage, r.outcome, r.final) for r in moved.reports], moved.new_order or order


# --- judge: sequences decide, never arrival order --------------------------------------

def rec(seq: int = 3, latest: int = 1, applied: int | None = None) -> CommandRecord:
    return CommandRecord("C1", seq, latest, applied, "emos-x" if applied else None)


@pytest.mark.parametrize(("seq", "attempt_no", "last", "record", "verdict"), [
    pytest.param(1, 1, 0, None, Verdict.RUN, id="first-command"),
    pytest.param(5, 1, 3, None, Verdict.RUN, id="newer-command"),
    pytest.param(2, 1, 3, None, Verdict.SUPERSEDED, id="older-arrives-late"),
    pytest.param(3, 1, 3, None, Verdict.SUPERSEDED, id="other-command-same-sequence"),
    pytest.param(3, 2, 3, rec(latest=1), Verdict.RUN, id="retry-of-the-newest"),
    pytest.param(3, 1, 3, rec(latest=2), Verdict.SUPERSEDED, id="older-attempt-late"),
    pytest.param(3, 3, 3, rec(latest=2, applied=2), Verdict.ALREADY_APPLIED,
                 id="retry-after-apply"),
    pytest.param(3, 3, 4, rec(latest=2, applied=2), Verdict.SUPERSEDED, id="applied-then-newer"),
])
def test_judge(seq: int, attempt_no: int, last: int, record: CommandRecord | None,
               verdict: Verdict) -> None:
    assert judge("C1", seq, attempt_no, last, record) is verdict


# --- advance: the happy chain -----------------------------------------------------------

@pytest.mark.parametrize(("action", "status", "blocked"), [
    (SUSPEND, BossStatus.ARREARS_SUSPENDED, True), (RESTORE, BossStatus.ACTIVE, False)])
def test_no_faults_runs_the_whole_chain_in_one_go(
    action: ProvisioningAction, status: BossStatus, blocked: bool
) -> None:
    a, p = attempt(action, seq=1), product(last=1)
    schedule(a, Step.BOSS, Faults(), T0)
    reports, order = run(a, p, Faults(), T0)
    assert reports == [(ChainStage.BOSS, StageOutcome.APPLIED, False),
                       (ChainStage.EMOS, StageOutcome.APPLIED, False),
                       (ChainStage.GATEWAY, StageOutcome.APPLIED, True)]
    assert (p.boss_status, p.gateway_blocked, p.boss_sequence, p.gateway_sequence) == (
        status, blocked, 1, 1)
    assert order is not None and order.status is OrderStatus.CLOSED and order.closed_at == T0
    assert a.outcome is StageOutcome.APPLIED and a.emos_order_id == "emos-1"
    assert a.vendor_command is not None and "<OprCode>" in a.vendor_command


def test_each_step_waits_for_its_latency() -> None:
    faults = Faults(emos=StageFaults(latency=Latency(min_ms=5000)))
    a, p = attempt(), product()
    schedule(a, Step.BOSS, faults, T0)
    reports, order = run(a, p, faults, T0 + timedelta(seconds=1))
    assert reports == [(ChainStage.BOSS, StageOutcome.APPLIED, False)]
    assert order is not None and order.status is OrderStatus.RECEIVED
    assert a.step is Step.EMOS and a.due_at == T0 + timedelta(seconds=5)
    assert p.boss_status is BossStatus.ARREARS_SUSPENDED and p.gateway_blocked is False
    reports, order = run(a, p, faults, T0 + timedelta(seconds=5), order=order)
    assert [r[0] for r in reports] == [ChainStage.EMOS, ChainStage.GATEWAY]
    assert p.gateway_blocked is True and a.gateway_at == T0 + timedelta(seconds=5)


def test_async_vendor_acknowledges_then_confirms() -> None:
    faults = Faults(gateway=StageFaults(latency=Latency(min_ms=2000)))
    a, p = attempt(vendor="jiaxun"), product()
    schedule(a, Step.BOSS, faults, T0)
    reports, order = run(a, p, faults, T0 + timedelta(seconds=2), vendor="jiaxun")
    assert a.step is Step.GATEWAY_CONFIRM and a.gateway_ack_at is not None
    assert [r[0] for r in reports] == [ChainStage.BOSS, ChainStage.EMOS]
    assert p.gateway_blocked is False  # acknowledged is not confirmed
    reports, _ = run(a, p, faults, T0 + timedelta(seconds=4), vendor="jiaxun", order=order)
    assert reports == [(ChainStage.GATEWAY, StageOutcome.APPLIED, True)]
    assert p.gateway_blocked is True
    assert a.vendor_command is not None and a.vendor_command.startswith("cmd=STOP")


# --- advance: faults ----------------------------------------------------------------------

def test_emos_failure_leaves_boss_suspended_and_the_gateway_open() -> None:
    faults = Faults(emos=StageFaults(failure_rate=1.0))
    a, p = attempt(), product()
    schedule(a, Step.BOSS, faults, T0)
    reports, order = run(a, p, faults, T0)
    assert reports == [(ChainStage.BOSS, StageOutcome.APPLIED, False),
                       (ChainStage.EMOS, StageOutcome.FAILED, True)]
    assert p.boss_status is BossStatus.ARREARS_SUSPENDED and p.gateway_blocked is False
    assert order is not None and order.status is OrderStatus.FAILED


def test_a_stage_down_fails_what_is_due_while_it_is_down() -> None:
    faults = Faults(gateway=StageFaults(down_until=T0 + timedelta(hours=1)))
    a, p = attempt(), product()
    schedule(a, Step.BOSS, faults, T0)
    reports, _ = run(a, p, faults, T0)
    assert reports[-1] == (ChainStage.GATEWAY, StageOutcome.FAILED, True)
    assert "gateway down until" in a.detail
    after = attempt(n=2)
    schedule(after, Step.BOSS, faults, T0 + timedelta(hours=1))
    reports, _ = run(after, p, faults, T0 + timedelta(hours=1))
    assert reports[-1] == (ChainStage.GATEWAY, StageOutcome.APPLIED, True)


def test_a_step_slower_than_its_timeout_times_out_at_the_timeout() -> None:
    faults = Faults(boss=StageFaults(latency=Latency(min_ms=10_000), timeout_s=3))
    a, p = attempt(), product()
    schedule(a, Step.BOSS, faults, T0)
    assert a.due_at == T0 + timedelta(seconds=3)
    reports, _ = run(a, p, faults, T0 + timedelta(seconds=3))
    assert reports == [(ChainStage.BOSS, StageOutcome.TIMED_OUT, True)]
    assert p.boss_status is BossStatus.ACTIVE


def test_cross_month_emos_order_is_worked_next_month() -> None:
    faults = Faults(emos_cross_month_share=1.0)
    a, p = attempt(), product()
    schedule(a, Step.BOSS, faults, T0)
    _, order = run(a, p, faults, T0)
    next_month = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 12-01 00:00 in Shanghai
    assert order is not None and order.due_at == next_month == a.due_at
    reports, _ = run(a, p, faults, next_month, order=order)
    assert reports[-1] == (ChainStage.GATEWAY, StageOutcome.APPLIED, True)
    assert order.closed_at == next_month


def test_ruoya_without_the_enterprise_code_is_refused() -> None:
    a, p = replace(attempt(vendor="ruoya"), customer_id=None), product()
    schedule(a, Step.BOSS, Faults(), T0)
    reports, _ = run(a, p, Faults(), T0, vendor="ruoya")
    assert reports[-1] == (ChainStage.GATEWAY, StageOutcome.FAILED, True)
    assert "ecCode" in a.detail and p.gateway_blocked is False


def test_an_unknown_vendor_fails_at_the_gateway() -> None:
    a, p = attempt(vendor="acme"), product()
    schedule(a, Step.BOSS, Faults(), T0)
    reports, _ = run(a, p, Faults(), T0, vendor=None)
    assert reports[-1] == (ChainStage.GATEWAY, StageOutcome.FAILED, True)


def test_an_attempt_behind_a_newer_sequence_is_superseded_at_its_next_step() -> None:
    faults = Faults(emos=StageFaults(latency=Latency(min_ms=1000)))
    a, p = attempt(seq=1), product(last=1)
    schedule(a, Step.BOSS, faults, T0)
    _, order = run(a, p, faults, T0)
    p.last_sequence = 2
    reports, _ = run(a, p, faults, T0 + timedelta(seconds=1), order=order)
    assert reports == [(ChainStage.EMOS, StageOutcome.SUPERSEDED, True)]
    assert order is not None and order.status is OrderStatus.CANCELLED


def test_supersede_cancels_an_open_order() -> None:
    a = attempt()
    order = EmosOrder("o", "C1", 1, "P1", SUSPEND, OrderStatus.SENT_TO_GATEWAY, T0)
    a.step = Step.GATEWAY
    report = supersede(a, order, T0, "newer")
    assert (report.stage, report.outcome, report.final) == (
        ChainStage.GATEWAY, StageOutcome.SUPERSEDED, True)
    assert order.status is OrderStatus.CANCELLED


# --- draw: deterministic --------------------------------------------------------------------

def test_draws_repeat_for_the_same_seed_and_differ_across_seeds() -> None:
    faults = Faults(seed=7, emos=StageFaults(
        latency=Latency(distribution="exponential", min_ms=10, mean_ms=500), failure_rate=0.3))
    first = [draw(faults, f"C{i}", 1, Step.EMOS, T0) for i in range(200)]
    again = [draw(faults, f"C{i}", 1, Step.EMOS, T0) for i in range(200)]
    other = [draw(faults.model_copy(update={"seed": 8}), f"C{i}", 1, Step.EMOS, T0)
             for i in range(200)]
    assert first == again
    assert first != other
    failed = sum(d.fate.value == "fail" for d in first)
    assert 30 <= failed <= 90  # ~30% of 200
    assert all(d.due_at >= T0 + timedelta(milliseconds=10) for d in first)


def test_uniform_latency_needs_an_ordered_range() -> None:
    with pytest.raises(ValueError, match="max_ms"):
        Latency(distribution="uniform", min_ms=10, max_ms=5)


@pytest.mark.parametrize("faults", [
    Faults(), Faults(seed=3, boss=StageFaults(latency=Latency(min_ms=250))),
    Faults(gateway=StageFaults(latency=Latency(min_ms=1500), timeout_s=2)),
], ids=["healthy", "fixed-latency", "within-timeout"])
def test_a_step_with_nothing_to_draw_lands_where_the_seeded_draw_does(faults: Faults) -> None:
    # A failure rate too small to ever hit sends the same step through the seeded generator.
    for step in Step:
        stage = faults.stage(step).model_copy(update={"failure_rate": 1e-15})
        seeded = faults.model_copy(update={step.value.split("_")[0]: stage})
        for i in range(20):
            assert draw(faults, f"C{i}", 1, step, T0) == draw(seeded, f"C{i}", 1, step, T0)
