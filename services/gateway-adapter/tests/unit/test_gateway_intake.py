"""gateway_adapter.domain.intake: a batch of commands decided in memory exactly as one by one —
the same attempt once, sequence over arrival, a retry of an applied command answered at once,
what is in flight superseded by a newer command."""

from datetime import UTC, datetime

from common.contracts.gateway import (
    ChainStage,
    ProvisioningAction,
    ProvisioningCommand,
    StageOutcome,
)
from common.contracts.snapshots import ProductFamily
from gateway_adapter.domain.chain import (
    Attempt,
    BossStatus,
    EmosOrder,
    OrderStatus,
    ProductChain,
)
from gateway_adapter.domain.faults import Faults, Step
from gateway_adapter.domain.intake import CommandState, Intake

SUSPEND, RESTORE = ProvisioningAction.SUSPEND, ProvisioningAction.RESTORE
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)


def cmd(product: str, action: ProvisioningAction, seq: int, attempt: int = 1,
        command_id: str | None = None) -> ProvisioningCommand:
    return ProvisioningCommand(
        command_id=command_id or f"{product}-{seq}", decision_id="d", product_id=product,
        account_id="A1", cpno=f"CP{product}", family=ProductFamily.MAS, vendor="huawei",
        action=action, sequence=seq, requested_at=T0, attempt=attempt, customer_id="G1")


def chain(product: str, last: int = 0) -> ProductChain:
    return ProductChain(product, last, BossStatus.ACTIVE, 0, T0, False, 0, T0)


def intake(*products: ProductChain, **held: object) -> Intake:
    return Intake(products={p.product_id: p for p in products}, faults=Faults(), now=NOW,
                  commands=held.get("commands", {}),  # type: ignore[arg-type]
                  in_flight=held.get("in_flight", {}),  # type: ignore[arg-type]
                  orders=held.get("orders", {}),  # type: ignore[arg-type]
                  seen=held.get("seen", set()))  # type: ignore[arg-type]


def summary(reports: list[tuple[Attempt, object]]) -> list[tuple[str, int, str]]:
    return [(a.command_id, a.attempt, a.outcome.value if a.outcome else "") for a, _ in reports]


def test_the_same_attempt_twice_in_a_batch_or_recorded_before_acts_once() -> None:
    batch = intake(chain("P1"), chain("P2"), seen={("P2-1", 1)})
    first = cmd("P1", SUSPEND, 1)
    assert batch.accept(first) == []
    assert batch.accept(first) == []  # the same attempt under another event id
    assert batch.accept(cmd("P2", SUSPEND, 1)) == []  # recorded by an earlier batch
    assert [(a.command_id, a.step, a.due_at) for a in batch.new_attempts] == [
        ("P1-1", Step.BOSS, NOW)]
    assert batch.products["P1"].last_sequence == 1 and batch.moved_products == {"P1"}
    assert batch.commands["P1-1"].latest_attempt == 1
    assert batch.commands["P1-1"].outcome == "pending"
    assert "P2-1" not in batch.commands


def test_sequence_beats_arrival_within_a_batch() -> None:
    batch = intake(chain("P1"))
    restore, late_suspend = cmd("P1", RESTORE, 3), cmd("P1", SUSPEND, 2)
    assert batch.accept(restore) == []
    answered = batch.accept(late_suspend)
    assert summary(answered) == [("P1-2", 1, "superseded")]
    assert answered[0][1].final and "not newer than 3" in answered[0][0].detail  # type: ignore[attr-defined]
    assert batch.products["P1"].last_sequence == 3
    assert [a.outcome for a in batch.new_attempts] == [None, StageOutcome.SUPERSEDED]
    assert batch.commands["P1-2"].outcome == "superseded"


def test_a_newer_command_in_the_batch_supersedes_the_one_before_it() -> None:
    batch = intake(chain("P1"))
    batch.accept(cmd("P1", SUSPEND, 1))
    reports = batch.accept(cmd("P1", RESTORE, 2))
    assert summary(reports) == [("P1-1", 1, "superseded")]
    assert reports[0][1].stage is ChainStage.BOSS  # type: ignore[attr-defined]
    assert batch.stopped == []  # inserted by this batch: written once, already superseded
    assert [a.outcome for a in batch.new_attempts] == [StageOutcome.SUPERSEDED, None]
    assert batch.in_flight["P1"] == [batch.new_attempts[1]]
    assert (batch.commands["P1-1"].outcome, batch.commands["P1-2"].outcome) == (
        "superseded", "pending")


def test_a_retry_supersedes_the_recorded_attempt_and_cancels_its_order() -> None:
    old = Attempt("P1-1", 1, "P1", "G1", "CPP1", "MAS", "huawei", SUSPEND, 1, T0,
                  step=Step.EMOS, emos_order_id="emos-a")
    order = EmosOrder("emos-a", "P1-1", 1, "P1", SUSPEND, OrderStatus.RECEIVED, T0)
    state = CommandState("P1-1", "P1", SUSPEND, 1, T0, 1)
    batch = intake(chain("P1", last=1), commands={"P1-1": state}, in_flight={"P1": [old]},
                   orders={"emos-a": order}, seen={("P1-1", 1)})
    reports = batch.accept(cmd("P1", SUSPEND, 1, attempt=2))
    assert summary(reports) == [("P1-1", 1, "superseded")]
    assert batch.stopped == [old] and old.finished_at == NOW
    assert batch.cancelled_orders == [order] and order.status is OrderStatus.CANCELLED
    assert (state.latest_attempt, state.outcome) == (2, "superseded")  # as one by one did
    assert batch.accept(cmd("P1", SUSPEND, 1, attempt=1)) == []  # seen before


def test_an_older_attempt_arriving_after_its_retry_is_superseded() -> None:
    state = CommandState("P1-1", "P1", SUSPEND, 1, T0, 2)
    batch = intake(chain("P1", last=1), commands={"P1-1": state})
    reports = batch.accept(cmd("P1", SUSPEND, 1, attempt=1))
    assert summary(reports) == [("P1-1", 1, "superseded")]
    assert "overtaken by attempt 2" in reports[0][0].detail
    assert state.latest_attempt == 2


def test_a_retry_of_an_applied_command_answers_applied_at_once() -> None:
    state = CommandState("P1-1", "P1", SUSPEND, 1, T0, 1, "applied", 1, "emos-a")
    batch = intake(chain("P1", last=1), commands={"P1-1": state}, seen={("P1-1", 1)})
    reports = batch.accept(cmd("P1", SUSPEND, 1, attempt=2))
    assert summary(reports) == [("P1-1", 2, "applied")]
    a, report = reports[0]
    assert a.emos_order_id == "emos-a" and report.final  # type: ignore[attr-defined]
    assert (report.stage, a.step) == (ChainStage.GATEWAY, Step.GATEWAY)  # type: ignore[attr-defined]
    assert (state.latest_attempt, state.outcome, state.applied_attempt) == (2, "applied", 1)
    assert batch.moved_products == set()
