"""Result events: what the outbox stores is exactly what `common.envelope` would write."""

from datetime import UTC, datetime

import msgspec

from common.clock import FixedClock
from common.contracts import ProvisioningResult, registry
from common.contracts.gateway import ChainStage, ProvisioningAction, StageOutcome
from common.envelope import to_bytes, wrap
from common.logging import correlated
from gateway_adapter.adapters.chain_writes import combine
from gateway_adapter.domain.chain import Attempt, StageReport
from gateway_adapter.service_layer.context import GatewayContext
from gateway_adapter.service_layer.results import result_event

T0 = datetime(2026, 11, 30, 12, 0, 1, 250_000, tzinfo=UTC)


def test_a_result_event_is_the_envelope_wrap_makes_and_serialises_the_same() -> None:
    ctx = GatewayContext(None, None, FixedClock(T0))  # type: ignore[arg-type]
    a = Attempt("C1", 2, "P1", "G1", "CP1", "MAS", "huawei", ProvisioningAction.SUSPEND, 7, T0,
                emos_order_id="emos-1")
    report = StageReport(ChainStage.EMOS, StageOutcome.FAILED, True, "EMOS 拒绝了指令", T0)
    with correlated("corr-1"):
        topic, envelope = result_event(ctx, a, report)
    expected = wrap(envelope.payload, key="P1", source="gateway-adapter", occurred_at=T0,
                    correlation_id="corr-1", event_id=envelope.event_id)
    assert (topic, envelope) == ("provisioning.results.v1", expected)
    assert type(envelope) is type(expected)
    # What the outbox stores (`to_bytes`) reads back as the same event with the contract's decoder.
    assert registry(ProvisioningResult).decode(to_bytes(envelope)) == expected
    assert msgspec.structs.asdict(envelope.payload) == {
        "command_id": "C1", "product_id": "P1", "action": ProvisioningAction.SUSPEND,
        "sequence": 7, "stage": ChainStage.EMOS, "outcome": StageOutcome.FAILED,
        "final": True, "detail": "EMOS 拒绝了指令", "at": T0, "attempt": 2,
        "emos_order_id": "emos-1"}


def test_a_batch_of_writes_is_one_statement_with_parameters_renamed_apart() -> None:
    sql, params = combine([
        ("UPDATE t SET a = u.a FROM unnest(CAST(:ids AS text[])) AS u(a) WHERE x = :n",
         {"ids": ["p1"], "n": 1}),
        ("INSERT INTO s SELECT :ids::text[], now()::date", {"ids": ["p2"]})])
    assert sql == ("WITH w0 AS (UPDATE t SET a = u.a FROM unnest(CAST(:w0_ids AS text[])) "
                   "AS u(a) WHERE x = :w0_n), "
                   "w1 AS (INSERT INTO s SELECT :w1_ids::text[], now()::date) SELECT 1")
    assert params == {"w0_ids": ["p1"], "w0_n": 1, "w1_ids": ["p2"]}
    assert combine([("SELECT :a", {"a": 1})]) == ("SELECT :a", {"a": 1})
